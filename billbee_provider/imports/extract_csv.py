"""Read customer rows from CSV files with a header line, one row at a time.

See :mod:`billbee_provider.imports.extract` for locations, :class:`SourceRow` and
:class:`SourceError`. The reader streams: memory stays flat however many rows a file has.

This module does not import Airflow.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Final

from billbee_provider.api.errors import shorten
from billbee_provider.imports.extract import (
    MAX_LINE_BYTES,
    SourceError,
    SourceRow,
    byte_lines,
    decode_reason,
    source_chunks,
)
from billbee_provider.imports.storage import Location, describe_location, open_read

#: UTF-8, with or without a byte order mark (Excel writes one).
DEFAULT_CSV_ENCODING: Final = "utf-8-sig"
#: The delimiters :func:`iter_csv` detects; any other one must be passed explicitly.
DETECTED_DELIMITERS: Final = (",", ";", "\t")
#: Delimiter settings that are names, as a form gives them.
DELIMITER_NAMES: Final = {"auto": None, "": None, "tab": "\t", "\\t": "\t"}

_SHOWN_NAME_CHARS: Final = 60
# How the csv module says a cell hit its field_size_limit().
_TOO_LONG: Final = "field larger than field limit"


def iter_csv(
    location: Location, *, encoding: str | None = None, delimiter: str | None = None
) -> Iterator[SourceRow]:
    """Yield the data rows of a CSV file with a header line.

    Blank lines and rows whose cells are all empty (Excel's trailing ``;;;``) are
    skipped. A row with fewer cells than the header gets ``""`` for the missing ones; a
    row with more gets a problem, unless the extra cells are all empty (a trailing
    delimiter). Header names are stripped of surrounding whitespace; cells are kept
    byte-exact. Lines may end with ``\\r\\n``, ``\\n`` or ``\\r``, mixed. A cell longer
    than ``csv.field_size_limit()`` characters is a problem of its row, unless a quoted
    cell is still open at the end of its line: then where the row ends is unknown, and
    the file fails. A line longer than
    :data:`~billbee_provider.imports.extract.MAX_LINE_BYTES` fails the file.

    :param location: where the file is (see :func:`~billbee_provider.imports.storage.open_read`).
    :param encoding: the file's encoding (see
        :func:`~billbee_provider.imports.extract.source_chunks`): ``None`` or ``"auto"``
        (UTF-8 with or without a byte order mark, UTF-16/32 by its byte order mark),
        ``"cp1252"`` for legacy Windows exports (``"cp1252!"`` even if the file is UTF-8),
        or any codec name.
    :param delimiter: the cell delimiter; ``None`` or ``"auto"``: detected from the header
        line (the most frequent of ``,``, ``;`` and tab outside quotes; ``,`` if none);
        ``"tab"`` for a tab.
    :return: a generator of :class:`SourceRow`.
    :raises SourceError: if the file is empty, its header has an unnamed or duplicated
        column, its bytes are not in the encoding, a line is too long, or a quote is
        never closed.
    """
    name = describe_location(location)
    separator = delimiter_setting(delimiter)
    with open_read(location, infer_compression_from_name=True) as stream:
        chunks, codec = source_chunks(stream, encoding, name, default=DEFAULT_CSV_ENCODING)
        lines = _text_lines(byte_lines(chunks, name=name), codec, name)
        skipped, header_lines = _header_lines(lines, name)
        if not header_lines:
            raise SourceError(f"{name} is empty: no header line")
        separator = separator or detect_delimiter("".join(header_lines))
        # strict: a stray character after a closing quote is reported, not glued on.
        fed = _QuoteCount(itertools.chain(header_lines, lines))
        reader = csv.reader(fed, delimiter=separator, strict=True)
        header = _header(_next_record(reader, name, skipped + 1), name)
        yield from _csv_rows(reader, fed, header, name, skipped)


def delimiter_setting(delimiter: str | None) -> str | None:
    """The delimiter a setting names: ``None`` to detect it (``None``, ``""``, ``"auto"``).

    :param delimiter: ``None``, ``"auto"``, ``"tab"`` (or ``"\\t"``), or one character.
    :return: the character, or ``None``.
    :raises ValueError: for anything else.
    """
    if delimiter is None or delimiter.lower() in DELIMITER_NAMES:
        return DELIMITER_NAMES[(delimiter or "").lower()]
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, 'tab' or 'auto', got {delimiter!r}")
    return delimiter


def detect_delimiter(header: str) -> str:
    """Pick the delimiter of a header line: the most frequent of ``,``, ``;`` and tab.

    Only characters outside double quotes count, so a quoted ``"Name, Vorname"`` does not
    make a ``;`` file look like a ``,`` file. Ties go to ``,``, then ``;`` (a header of
    one column is read with ``,``).

    :param header: the header line (all its physical lines, if a name is quoted over several).
    :return: ``","``, ``";"`` or ``"\\t"``.
    """
    counts = Counter(char for char in _outside_quotes(header) if char in DETECTED_DELIMITERS)
    return max(DETECTED_DELIMITERS, key=lambda char: counts[char])


def _outside_quotes(text: str) -> Iterator[str]:
    quoted = False
    for char in text:
        if char == '"':
            # A doubled quote inside quotes toggles twice: still inside, as it should be.
            quoted = not quoted
        elif not quoted:
            yield char


def _text_lines(raw_lines: Iterable[bytes], codec: str, name: str) -> Iterator[str]:
    """Decode line by line, so a bad byte is reported with its line number."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    line = 0
    try:
        for raw in raw_lines:
            line += 1
            yield decoder.decode(raw)
        # A multi-byte character cut off by the end of the file surfaces only here.
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: line {max(line, 1)}: {decode_reason(exc, codec)}") from None
    if tail:
        yield tail


