"""Tests of the source readers (:mod:`billbee_provider.imports.extract_csv`, ``extract_jsonl``)."""

from __future__ import annotations

import csv
import gzip
import io
import os
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upath import UPath

from billbee_provider.imports.extract import SourceError, SourceRow
from billbee_provider.imports.extract_csv import detect_delimiter, iter_csv
from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.storage import describe_location, open_read

GERMAN_EXCEL = (
    "\ufeffName;Email;Type;Address.Street;Address.Housenumber;Address.City;Address.Company\r\n"
    'Jürgen Weiß;juergen.weiss@example.de;0;Straße des 17. Juni;"12; Hinterhaus";Köln;\r\n'
    'Müller "der Große";mueller@example.de;1;"Königsallee";3;Düsseldorf;"Bäckerei ""Zum Glück"""\r\n'
    '"Anna\r\nMaria";anna@example.de;0;Weg;1;"Berlin; Mitte";"a;b\nc"\r\n'
)


def _write(tmp_path: Path, text: str | bytes, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _memory_url(data: bytes, suffix: str = ".csv") -> str:
    url = f"memory://billbee-tests/{uuid.uuid4().hex}{suffix}"
    with fsspec.open(url, "wb") as handle:
        handle.write(data)
    return url


def test_german_excel_export_is_read_byte_exact(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, GERMAN_EXCEL)))

    assert [(row.number, row.line, row.problems) for row in rows] == [(1, 2, []), (2, 3, []), (3, 4, [])]
    assert rows[0].fields == {
        "Name": "Jürgen Weiß",
        "Email": "juergen.weiss@example.de",
        "Type": "0",
        "Address.Street": "Straße des 17. Juni",
        "Address.Housenumber": "12; Hinterhaus",
        "Address.City": "Köln",
        "Address.Company": "",
    }
    assert rows[1].fields["Name"] == 'Müller "der Große"'
    assert rows[1].fields["Address.Company"] == 'Bäckerei "Zum Glück"'
    assert rows[2].fields["Name"] == "Anna\r\nMaria"
    assert rows[2].fields["Address.City"] == "Berlin; Mitte"
    assert rows[2].fields["Address.Company"] == "a;b\nc"


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    text = 'a,b\n"1\n2\n3",x\n\n\n4,y\n'
    rows = list(iter_csv(_write(tmp_path, text)))
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 7)]


def test_comma_file_without_bom(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, 'Name,Email\n"Weiß, Jürgen",j@example.de\n')))
    assert rows[0].fields == {"Name": "Weiß, Jürgen", "Email": "j@example.de"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Name;Email;City", ";"),
        ("Name,Email,City", ","),
        ('"Name, Vorname";Email', ";"),
        ('"a;b;c",d', ","),
        ("Email", ","),
        ('"Na""me";"E;mail",x', ","),
    ],
)
def test_detect_delimiter_counts_outside_quotes(header: str, expected: str) -> None:
    assert detect_delimiter(header) == expected


def test_explicit_delimiter(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, "a\tb\n1;2\t3,4\n"), delimiter="\t"))
    assert rows[0].fields == {"a": "1;2", "b": "3,4"}
    with pytest.raises(ValueError, match="one character"):
        list(iter_csv(_write(tmp_path, "a\n"), delimiter=";;"))


def test_header_names_are_stripped_cells_are_not(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, " Name ; Email\n  Jürgen  ; j@x.de \n")))
    assert rows[0].fields == {"Name": "  Jürgen  ", "Email": " j@x.de "}


def test_cp1252_export_with_explicit_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "Name;Address.Street\r\nJürgen Weiß;Straße 5 – Hof\r\n".encode("cp1252"))
    rows = list(iter_csv(path, encoding="cp1252"))
    assert rows[0].fields == {"Name": "Jürgen Weiß", "Address.Street": "Straße 5 – Hof"}


