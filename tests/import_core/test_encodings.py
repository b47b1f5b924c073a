"""Files as Excel and shops really write them: encodings, delimiters, long lines, web addresses.

Covers :func:`billbee_provider.imports.extract.source_chunks` (``auto``: UTF-8, UTF-16/32
by byte order mark; a legacy codec refused on a UTF-8 file unless forced with ``!``),
:func:`~billbee_provider.imports.extract.byte_lines` (linear, bounded lines), the tab
delimiter, and :mod:`billbee_provider.imports.storage`'s refusal of ``http(s)://`` and
:func:`~billbee_provider.imports.storage.same_location`.
"""

from __future__ import annotations

import io
import os
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from billbee_provider.imports import extract
from billbee_provider.imports.extract import MAX_LINE_BYTES, SourceError, byte_lines
from billbee_provider.imports.extract_csv import delimiter_setting, detect_delimiter, iter_csv
from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.storage import UnsupportedLocationError, same_location

ROWS = [
    {"Name": "Jürgen Weiß", "Email": "j@example.de", "Address.Street": "Straße des 17. Juni"},
    {"Name": "Sabine Müller 😀", "Email": "s@example.de", "Address.Street": "Königsallee"},
]


def _text(delimiter: str) -> str:
    header = delimiter.join(ROWS[0])
    return "\r\n".join([header, *(delimiter.join(row.values()) for row in ROWS)]) + "\r\n"


def _write(tmp_path: Path, data: bytes, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 16])
def test_excel_unicode_text_utf16le_bom_tab_is_read_exactly(tmp_path: Path, chunk: int) -> None:
    """Excel's "Unicode-Text": UTF-16LE with a byte order mark, tab-separated, CRLF."""
    path = _write(tmp_path, codecs_bom("utf-16-le") + _text("\t").encode("utf-16-le"))
    # Small chunks cut characters, surrogate pairs (the emoji) and CRLFs in two.
    with mock.patch.object(extract, "CHUNK_BYTES", chunk):
        rows = list(iter_csv(path))
    assert [row.fields for row in rows] == ROWS
    assert [(row.number, row.line, row.problems) for row in rows] == [(1, 2, []), (2, 3, [])]


def codecs_bom(codec: str) -> bytes:
    return "\ufeff".encode(codec)


@pytest.mark.parametrize(
    ("codec", "delimiter"), [("utf-16-be", ";"), ("utf-32-le", ","), ("utf-32-be", "\t")]
)
def test_other_unicode_files_with_bom(tmp_path: Path, codec: str, delimiter: str) -> None:
    path = _write(tmp_path, codecs_bom(codec) + _text(delimiter).encode(codec))
    assert [row.fields for row in iter_csv(path, encoding="auto")] == ROWS


def test_jsonl_in_utf16_is_read(tmp_path: Path) -> None:
    text = '{"Name": "Jürgen Weiß"}\n{"Name": "Straße"}\n'
    path = _write(tmp_path, codecs_bom("utf-16-le") + text.encode("utf-16-le"), "c.jsonl")
    assert [row.fields["Name"] for row in iter_jsonl(path)] == ["Jürgen Weiß", "Straße"]


def test_utf16_without_bom_is_refused_with_the_right_advice(tmp_path: Path) -> None:
    path = _write(tmp_path, _text(";").encode("utf-16-le"))
    with pytest.raises(SourceError) as raised:
        list(iter_csv(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: line 1: the file looks like UTF-16 without a byte order mark")
    assert "'utf-16-le'" in message and "cp1252" not in message
    # Named explicitly, it is read.
    assert [row.fields for row in iter_csv(path, encoding="utf-16-le")] == ROWS


def test_broken_utf16_names_its_line(tmp_path: Path) -> None:
    data = codecs_bom("utf-16-le") + "Name\r\nA\r\nB".encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate
    path = _write(tmp_path, data)
    with pytest.raises(SourceError, match=r"line 3: not valid utf-16 \(") as raised:
        list(iter_csv(path))
    assert "B" not in str(raised.value).split("line 3")[1]


def test_cp1252_chosen_is_read_exactly(tmp_path: Path) -> None:
    path = _write(tmp_path, _text(";").encode("cp1252", errors="replace").replace(b"?", b""))
    rows = list(iter_csv(path, encoding="cp1252"))
    assert rows[0].fields == ROWS[0]
    assert rows[1].fields["Name"] == "Sabine Müller "


def test_cp1252_in_auto_gets_the_cp1252_advice(tmp_path: Path) -> None:
    path = _write(tmp_path, "Name\r\nMüller\r\n".encode("cp1252"))
    with pytest.raises(SourceError, match=r"line 2: not valid utf-8 .*choose encoding='cp1252'"):
        list(iter_csv(path))


@pytest.mark.parametrize("bom", [b"", codecs_bom("utf-8")])
def test_cp1252_chosen_for_a_utf8_file_is_refused_unless_forced(tmp_path: Path, bom: bytes) -> None:
    text = "Name;Email\r\nAnna;a@example.de\r\nJürgen Müller;j@example.de\r\n"
    path = _write(tmp_path, bom + text.encode("utf-8"))
    with pytest.raises(SourceError) as raised:
        list(iter_csv(path, encoding="cp1252"))
    message = str(raised.value)
    line = 1 if bom else 3
    assert message.startswith(f"{path}: line {line}: the file is UTF-8, but encoding 'cp1252' was chosen")
    assert "'cp1252!'" in message and "Müller" not in message
    forced = list(iter_csv(path, encoding="cp1252!"))
    assert next(iter(forced[1].fields.values())) == "JÃ¼rgen MÃ¼ller"  # what the user asked for


def test_legacy_codec_check_is_decided_at_the_first_non_ascii_character(tmp_path: Path) -> None:
    # cp1252 bytes that happen to be valid UTF-8 later on do not matter: "ü" came first.
    data = "Name\r\nMüller\r\n".encode("cp1252") + "Straße\r\n".encode()
    rows = list(iter_csv(_write(tmp_path, data), encoding="cp1252"))
    assert rows[0].fields["Name"] == "Müller"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, None), ("", None), ("auto", None), ("AUTO", None), ("tab", "\t"), ("\\t", "\t"), ("|", "|")],
)
def test_delimiter_settings(setting: str | None, expected: str | None) -> None:
    assert delimiter_setting(setting) == expected


