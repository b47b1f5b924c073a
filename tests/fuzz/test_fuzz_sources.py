"""Hostile CSV and JSON Lines files: rows with their problems, or one clear SourceError.

Each test states what :mod:`billbee_provider.imports.extract` promises for *any* input: it never
fails with anything but :class:`SourceError`, whose message starts with the file's name
and names the line (or the header); rows are numbered without gaps, every problem
starts with its row's line, and what a correct writer wrote is read back byte-exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from billbee_provider.imports import extract as sources
from billbee_provider.imports.extract import SourceError, SourceRow
from billbee_provider.imports.extract_csv import iter_csv
from billbee_provider.imports.extract_jsonl import iter_jsonl

from .strategies import (
    BAD_UTF8,
    LINE_ENDINGS,
    PROPERTY_TIMEOUT,
    CsvFile,
    csv_bytes,
    filled_texts,
    jsonl_bytes,
    line_of,
    physical_lines,
    source_file,
    texts,
    write_csv,
)

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)


def assert_clear_source_error(error: SourceError, path: Path) -> None:
    """The message starts with the file's name and says where: a line or the header."""
    message = str(error)
    assert message.startswith(str(path)), message
    assert "line" in message or "header" in message, message


def assert_rows_consistent(rows: list[SourceRow], data: bytes) -> None:
    """Numbers without gaps, lines rising within the file, problems naming their line."""
    assert [row.number for row in rows] == list(range(1, len(rows) + 1))
    lines = [row.line for row in rows]
    assert lines == sorted(set(lines)), lines
    assert all(1 <= line <= max(physical_lines(data), 1) for line in lines)
    for row in rows:
        assert all(problem.startswith(f"line {row.line}: ") for problem in row.problems), row.problems
        assert isinstance(row.fields, dict)


def expected_rows(file: CsvFile) -> list[tuple[int, dict[str, str], bool]]:
    """What a correct reader makes of a written file: (line, fields, has a problem) per row."""
    out = []
    for start, cells in zip(file.starts, file.records, strict=True):
        if not any(cells):
            continue  # blank lines and Excel's ";;;" are no rows
        fields = dict(zip(file.header, cells, strict=False))
        fields.update({name: "" for name in file.header[len(cells) :]})
        out.append((start, fields, any(cells[len(file.header) :])))
    return out


@st.composite
def clean_csv_files(draw: st.DrawFn) -> tuple[CsvFile, str]:
    """A CSV file with a good header and hostile cells, and its delimiter.

    (A first header name starting with a BOM would lose it: a leading BOM is the file's,
    even twice, as some tools write it.)
    """
    name = filled_texts().map(str.strip).filter(lambda text: text != "" and not text.startswith("\ufeff"))
    names = st.lists(name, min_size=1, max_size=4, unique=True)
    header = draw(names)
    width = st.integers(min_value=0, max_value=len(header) + 1)
    records = draw(st.lists(width.flatmap(lambda n: st.lists(texts(), min_size=n, max_size=n)), max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    endings = draw(st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=4))
    file = write_csv(
        header,
        records,
        delimiter=delimiter,
        endings=endings,
        quote_all=draw(st.booleans()),
        bom=draw(st.booleans()),
    )
    return file, delimiter


@given(data=csv_bytes())
def test_any_csv_bytes_give_rows_or_a_clear_source_error(data: bytes) -> None:
    with source_file(data) as path:
        try:
            rows = list(iter_csv(path))
        except SourceError as error:
            assert_clear_source_error(error, path)
            return
    assert_rows_consistent(rows, data)


@given(case=clean_csv_files(), chunk=st.integers(min_value=1, max_value=64))
def test_cells_survive_byte_exact_with_mixed_line_endings(case: tuple[CsvFile, str], chunk: int) -> None:
    file, delimiter = case
    # Small chunks put a "\r\n" (and multi-byte characters) across chunk borders.
    with source_file(file.data) as path, mock.patch.object(sources, "CHUNK_BYTES", chunk):
        rows = list(iter_csv(path, delimiter=delimiter))
    got = [(row.line, row.fields, bool(row.problems)) for row in rows]
    assert got == expected_rows(file)


@given(case=clean_csv_files(), junk=st.sampled_from(BAD_UTF8), where=st.floats(min_value=0, max_value=1))
def test_invalid_utf8_anywhere_names_its_line(case: tuple[CsvFile, str], junk: bytes, where: float) -> None:
    file, delimiter = case
    position = int(where * len(file.data))
    data = file.data[:position] + junk + file.data[position:]
    with source_file(data) as path, pytest.raises(SourceError) as raised:
        list(iter_csv(path, delimiter=delimiter))
    message = str(raised.value)
    assert message.startswith(f"{path}: line {line_of(data, position)}: not valid utf-8 (byte 0x"), message


@given(case=clean_csv_files(), where=st.floats(min_value=0, max_value=1))
def test_bom_in_the_middle_is_kept_as_data(case: tuple[CsvFile, str], where: float) -> None:
    file, delimiter = case
    assume(file.records and file.records[0])
    records = [list(record) for record in file.records]
    cell = records[0][0]
    records[0][0] = cell[: int(where * len(cell))] + "\ufeff" + cell[int(where * len(cell)) :]
    moved = write_csv(file.header, records, delimiter=delimiter, bom=True)
    with source_file(moved.data) as path:
        rows = list(iter_csv(path, delimiter=delimiter))
    assert rows[0].fields[file.header[0]] == records[0][0]


@given(data=jsonl_bytes())
def test_any_jsonl_bytes_give_one_row_per_line(data: bytes) -> None:
    with source_file(data, ".jsonl") as path:
        rows = list(iter_jsonl(path))
    assert_rows_consistent(rows, data)
    for row in rows:
        assert row.problems == [] or row.fields == {}, row
        assert all(isinstance(name, str) for name in row.fields)


@given(
    objects=st.lists(st.dictionaries(texts(max_size=5), texts(), max_size=4), max_size=6),
    endings=st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=3),
    ascii_only=st.booleans(),
)
def test_jsonl_objects_survive_mixed_line_endings(
    objects: list[dict[str, str]], endings: list[str], ascii_only: bool
) -> None:
    lines = [
        json.dumps(item, ensure_ascii=ascii_only) + endings[i % len(endings)]
        for i, item in enumerate(objects)
    ]
    with source_file("".join(lines).encode(), ".jsonl") as path:
        assert [row.fields for row in iter_jsonl(path)] == objects


