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
import itertools
import re
from collections.abc import Iterable, Iterator
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

#: The longest physical line a source may have, in bytes: 4 MiB. A customer row is a few
#: hundred bytes; a line this long is a wrong file (a dump, a binary, a JSON array on
#: one line), refused as soon as this much of it is read rather than after the whole
#: line is in memory. (A quoted cell over several lines is bounded by the csv module's
#: ``field_size_limit()``, 131,072 characters by default.)
MAX_LINE_BYTES: Final = 4 << 20
#: The encoding setting that detects the encoding (see :func:`source_chunks`).
AUTO_ENCODING: Final = "auto"

# Text that every ASCII-compatible encoding writes as plain ASCII bytes: lines are split
# on b"\n" and b"\r" before decoding; other encodings are transcoded to UTF-8 first.
_ASCII_PROBE: Final = '\n\r,;"{}'
_ASCII_MAX: Final = 0x7F
# Byte order marks, longest first (UTF-32LE's starts with UTF-16LE's).
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# How much of the file's start the encoding is guessed from, and the least it needs to
# call a file without byte order mark UTF-16 (four ASCII characters).
_SNIFF_BYTES: Final = 64
_UTF16_MIN_BYTES: Final = 8
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
    :param encoding: the file's encoding, as :func:`source_chunks` takes it (``None`` or
        ``"auto"``: detected).
    :param delimiter: the CSV delimiter (``None`` or ``"auto"``: detected; ``"tab"``);
        not used for JSONL.
    :return: a generator of :class:`SourceRow`.
    """
    # Imported here: the format modules import this one.
    from billbee_provider.imports.extract_csv import iter_csv
    from billbee_provider.imports.extract_jsonl import iter_jsonl

    if fmt == "jsonl":
        return iter_jsonl(location, encoding=encoding)
    return iter_csv(location, encoding=encoding, delimiter=delimiter)


def source_chunks(
    stream: IO[bytes], encoding: str | None, name: str, *, default: str = "utf-8-sig"
) -> tuple[Iterator[bytes], str]:
    """The file's bytes in chunks, in an encoding that writes ASCII as ASCII, and that codec.

    Lines are split as bytes (:func:`byte_lines`), which is right only for such encodings;
    a file in another one (UTF-16, UTF-32) is transcoded to UTF-8 chunk by chunk here, so
    the readers after this never see the difference.

    * ``None``, ``""`` or ``"auto"``: a UTF-16 or UTF-32 file is recognised by its byte
      order mark (Excel's "Unicode text" is UTF-16LE with one); anything else is read as
      ``default`` (UTF-8 with or without a byte order mark), whose reader refuses bytes
      that are not UTF-8 with the advice to choose ``cp1252``. A file that looks like
      UTF-16 without a byte order mark is refused with the advice to name it.
    * a codec name (``"cp1252"``, ``"utf-16-le"``, ...): read as that codec. A legacy
      (non-UTF) codec is refused when the file is really UTF-8: the first non-ASCII
      character of the file decides (cp1252 text is almost never valid UTF-8, and UTF-8
      read as cp1252 turns ``ü`` into ``Ã¼``). A trailing ``!`` (``"cp1252!"``) forces
      the codec without that check.

    :param stream: the binary stream, read :data:`CHUNK_BYTES` at a time.
    :param encoding: the encoding setting, as above.
    :param name: the file's description, for messages.
    :param default: the codec of ``auto`` when there is no UTF-16/32 byte order mark.
    :return: the chunks, and the codec to decode their lines with.
    :raises SourceError: for an unknown codec, a UTF-16 file without byte order mark in
        ``auto``, or a UTF-8 file read as a legacy codec (raised by the iterator).
    """
    setting = (encoding or AUTO_ENCODING).strip()
    forced = setting.endswith("!")
    setting = setting.removesuffix("!").strip()
    chunks = _read_chunks(stream)
    if setting.lower() == AUTO_ENCODING:
        head, chunks = _peek(chunks, _SNIFF_BYTES)
        bom_codec = next((codec for bom, codec in _BOMS if head.startswith(bom)), None)
        if bom_codec is not None:
            return _transcoded(chunks, bom_codec, name), "utf-8"
        if _looks_like_utf16(head):
            raise SourceError(
                f"{name}: line 1: the file looks like UTF-16 without a byte order mark; choose encoding "
                "'utf-16-le' (or 'utf-16-be'), or save the file as 'CSV UTF-8'"
            )
        setting = default
    try:
        codec = codecs.lookup(setting).name
    except LookupError:
        raise SourceError(f"{name}: unknown encoding {setting!r}") from None
    if not _ASCII_PROBE.encode(codec).endswith(_ASCII_PROBE.encode("ascii")):
        return _transcoded(chunks, codec, name), "utf-8"
    if not forced and not codec.startswith("utf"):
        chunks = _refuse_utf8(chunks, setting, name)
    return chunks, codec


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def _peek(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``size`` bytes (fewer at the end of the file), and all the chunks again."""
    taken: list[bytes] = []
    while sum(map(len, taken)) < size:
        chunk = next(chunks, b"")
        if not chunk:
            break
        taken.append(chunk)
    return b"".join(taken)[:size], itertools.chain(taken, chunks)


def _looks_like_utf16(head: bytes) -> bool:
    """ASCII text as UTF-16 without a byte order mark: every other byte is NUL, the others not."""
    pairs = head[: len(head) // 2 * 2]
    if len(pairs) < _UTF16_MIN_BYTES:
        return False
    even, odd = pairs[0::2], pairs[1::2]
    return (b"\0" not in even and not odd.strip(b"\0")) or (b"\0" not in odd and not even.strip(b"\0"))


def _transcoded(chunks: Iterator[bytes], codec: str, name: str) -> Iterator[bytes]:
    """Decode ``codec`` chunk by chunk (an incremental decoder) and encode the text as UTF-8."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    line = 1
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            yield text.encode("utf-8")
            line += text.count("\n")
        yield decoder.decode(b"", final=True).encode("utf-8")
    except UnicodeError as exc:  # the UTF-16 decoder raises a plain one for a missing BOM
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise SourceError(
            f"{name}: line {line}: not valid {codec} ({reason}); check the file's encoding"
        ) from None


def _refuse_utf8(chunks: Iterator[bytes], setting: str, name: str) -> Iterator[bytes]:
    """Pass the chunks on; fail at the first non-ASCII character if it is valid UTF-8."""
    decoder: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")("strict")
    line = 1
    for chunk in chunks:
        if decoder is not None:
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                decoder = None  # not UTF-8: the chosen codec is right
            else:
                if not text.isascii():
                    first = next(index for index, byte in enumerate(chunk) if byte > _ASCII_MAX)
                    line += chunk.count(b"\n", 0, first)
                    raise SourceError(
                        f"{name}: line {line}: the file is UTF-8, but "
                        f"encoding {setting!r} was chosen (umlauts would arrive as 'Ã¼'); choose encoding "
                        f"'auto', or {setting + '!'!r} to read it as {setting} anyway"
                    )
        line += chunk.count(b"\n")
        yield chunk


def byte_lines(
    source: IO[bytes] | Iterable[bytes], *, name: str = "the file", max_line: int | None = None
) -> Iterator[bytes]:
    """Split a byte stream after each line end, scanning each byte once.

    A line ends with ``\\r\\n``, ``\\n`` or a lone ``\\r`` (old Mac exports), as with
    ``open(newline="")``, which the csv module expects: a lone ``\\r`` inside a line
    would make it fail with "new-line character seen in unquoted field". Only the bytes of
    each new chunk are searched for line ends, so a file of one long line costs the same
    as one of many short ones.

    :param source: a binary stream (read :data:`CHUNK_BYTES` at a time), or its chunks.
    :param name: the file's description, for messages.
    :param max_line: the longest line allowed, in bytes with its line end (default
        :data:`MAX_LINE_BYTES`).
    :return: a generator of lines, each with its line end (the last one may have none).
    :raises SourceError: as soon as a line is longer than ``max_line`` bytes.
    """
    limit = MAX_LINE_BYTES if max_line is None else max_line
    # A stream is read in chunks (iterating it would split it at b"\n" only).
    chunks = _read_chunks(cast(IO[bytes], source)) if hasattr(source, "read") else iter(source)
    pending = bytearray()  # the start of a line whose end is not read yet
    line = 0
    for chunk in chunks:
        start = 0
        if pending.endswith(b"\r") and chunk:  # a "\r" at the end of the last chunk ended a line
            start = 1 if chunk.startswith(b"\n") else 0
            line += 1
            _check_length(len(pending) + start, limit, name, line)
            yield bytes(pending) + chunk[:start]
            pending.clear()
        for match in _LINE_END.finditer(chunk, start):
            end = match.end()
            if end == len(chunk) and chunk.endswith(b"\r"):
                break  # the "\n" of a "\r\n" may be in the next chunk
            line += 1
            _check_length(len(pending) + end - start, limit, name, line)
            if pending:
                pending += chunk[start:end]
                yield bytes(pending)
                pending.clear()
            else:
                yield chunk[start:end]
            start = end
        pending += chunk[start:]
        _check_length(len(pending), limit, name, line + 1)
    if pending:
        yield bytes(pending)


def _check_length(size: int, limit: int, name: str, line: int) -> None:
    """Refuse a line (line end included) of more than ``limit`` bytes."""
    if size > limit:
        raise SourceError(
            f"{name}: line {line}: longer than {limit} bytes, the most a line may have; "
            "is this a customer list?"
        )


def decode_reason(exc: UnicodeDecodeError, codec: str) -> str:
    """Why a line could not be decoded: the byte and where, never the text around it.

    :param exc: the decoding error of one line.
    :param codec: the codec used.
    :return: e.g. ``not valid utf-8 (byte 0xfc at byte 12 of the line); choose ...``.
    """
    label = "utf-8" if codec.startswith("utf-8") else codec
    bad = exc.object[exc.start : exc.start + 1].hex()
    reason = f"not valid {label} (byte 0x{bad} at byte {exc.start + 1} of the line)"
    if label == "utf-8":
        reason += "; choose encoding='cp1252' for a legacy export (Excel's 'CSV (Trennzeichen-getrennt)')"
    return reason
