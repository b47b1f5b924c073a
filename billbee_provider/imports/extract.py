"""Read customer rows from CSV and JSON Lines files, one row at a time.

Both readers are generators over a byte stream: memory stays flat however many rows a
file has. A file is addressed by a ``str`` URL or path (opened with :func:`fsspec.open`,
so ``file://``, ``s3://``, ``memory://`` ... work, and ``.gz`` & co. are decompressed),
an :class:`os.PathLike`, or any object with ``.open("rb")`` such as Airflow's
``ObjectStoragePath``, ``UPath`` or :class:`pathlib.Path`.

Problems of the file as a whole (no header, bytes that are not in the encoding, a quote
that is never closed) raise :class:`SourceError`; problems of one row (too many cells, a
line that is not a JSON object) are put on that :class:`SourceRow` so the row can be
reported and the rest of the file read. Messages name files, line numbers and columns,
never cell values: cells hold personal data.

This module does not import Airflow.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final, Protocol, TypeAlias, runtime_checkable

import fsspec  # type: ignore[import-untyped, unused-ignore]

#: How many bytes are read from the file at a time.
CHUNK_BYTES: Final = 1 << 16
#: UTF-8, with or without a byte order mark (Excel writes one).
DEFAULT_CSV_ENCODING: Final = "utf-8-sig"
DEFAULT_JSONL_ENCODING: Final = "utf-8"
#: The delimiters :func:`iter_csv` detects; any other one must be passed explicitly.
DETECTED_DELIMITERS: Final = (",", ";")

_SHOWN_NAME_CHARS: Final = 60
# ``scheme://user:password@host``: the password must not reach a message.
_URL_PASSWORD: Final = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")
# Text that every supported encoding writes as plain ASCII bytes: lines are split on
# b"\n" and b"\r" before decoding, which is only right for such encodings.
_ASCII_PROBE: Final = '\n\r,;"{}'
_LINE_END: Final = re.compile(rb"\r\n?|\n")
# How the csv module says a cell hit its field_size_limit().
_TOO_LONG: Final = "field larger than field limit"


class SourceError(ValueError):
    """A source file cannot be read (empty, bad header, bytes not in the encoding, ...)."""


@dataclass(slots=True)
class SourceRow:
    """One data row of a source.

    :param number: 1-based data row number (the header and blank lines not counted).
    :param line: the physical line of the file where the row starts (1-based).
    :param fields: the row's values by column name (CSV: strings; JSONL: the object).
    :param problems: what is wrong with the row itself, each ``line N: <reason>``.
    """

    number: int
    line: int
    fields: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@runtime_checkable
class Openable(Protocol):
    """Anything with ``.open(mode)``: ``ObjectStoragePath``, ``UPath``, ``pathlib.Path``."""

    def open(self, mode: str, /) -> Any:
        """Open the object in ``mode`` and return a file object (a context manager)."""


#: Where a source file is: a URL or path string, a path-like, or an :class:`Openable`.
Location: TypeAlias = str | os.PathLike[str] | Openable


def describe_location(location: Location) -> str:
    """Name a location for messages, with any password in a URL masked.

    :param location: the file's location.
    :return: the URL or path as text.
    """
    if isinstance(location, str):
        text = location
    elif isinstance(location, os.PathLike) and not isinstance(location, Openable):
        text = os.fspath(location)
    else:
        text = str(location)
    return _URL_PASSWORD.sub(r"\1:***@", text)


@contextlib.contextmanager
def open_binary(location: Location) -> Iterator[IO[bytes]]:
    """Open a location for reading bytes.

    :param location: a URL or path (through :func:`fsspec.open`, compression inferred
        from the name), a path-like, or an object with ``.open("rb")``.
    :return: a context manager giving the binary file object.
    """
    with contextlib.ExitStack() as stack:
        if isinstance(location, str):
            handle = stack.enter_context(fsspec.open(location, "rb", compression="infer"))
        elif isinstance(location, Openable):
            handle = stack.enter_context(location.open("rb"))
        else:
            handle = stack.enter_context(open(os.fspath(location), "rb"))
        yield handle


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
    the file fails.

    :param location: where the file is (see :func:`open_binary`).
    :param encoding: the file's encoding; UTF-8 with or without a byte order mark by
        default. Pass e.g. ``"cp1252"`` for legacy Windows exports. Only encodings that
        write ASCII as ASCII are supported (not UTF-16).
    :param delimiter: the cell delimiter; by default ``;`` if the header line has more
        semicolons than commas outside quotes, else ``,``.
    :return: a generator of :class:`SourceRow`.
    :raises SourceError: if the file is empty, its header has an unnamed or duplicated
        column, its bytes are not in the encoding, or a quote is never closed.
    """
    name = describe_location(location)
    codec = _checked_codec(encoding or DEFAULT_CSV_ENCODING, name)
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, got {delimiter!r}")
    with open_binary(location) as stream:
        lines = _text_lines(_byte_lines(stream), codec, name)
        skipped, header_lines = _header_lines(lines)
        if not header_lines:
            raise SourceError(f"{name} is empty: no header line")
        separator = delimiter or detect_delimiter("".join(header_lines))
        # strict: a stray character after a closing quote is reported, not glued on.
        fed = _QuoteCount(itertools.chain(header_lines, lines))
        reader = csv.reader(fed, delimiter=separator, strict=True)
        header = _header(_next_record(reader, name, skipped + 1), name)
        yield from _csv_rows(reader, fed, header, name, skipped)