# --- huge cells and near-empty files (examples, not properties) -----------------------------

HUGE = "x" * (1 << 20)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("cell", [HUGE, f'"{HUGE}"', f'"{HUGE[:500_000]}""{HUGE[:500_000]}"'])
def test_a_one_megabyte_cell_rejects_its_row_and_reading_goes_on(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(f"Name,Email\r\n{cell},a@b.de\r\nAnna,c@d.de\r\n", encoding="utf-8", newline="")
    rows = list(iter_csv(path))
    assert [(row.line, row.problems) for row in rows] == [
        (2, ["line 2: a cell is longer than 131072 characters"]),
        (3, []),
    ]
    assert rows[1].fields == {"Name": "Anna", "Email": "c@d.de"}


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f'Name,Email\n"{HUGE}\n{HUGE}",a@b.de\nAnna,c@d.de\n', 2),  # quoted over two lines
        (f'Name,Email\nAnna,a@b.de\n"never closed,{HUGE}\nBen,b@c.de\n', 3),
        (f"{HUGE},Email\nAnna,a@b.de\n", 1),  # the header itself
    ],
)
def test_a_huge_cell_that_hides_the_rest_fails_the_file_naming_its_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = tmp_path / "huge.csv"
    path.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(SourceError) as raised:
        list(iter_csv(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: line {line}: a quoted field that starts here is never closed")
    assert "longer than 131072 characters" in message
    assert "xxxx" not in message


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"\r", None),
        (b"\r\r\n\n\r", None),
        (b"\xef\xbb\xbf\r", None),
        (b"Name,Email\r", []),
        (b"\xef\xbb\xbfName,Email", []),
        (b"Name,Email\rA,a@b.de\rB,b@c.de", [(2, "A"), (3, "B")]),  # old Mac line endings
        (b"Name,Email\r\n\r\rA,a@b.de\n\nB,b@c.de\r", [(4, "A"), (6, "B")]),
    ],
)
def test_empty_and_header_only_files_with_any_line_ending(
    tmp_path: Path, content: bytes, rows: list[tuple[int, str]] | None
) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(content)
    if rows is None:
        with pytest.raises(SourceError, match=r"customers\.csv is empty: no header line"):
            list(iter_csv(path))
    else:
        assert [(row.line, row.fields["Name"]) for row in iter_csv(path)] == rows