def _header_lines(lines: Iterator[str], name: str) -> tuple[int, list[str]]:
    """Take the physical lines of the header record, skipping blank lines before it.

    :return: how many blank lines were skipped, and the header's lines.
    :raises SourceError: if a quote in the header stays open for more than
        :data:`~billbee_provider.imports.extract.MAX_LINE_BYTES` characters.
    """
    skipped = 0
    header: list[str] = []
    quotes = 0
    size = 0
    for text in lines:
        size += len(text)
        if size > MAX_LINE_BYTES:
            raise SourceError(f"{name}: line {skipped + 1}: a quote in the header line is never closed")
        text = text if header or skipped else text.removeprefix("\ufeff")
        if not header and not text.strip():
            skipped += 1
            continue
        header.append(text)
        quotes += text.count('"')
        if quotes % 2 == 0:
            break
    return skipped, header


def _next_record(reader: Any, name: str, line: int) -> list[str]:
    """The next record; ``[]`` at the end of the file."""
    try:
        record: list[str] = next(reader, [])
    except csv.Error as exc:
        raise SourceError(_fatal_message(exc, name, line)) from None
    return record


def _fatal_message(exc: csv.Error, name: str, line: int) -> str:
    return _fatal_csv_reason(exc, name, line) or f"{name}: line {line}: {exc}"


def _fatal_csv_reason(exc: csv.Error, name: str, line: int) -> str | None:
    """A message if the csv error leaves the rest of the file unreadable, else ``None``."""
    # The csv module tells these apart only by message: both mean an opening quote
    # without a closing one swallowed the rest of the file, so no later row is trustworthy.
    message = str(exc)
    if "unexpected end of data" in message:
        return f"{name}: line {line}: a quoted field that starts here is never closed ({message})"
    if _TOO_LONG in message:
        return (
            f"{name}: line {line}: a quoted field that starts here is never closed, "
            f"or a cell is longer than {csv.field_size_limit()} characters"
        )
    return None


class _QuoteCount:
    """The lines fed to the csv reader; counts the quotes in them."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.quotes = 0

    def __iter__(self) -> _QuoteCount:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.quotes += line.count('"')
        return line


def _header(cells: list[str], name: str) -> list[str]:
    names = [cell.strip() for cell in cells]
    unnamed = [str(index) for index, column in enumerate(names, start=1) if not column]
    if unnamed:
        raise SourceError(f"{name}: header column(s) {', '.join(unnamed)} have no name")
    repeated = [column for column, count in Counter(names).items() if count > 1]
    if repeated:
        shown = ", ".join(_column_positions(names, column) for column in repeated)
        raise SourceError(f"{name}: header names a column more than once: {shown}")
    return names


def _column_positions(names: list[str], column: str) -> str:
    positions = ", ".join(str(index) for index, other in enumerate(names, start=1) if other == column)
    return f"{shorten(column, _SHOWN_NAME_CHARS)!r} (columns {positions})"


def _csv_rows(
    reader: Any, fed: _QuoteCount, header: list[str], name: str, skipped: int
) -> Iterator[SourceRow]:
    number = 0
    while True:
        line = skipped + reader.line_num + 1
        quotes = fed.quotes
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = _row_csv_problem(exc, line, closed=(fed.quotes - quotes) % 2 == 0)
            if problem is None:
                raise SourceError(_fatal_message(exc, name, line)) from None
            number += 1
            yield SourceRow(number, line, {}, [problem])
            continue
        if any(cells):
            number += 1
            yield _csv_row(number, line, header, cells)


def _row_csv_problem(exc: csv.Error, line: int, *, closed: bool) -> str | None:
    """The problem of a row the csv module could not read; ``None`` if the file is lost.

    :param closed: whether the lines read for the row have balanced quotes, so that the
        line after them starts a new row. The csv module drops the rest of the line it
        failed on, so then reading can go on after a cell that is too long.
    """
    message = str(exc)
    if "unexpected end of data" in message:
        return None
    if _TOO_LONG not in message:
        return f"line {line}: malformed CSV: {message}"
    return f"line {line}: a cell is longer than {csv.field_size_limit()} characters" if closed else None


def _csv_row(number: int, line: int, header: list[str], cells: list[str]) -> SourceRow:
    if len(cells) == len(header):  # the usual case, kept cheap
        return SourceRow(number, line, dict(zip(header, cells, strict=True)))
    fields = dict(zip(header, cells, strict=False))
    for column in header[len(cells) :]:
        fields[column] = ""
    problems = []
    if any(cells[len(header) :]):
        problems.append(f"line {line}: row has {len(cells)} cells, header has {len(header)}")
    return SourceRow(number, line, fields, problems)