def test_bad_delimiter_setting() -> None:
    with pytest.raises(ValueError, match="one character, 'tab' or 'auto'"):
        delimiter_setting(";;")


def test_tab_is_detected_and_can_be_named(tmp_path: Path) -> None:
    assert detect_delimiter("Name\tEmail\tAddress.City") == "\t"
    assert detect_delimiter('"a;b"\tc\td') == "\t"
    assert detect_delimiter("Name") == ","
    path = _write(tmp_path, _text("\t").encode())
    assert [row.fields for row in iter_csv(path, delimiter="tab")] == ROWS


def test_lines_split_across_chunks_in_one_pass() -> None:
    data = b"a\r\nb\rc\nd\r\r\ne"
    for size in range(1, len(data) + 1):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(byte_lines(chunks)) == [b"a\r\n", b"b\r", b"c\n", b"d\r", b"\r\n", b"e"], size


def test_a_line_over_the_limit_is_refused_naming_its_line() -> None:
    data = b"short\n" + b"x" * 100 + b"\nmore\n"
    with pytest.raises(SourceError, match=r"^f.csv: line 2: longer than 50 bytes"):
        list(byte_lines(io.BytesIO(data), name="f.csv", max_line=50))
    with pytest.raises(SourceError, match=r"line 2: longer than 100 bytes"):  # the line end counts
        list(byte_lines(io.BytesIO(data), max_line=100))
    assert list(byte_lines(io.BytesIO(data), max_line=101)) == [b"short\n", b"x" * 100 + b"\n", b"more\n"]
    with pytest.raises(SourceError, match=r"line 3: longer than 3 bytes"):  # the last line, no line end
        list(byte_lines([b"a\nb\nc", b"ccc"], max_line=3))


@pytest.fixture(scope="module")
def one_line_50mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "one_line.csv"
    with path.open("wb") as out:
        out.write(b"Name;Email\n")
        block = b"x;" * (1 << 19)  # 1 MiB
        for _ in range(50):
            out.write(block)
    return path


@pytest.mark.parametrize("reader", [iter_csv, iter_jsonl])
def test_a_50mb_line_is_refused_in_well_under_two_seconds(one_line_50mb: Path, reader: object) -> None:
    started = time.perf_counter()
    with pytest.raises(SourceError, match=rf"line 2: longer than {MAX_LINE_BYTES} bytes"):
        list(reader(one_line_50mb))  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"50 MB single line refused by {reader.__name__} in {elapsed:.3f} s")  # type: ignore[attr-defined]
    assert elapsed < 2


def test_splitting_a_50mb_line_is_linear(one_line_50mb: Path) -> None:
    """Without the limit, one long line costs one pass (it took 71 s when rescanned per chunk)."""
    started = time.perf_counter()
    with one_line_50mb.open("rb") as stream:
        lines = list(byte_lines(stream, max_line=1 << 30))
    elapsed = time.perf_counter() - started
    print(f"50 MB single line split in {elapsed:.3f} s")
    assert [len(line) for line in lines] == [11, 50 << 20] and elapsed < 2


@pytest.fixture
def silent_server() -> Iterator[tuple[str, socket.socket]]:
    """A loopback HTTP "server" that listens and never answers (nor accepts)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/customers.csv", server
    finally:
        server.close()


@pytest.mark.parametrize("reader", [iter_csv, iter_jsonl])
def test_web_addresses_are_refused_before_any_request(
    silent_server: tuple[str, socket.socket], reader: object
) -> None:
    url, server = silent_server
    started = time.perf_counter()
    for location in (url, url.replace("http://", "HTTPS://")):
        with pytest.raises(UnsupportedLocationError, match=r"web addresses \(https?://\) are not supported"):
            list(reader(location))  # type: ignore[operator]
    assert time.perf_counter() - started < 5
    assert select.select([server], [], [], 0.2)[0] == []  # nobody ever connected


def test_same_location(tmp_path: Path) -> None:
    source = tmp_path / "out" / "source.csv"
    source.parent.mkdir()
    source.write_text("a\n")
    link = tmp_path / "link.csv"
    link.symlink_to(source)
    hard = tmp_path / "hard.csv"
    os.link(source, hard)
    assert same_location(str(source), f"{tmp_path}/out/./source.csv")
    assert same_location(source.as_uri(), str(source))
    assert same_location(str(link), str(source)) and same_location(str(hard), str(source))
    assert same_location(
        f"{tmp_path}/out/../out/new.csv", str(tmp_path / "out" / "new.csv")
    )  # neither exists
    assert not same_location(str(source), str(tmp_path / "out" / "source.jsonl"))
    assert same_location("s3://aws@Bucket/dir//x/../source.csv", "S3://aws@bucket/dir/source.csv")
    assert not same_location("s3://bucket/a.csv", "s3://bucket/b.csv")
    assert not same_location("s3://bucket/a.csv", "/bucket/a.csv")