def iter_jsonl(location: Location, *, encoding: str = DEFAULT_JSONL_ENCODING) -> Iterator[SourceRow]:
    """Yield one row per non-blank line of a JSON Lines file, each line one JSON object.

    A line that is not a JSON object becomes a row with ``fields={}`` and a problem such
    as ``line 7: not a JSON object: Expecting ',' delimiter at column 12``.

    :param location: where the file is (see :func:`open_binary`).
    :param encoding: the file's encoding (UTF-8 by default; a leading BOM is ignored).
    :return: a generator of :class:`SourceRow`.
    """
    name = describe_location(location)
    codec = _checked_codec(encoding, name)
    with open_binary(location) as stream:
        number = 0
        for line, raw in enumerate(_byte_lines(stream), start=1):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                number += 1
                yield SourceRow(number, line, {}, [f"line {line}: {_decode_reason(exc, codec)}"])
                continue
            text = text.removeprefix("\ufeff") if line == 1 else text
            if text.strip():
                number += 1
                yield _json_row(number, line, text)


def detect_delimiter(header: str) -> str:
    """Pick the delimiter of a header line: ``;`` if it has more ``;`` than ``,``.

    Only characters outside double quotes count, so a quoted ``"Name, Vorname"`` does not
    make a ``;`` file look like a ``,`` file.

    :param header: the header line (all its physical lines, if a name is quoted over several).
    :return: ``";"`` or ``","``.
    """
    counts = Counter(char for char in _outside_quotes(header) if char in DETECTED_DELIMITERS)
    return ";" if counts[";"] > counts[","] else ","


def _outside_quotes(text: str) -> Iterator[str]:
    quoted = False
    for char in text:
        if char == '"':
            # A doubled quote inside quotes toggles twice: still inside, as it should be.
            quoted = not quoted
        elif not quoted:
            yield char


def _checked_codec(encoding: str, name: str) -> str:
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"{name}: unknown encoding {encoding!r}") from None
    if not _ASCII_PROBE.encode(codec).endswith(_ASCII_PROBE.encode("ascii")):
        raise SourceError(f"{name}: encoding {encoding!r} is not supported; re-export the file as UTF-8")
    return codec


def _byte_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Split a byte stream after each line end, reading a chunk at a time.

    A line ends with ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old Mac exports), as with
    ``open(newline="")``, which the csv module expects: a lone ``\\r`` inside a line
    would make it fail with "new-line character seen in unquoted field".
    """
    buffer = bytearray()
    while chunk := stream.read(CHUNK_BYTES):
        buffer += chunk
        yield from _cut_lines(buffer, final=False)
    yield from _cut_lines(buffer, final=True)
    if buffer:
        yield bytes(buffer)


def _cut_lines(buffer: bytearray, *, final: bool) -> Iterator[bytes]:
    """Yield the complete lines at the start of ``buffer`` and remove them from it."""
    start = 0
    for end in [match.end() for match in _LINE_END.finditer(buffer)]:
        if end == len(buffer) and buffer[-1:] == b"\r" and not final:
            break  # the "\n" of a "\r\n" may be in the next chunk
        yield bytes(buffer[start:end])
        start = end
    del buffer[:start]


def _text_lines(byte_lines: Iterable[bytes], codec: str, name: str) -> Iterator[str]:
    """Decode line by line, so a bad byte is reported with its line number."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    line = 0
    try:
        for raw in byte_lines:
            line += 1
            yield decoder.decode(raw)
        # A multi-byte character cut off by the end of the file surfaces only here.
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: line {max(line, 1)}: {_decode_reason(exc, codec)}") from None
    if tail:
        yield tail


def _decode_reason(exc: UnicodeDecodeError, codec: str) -> str:
    label = "utf-8" if codec.startswith("utf-8") else codec
    bad = exc.object[exc.start : exc.start + 1].hex()
    reason = f"not valid {label} (byte 0x{bad} at byte {exc.start + 1} of the line)"
    if label == "utf-8":
        reason += "; pass encoding='cp1252' if this is a legacy export"
    return reason


def _header_lines(lines: Iterator[str]) -> tuple[int, list[str]]:
    """Take the physical lines of the header record, skipping blank lines before it.

    :return: how many blank lines were skipped, and the header's lines.
    """
    skipped = 0
    header: list[str] = []
    quotes = 0
    for text in lines:
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
    shown = column if len(column) <= _SHOWN_NAME_CHARS else column[: _SHOWN_NAME_CHARS - 3] + "..."
    return f"{shown!r} (columns {positions})"


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


def _json_row(number: int, line: int, text: str) -> SourceRow:
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at column {exc.colno}"
    except ValueError as exc:
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply"
    else:
        if isinstance(value, dict):
            return SourceRow(number, line, value)
        reason = f"got {_json_kind(value)}"
    return SourceRow(number, line, {}, [f"line {line}: not a JSON object: {reason}"])


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _json_kind(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = ((bool, "a boolean"), (list, "an array"), (str, "a string"))
    for python_type, kind in kinds:
        if isinstance(value, python_type):
            return kind
    return "null" if value is None else "a number"