def test_cp1252_export_read_as_utf8_fails_clearly(tmp_path: Path) -> None:
    path = _write(tmp_path, "Name;City\r\nAnna;Berlin\r\nJürgen Weiß;Köln\r\n".encode("cp1252"))
    with pytest.raises(SourceError) as raised:
        list(iter_csv(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: line 3: not valid utf-8 (byte 0xfc at byte 2 of the line)")
    assert "encoding='cp1252'" in message
    assert "Weiß" not in message
    assert "J" not in message.split("line 3")[1]


def test_utf8_character_cut_off_at_end_of_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="line 2: not valid utf-8"):
        list(iter_csv(_write(tmp_path, b"Name\nJ\xc3")))


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(SourceError, match=r"is empty: no header line"):
        list(iter_csv(path))


def test_header_only_gives_no_rows(tmp_path: Path) -> None:
    assert list(iter_csv(_write(tmp_path, "Name;Email\r\n"))) == []


def test_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, "\n\nName;Email\nA;a@x.de\n")))
    assert [(row.number, row.line, row.fields["Name"]) for row in rows] == [(1, 4, "A")]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Name;;Email\n", "header column(s) 2 have no name"),
        ("Name;Email; \n", "header column(s) 3 have no name"),
        ("Email;Name;Email\n", "header names a column more than once: 'Email' (columns 1, 3)"),
    ],
)
def test_bad_header(tmp_path: Path, header: str, expected: str) -> None:
    path = _write(tmp_path, header + "a;b;c\n")
    with pytest.raises(SourceError) as raised:
        list(iter_csv(path))
    assert str(raised.value) == f"{path}: {expected}"


def test_ragged_rows(tmp_path: Path) -> None:
    text = "a;b;c\n1;2;3;4\n1;2;3;;\n1\n;;\n;;;\n5;6;7\n"
    rows = list(iter_csv(_write(tmp_path, text)))
    assert rows[0].problems == ["line 2: row has 4 cells, header has 3"]
    assert rows[0].fields == {"a": "1", "b": "2", "c": "3"}
    # Empty extra cells are a trailing delimiter, not data.
    assert rows[1].problems == []
    assert rows[2].fields == {"a": "1", "b": "", "c": ""}
    assert rows[2].problems == []
    # Rows with nothing in them (Excel's ";;") are skipped, not numbered.
    assert [(row.number, row.line) for row in rows] == [(1, 2), (2, 3), (3, 4), (4, 7)]


def test_malformed_row_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    rows = list(iter_csv(_write(tmp_path, 'a,b\n"x"y,z\n1,2\n')))
    assert rows[0] == SourceRow(1, 2, {}, ["line 2: malformed CSV: ',' expected after '\"'"])
    assert rows[1] == SourceRow(2, 3, {"a": "1", "b": "2"})


def test_unclosed_quote_fails_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, 'a,b\n1,2\n"never closed,3\n4,5\n')
    with pytest.raises(SourceError, match=r"line 3: a quoted field that starts here is never closed"):
        list(iter_csv(path))


def test_unknown_encoding_and_utf16_without_bom(tmp_path: Path) -> None:
    path = _write(tmp_path, "a\n1\n")
    with pytest.raises(
        SourceError, match=r"line 1: not valid utf-16 \(UTF-16 stream does not start with BOM\)"
    ):
        list(iter_csv(path, encoding="utf-16"))
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        list(iter_csv(path, encoding="klingon"))


def test_locations_memory_file_url_path_upath_and_pathlike(tmp_path: Path) -> None:
    data = "Name;City\nJürgen;Köln\n".encode()
    path = _write(tmp_path, data)

    class PlainPathLike:
        def __fspath__(self) -> str:
            return str(path)

    locations: list[Any] = [
        _memory_url(data),
        path.as_uri(),
        str(path),
        path,
        UPath(path),
        UPath(_memory_url(data)),
        PlainPathLike(),
    ]
    for location in locations:
        rows = list(iter_csv(location))
        assert [row.fields for row in rows] == [{"Name": "Jürgen", "City": "Köln"}], location


def test_compression_is_inferred_for_urls(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(gzip.compress("Name\nJürgen\n".encode()))
    assert [row.fields for row in iter_csv(str(path))] == [{"Name": "Jürgen"}]


def test_open_read_reads_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, b"abc")
    with open_read(path) as handle:
        assert handle.read() == b"abc"


