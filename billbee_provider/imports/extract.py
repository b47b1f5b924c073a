"""Customer rows from source files: the row type, the format dispatch and shared helpers.

The readers live one module per format: :mod:`~billbee_provider.imports.extract_csv`
(:func:`~billbee_provider.imports.extract_csv.iter_csv`),
:mod:`~billbee_provider.imports.extract_jsonl`
(:func:`~billbee_provider.imports.extract_jsonl.iter_jsonl`) and, for query results
written as JSON Lines, :mod:`~billbee_provider.imports.extract_sql`. :func:`iter_rows`
picks the reader by the format given or the file name.

Both readers are generators over a byte stream: memory stays flat however many rows a
file has. A file is a :data:`~billbee_provider.imports.storage.Location`, opened with
:func:`~billbee_provider.imports.storage.open_read`: a ``str`` URL or path (``file://``,
``s3://``, ``memory://`` ..., and ``.gz`` & co. are decompressed), an
:class:`os.PathLike`, or any object with ``.open("rb")`` such as Airflow's
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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final, Literal, cast, get_args

from billbee_provider.imports.storage import Location

#: How many bytes are read from the file at a time.
CHUNK_BYTES: Final = 1 << 16
#: The formats :func:`iter_rows` reads.
SourceFormat = Literal["csv", "jsonl"]
SOURCE_FORMATS: Final[tuple[str, ...]] = get_args(SourceFormat)
#: File name endings and the format they stand for.
FORMATS_BY_SUFFIX: Final[dict[str, SourceFormat]] = {
    ".csv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

# Text that every supported encoding writes as plain ASCII bytes: lines are split on
# b"\n" and b"\r" before decoding, which is only right for such encodings.
_ASCII_PROBE: Final = '\n\r,;"{}'
_LINE_END: Final = re.compile(rb"\r\n?|\n")


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


def source_format(name: str, given: str | None = None) -> SourceFormat:
    """``csv`` or ``jsonl``: ``given``, or from the file name's ending.

    :param name: the file's name, path or URL.
    :param given: the format, if the caller knows it.
    :return: the format.
    :raises SourceError: for an unknown ``given`` format, or a name that tells none.
    """
    if given:
        if given not in SOURCE_FORMATS:
            raise SourceError(f"source_format must be 'csv' or 'jsonl', got {given!r}")
        return cast(SourceFormat, given)
    for suffix, fmt in FORMATS_BY_SUFFIX.items():
        if name.lower().endswith(suffix):
            return fmt
    raise SourceError(f"cannot tell the format of {name!r}: name it .csv or .jsonl or set source_format")


def iter_rows(
    location: Location,
    fmt: SourceFormat,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[SourceRow]:
    """Yield the data rows of a CSV or JSON Lines file.

    :param location: where the file is.
    :param fmt: ``csv`` or ``jsonl`` (see :func:`source_format`).
    :param encoding: the file's encoding; each reader's default if ``None``.
    :param delimiter: the CSV delimiter (detected if ``None``); not used for JSONL.
    :return: a generator of :class:`SourceRow`.
    """
    # Imported here: the format modules import this one.
    from billbee_provider.imports.extract_csv import iter_csv
    from billbee_provider.imports.extract_jsonl import DEFAULT_JSONL_ENCODING, iter_jsonl

    if fmt == "jsonl":
        return iter_jsonl(location, encoding=encoding or DEFAULT_JSONL_ENCODING)
    return iter_csv(location, encoding=encoding, delimiter=delimiter)


def checked_codec(encoding: str, name: str) -> str:
    """The codec's canonical name, if it writes ASCII as ASCII (lines are split as bytes).

    :param encoding: the encoding's name.
    :param name: the file's description, for messages.
    :return: the codec name.
    :raises SourceError: for an unknown or unsupported (e.g. UTF-16) encoding.
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"{name}: unknown encoding {encoding!r}") from None
    if not _ASCII_PROBE.encode(codec).endswith(_ASCII_PROBE.encode("ascii")):
        raise SourceError(f"{name}: encoding {encoding!r} is not supported; re-export the file as UTF-8")
    return codec


def byte_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Split a byte stream after each line end, reading :data:`CHUNK_BYTES` at a time.

    A line ends with ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old Mac exports), as with
    ``open(newline="")``, which the csv module expects: a lone ``\\r`` inside a line
    would make it fail with "new-line character seen in unquoted field".

    :param stream: the binary stream.
    :return: a generator of lines, each with its line end (the last one may have none).
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


def decode_reason(exc: UnicodeDecodeError, codec: str) -> str:
    """Why a line could not be decoded: the byte and where, never the text around it.

    :param exc: the decoding error of one line.
    :param codec: the codec used.
    :return: e.g. ``not valid utf-8 (byte 0xfc at byte 12 of the line); pass ...``.
    """
    label = "utf-8" if codec.startswith("utf-8") else codec
    bad = exc.object[exc.start : exc.start + 1].hex()
    reason = f"not valid {label} (byte 0x{bad} at byte {exc.start + 1} of the line)"
    if label == "utf-8":
        reason += "; pass encoding='cp1252' if this is a legacy export"
    return reason