def test_describe_location_masks_passwords() -> None:
    assert describe_location("s3://key:secret@bucket/a.csv") == "s3://key:***@bucket/a.csv"
    assert describe_location("s3://aws_default@bucket/a.csv") == "s3://aws_default@bucket/a.csv"
    assert describe_location(Path("/data/a.csv")) == "/data/a.csv"


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        '\ufeff{"Name": "Jürgen Weiß", "Address": {"City": "Köln"}}',
        "",
        '{"Name": "Müller \\"der Große\\" {x}"}',
        "   ",
        '{"Name": "Anna" "Email": "anna@example.de"}',
        "[1, 2]",
        '{"Type": NaN}',
        "null",
        '{"Email": "ok@example.de"}',
    ]
    path = _write(tmp_path, "\n".join(lines) + "\n", "customers.jsonl")
    rows = list(iter_jsonl(path))

    assert [(row.number, row.line) for row in rows] == [
        (1, 1),
        (2, 3),
        (3, 5),
        (4, 6),
        (5, 7),
        (6, 8),
        (7, 9),
    ]
    assert rows[0].fields == {"Name": "Jürgen Weiß", "Address": {"City": "Köln"}}
    assert rows[1].fields == {"Name": 'Müller "der Große" {x}'}
    assert rows[2] == SourceRow(3, 5, {}, ["line 5: not a JSON object: Expecting ',' delimiter at column 17"])
    assert rows[3].problems == ["line 6: not a JSON object: got an array"]
    assert rows[4].problems == ["line 7: not a JSON object: NaN is not valid JSON"]
    assert rows[5].problems == ["line 8: not a JSON object: got null"]
    assert rows[6] == SourceRow(7, 9, {"Email": "ok@example.de"})


def test_jsonl_bad_bytes_make_a_row_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"Name": "J\xfcrgen"}\n{"Name": "A"}'.encode("latin-1"), "c.jsonl")
    rows = list(iter_jsonl(path))
    assert rows[0].fields == {}
    assert rows[0].problems[0].startswith("line 1: not valid utf-8 (byte 0xfc at byte 12 of the line)")
    assert rows[1].fields == {"Name": "A"}
    assert next(iter_jsonl(path, encoding="latin-1")).fields == {"Name": "Jürgen"}


# --- streaming -----------------------------------------------------------------------

ROWS_IN_BIG_FILE = 200_000


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("Name;Email;Type;Address.Street;Address.City\r\n")
        for start in range(0, ROWS_IN_BIG_FILE, 10_000):
            handle.writelines(
                f'Kundin {i} Weiß;k{i}@example.de;{i % 2};"Straße {i}; Hof";Köln\r\n'
                for i in range(start, start + 10_000)
            )
    return path


class _CountingPath:
    """An ``Openable`` that counts the bytes read through it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_read = 0

    def open(self, mode: str) -> io.BufferedReader:
        owner = self

        class Counting(io.FileIO):
            def read(self, size: int | None = -1) -> bytes:
                data = super().read(-1 if size is None else size)
                owner.bytes_read += len(data)
                return data

        return io.BufferedReader(Counting(self.path, mode.replace("b", "")))


def test_first_row_does_not_read_the_whole_file(big_csv: Path) -> None:
    location = _CountingPath(big_csv)
    rows = iter_csv(location)
    first = next(rows)
    assert first.fields["Email"] == "k0@example.de"
    assert location.bytes_read < 512 * 1024 < os.path.getsize(big_csv) / 10
    rows.close()


@pytest.mark.slow
def test_memory_stays_flat_over_200k_rows(big_csv: Path) -> None:
    tracemalloc.start()
    try:
        count = 0
        for row in iter_csv(big_csv):
            count += 1
            last = row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS_IN_BIG_FILE
    assert last.fields["Address.Street"] == f"Straße {ROWS_IN_BIG_FILE - 1}; Hof"
    assert peak < 5 * 1024 * 1024


# --- properties ----------------------------------------------------------------------

_cells = st.text(st.characters(codec="utf-8"), max_size=30)
_rows = st.lists(st.lists(_cells, min_size=3, max_size=3), max_size=8)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_rows, delimiter=st.sampled_from([",", ";"]), bom=st.booleans(), crlf=st.booleans())
def test_any_cells_survive_csv_write_and_read(
    tmp_path: Path, rows: list[list[str]], delimiter: str, bom: bool, crlf: bool
) -> None:
    buffer = io.StringIO(newline="")
    # Python 3.11 leaves a lone "\r" unquoted when the terminator is "\n": quote all then.
    quoting = csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n", quoting=quoting)
    writer.writerow(["Name", "Email", "Address.City"])
    writer.writerows(rows)
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8-sig" if bom else "utf-8"))

    read = [[row.fields["Name"], row.fields["Email"], row.fields["Address.City"]] for row in iter_csv(path)]

    assert read == [row for row in rows if any(row)]


@settings(max_examples=50, deadline=None)
@given(objects=st.lists(st.dictionaries(st.text(max_size=10), _cells, max_size=4), max_size=6))
def test_any_objects_survive_jsonl(objects: list[dict[str, str]]) -> None:
    import json

    data = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in objects).encode()
    assert [row.fields for row in iter_jsonl(_memory_url(data, ".jsonl"))] == objects
