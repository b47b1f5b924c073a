"""The files an import passes between its stages: each one's writer and reader side by side.

``staging.jsonl`` (validate -> create)
    One ``{"row": n, "key": "<e-mail or null>", "body": {...}}`` per valid row, UTF-8:
    :func:`staging_line` writes a line, :func:`iter_staging` / :func:`inspect_staging` read.
    Each row read carries its :func:`row_digest` (of key and body), and
    :func:`inspect_staging` gives the file's identity: what the ledger records, so that
    an outcome is applied only to the row it was recorded for.
``rejects.csv`` (validate, then create adds Billbee's refusals)
    ``row, line, key, stage, problems`` (:data:`REJECT_COLUMNS`): :class:`RejectsWriter`
    writes rows for both stages, :func:`add_rejects` adds a stage's rows to an existing
    file once, :func:`rejected_rows` reads which rows a stage has rejected already;
    :mod:`~billbee_provider.imports.rejects` reads it a page at a time, for display.
``results.csv`` (create -> write-back)
    ``row, key, billbee_id, status`` (:data:`RESULTS_COLUMNS`): :func:`write_results`
    and :func:`iter_results`.

Every CSV goes through :class:`SafeCsvWriter`, made to be opened in a spreadsheet: every
cell quoted, ``\\r\\n`` line ends, UTF-8 with a byte order mark (Excel reads umlauts
right only then), a lone surrogate written as its ``\\udXXX`` escape (UTF-8 cannot carry
it), and a cell that a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: "CSV injection") prefixed with ``'``. Row
numbers, Ids, stages and statuses never start with such a character, so readers of those
columns (:func:`iter_results`, :func:`rejected_rows`) have nothing to undo.

This module does not import Airflow.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, cast

from billbee_provider.api.envelope import json_int
from billbee_provider.imports.storage import (
    Location,
    open_read,
    read_bytes,
    replace,
    stream_or_location,
)

#: The encoding of every CSV file written: Excel opens UTF-8 with a BOM as UTF-8.
CSV_ENCODING: Final = "utf-8-sig"
#: How the cells of every CSV file are quoted, and its line end.
CSV_QUOTING: Final = csv.QUOTE_ALL
CSV_LINE_END: Final = "\r\n"
# A cell starting with one of these is a formula to a spreadsheet ("CSV injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
# UTF-8 cannot carry these; a JSON source can hold them as "\ud800" escapes.
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class SafeCsvWriter:
    """The one CSV writer of the import: all cells quoted, ``\\r\\n``, formulas defused.

    ``None`` is written as an empty cell, anything else as its ``str``; a cell starting
    with ``= + - @``, a tab or a carriage return gets a leading ``'``, and lone
    surrogates are escaped as ``\\ud800``. The byte order mark comes from the encoding
    of the stream (see :func:`csv_target`).

    :param stream: the text stream to write to (opened with ``newline=""``).
    """

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream, quoting=CSV_QUOTING, lineterminator=CSV_LINE_END)

    def writerow(self, cells: Iterable[object]) -> None:
        """Write one row.

        :param cells: the row's values.
        """
        self._writer.writerow([safe_cell(cell) for cell in cells])


def safe_cell(value: object) -> str:
    """A value as a spreadsheet-safe CSV cell (see :class:`SafeCsvWriter`).

    :param value: the value; ``None`` is ``""``.
    :return: the cell's text.
    """
    text = "" if value is None else str(value)
    text = _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def restore_cell(cell: str) -> str:
    """Undo :func:`safe_cell`'s leading ``'`` before a formula character, for display.

    :param cell: a cell as read from a CSV file of this module.
    :return: the text as it was before it was written.
    """
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_STARTS) else cell


@contextlib.contextmanager
def csv_target(target: IO[str] | Location) -> Iterator[IO[str]]:
    """Yield a text stream as it is, or replace the location with UTF-8 text with a BOM.

    :param target: an open text stream (``newline=""``), or a location.
    :return: a context manager giving the text stream for a :class:`SafeCsvWriter`.
    """
    location = stream_or_location(target)
    if location is None:
        yield cast(IO[str], target)
        return
    with replace(location) as binary, _text_over(binary, CSV_ENCODING) as text:
        yield text


@contextlib.contextmanager
def _text_over(binary: IO[bytes], encoding: str) -> Iterator[IO[str]]:
    """A CSV text stream over an open binary file, which stays open (its owner closes it)."""
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    try:
        yield text
    finally:
        text.flush()
        text.detach()


# -- staging.jsonl ----------------------------------------------------------------------


class StagingError(ValueError):
    """The staging file is not what the validate stage writes (names a line, never data)."""


#: Hex digits kept of a SHA-256 digest (128 bits: no accidental collision in any import).
DIGEST_HEX_DIGITS: Final = 32


@dataclass(frozen=True, slots=True)
class StagedRow:
    """One line of the staging file.

    :param row: source row number.
    :param key: lower-cased e-mail, or ``None``.
    :param body: the Billbee create body.
    :param digest: :func:`row_digest` of ``key`` and ``body``: which row this is, whatever
        its number.
    :param key_is_email: whether ``key`` is the body's own ``Email`` (else it came from
        ``Address.Email``, or there is none): where a created customer carries the key.
    """

    row: int
    key: str | None
    body: dict[str, Any]
    digest: str
    key_is_email: bool


def row_digest(key: str | None, body: Mapping[str, Any]) -> str:
    """The digest of one row's content: SHA-256 of the canonical JSON of ``{"key", "body"}``.

    Canonical: keys sorted, no spaces, ASCII only (``\\uXXXX`` escapes), so the same key
    and body give the same digest whatever the staging file's formatting.

    :param key: the row's (lower-cased) key, or ``None``.
    :param body: the row's body.
    :return: :data:`DIGEST_HEX_DIGITS` lower-case hex digits.
    """
    canonical = json.dumps({"key": key, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:DIGEST_HEX_DIGITS]


def staging_line(number: int, key: str | None, body: Mapping[str, Any]) -> bytes | str:
    """The staging line of a valid row, or the problem that keeps it from being written.

    :param number: the source row number.
    :param key: the row's key (lower-cased e-mail), or ``None``.
    :param body: the valid body.
    :return: the UTF-8 line with its ``\\n``, or a problem text ``<body>: ...``.
    """
    try:
        text = json.dumps({"row": number, "key": key, "body": body}, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return "<body>: contains a lone surrogate (\\ud800-\\udfff), which UTF-8 cannot carry"
    except (TypeError, ValueError) as exc:
        return f"<body>: cannot be written as JSON: {exc}"


@dataclass(frozen=True, slots=True)
class StagingInfo:
    """What the create stage knows of its input before reading the rows.

    :param rows: number of non-blank lines.
    :param identity: SHA-256 of the file's bytes (:data:`DIGEST_HEX_DIGITS` hex digits):
        which input a ledger record was written for.
    """

    rows: int
    identity: str


def inspect_staging(staging: Location) -> StagingInfo:
    """Count the staging file's rows and take its identity, in one streaming pass (no parsing).

    :param staging: the staging file.
    :return: its :class:`StagingInfo`.
    """
    digest = hashlib.sha256()
    rows = 0
    with open_read(staging) as handle:
        for line in handle:
            digest.update(line)
            rows += 1 if line.strip() else 0
    return StagingInfo(rows, digest.hexdigest()[:DIGEST_HEX_DIGITS])


def iter_staging(staging: Location) -> Iterator[StagedRow]:
    """Stream the staging file's rows.

    :param staging: the staging file.
    :return: a generator of :class:`StagedRow`.
    :raises StagingError: for a line that is not a staging record (names its number).
    """
    with open_read(staging) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _parse_staged(number, line)


def _parse_staged(number: int, line: bytes) -> StagedRow:
    try:
        raw = json.loads(line.decode("utf-8-sig"))
    except ValueError:
        raise StagingError(f"staging line {number} is not UTF-8 JSON") from None
    if not isinstance(raw, Mapping):
        raise StagingError(f"staging line {number} is not a JSON object")
    row, key, body = raw.get("row"), raw.get("key"), raw.get("body")
    if not isinstance(row, int) or isinstance(row, bool):
        raise StagingError(f"staging line {number}: 'row' must be an integer")
    if not (key is None or isinstance(key, str)) or not isinstance(body, Mapping):
        raise StagingError(
            f"staging line {number} (row {row}): 'key' must be a string or null, 'body' an object"
        )
    # Defensive: the contract says lower-cased already; matching must not depend on it.
    key = (key.strip().lower() or None) if key else None
    body = dict(body)
    email = body.get("Email")
    key_is_email = key is not None and isinstance(email, str) and email.strip().lower() == key
    return StagedRow(row, key, body, row_digest(key, body), key_is_email)


# -- rejects.csv ------------------------------------------------------------------------

REJECT_ROW: Final = "row"
REJECT_LINE: Final = "line"
REJECT_KEY: Final = "key"
REJECT_STAGE: Final = "stage"
REJECT_PROBLEMS: Final = "problems"
#: The columns of a rejects file.
REJECT_COLUMNS: Final = (REJECT_ROW, REJECT_LINE, REJECT_KEY, REJECT_STAGE, REJECT_PROBLEMS)
#: ``stage`` of the rows the validate stage rejects.
VALIDATE_STAGE: Final = "validate"
#: ``stage`` of the rows Billbee itself refused (added by the create stage).
BILLBEE_STAGE: Final = "billbee"
#: How the problems of one row are joined in the rejects file.
PROBLEM_SEPARATOR: Final = " | "


class RejectsWriter:
    """Writes rejected rows (of any stage) as CSV, problems joined by ``" | "``.

    :param stream: the text stream to write to (opened with ``newline=""``).
    :param header: whether to write the header line first.
    """

    def __init__(self, stream: IO[str], *, header: bool = True) -> None:
        self._writer = SafeCsvWriter(stream)
        if header:
            self._writer.writerow(REJECT_COLUMNS)

    def write(
        self, *, row: int, line: int | None, key: str | None, stage: str, problems: Sequence[str]
    ) -> None:
        """Write one rejected row.

        :param row: the source row number.
        :param line: the physical line the row starts on, if the source has lines.
        :param key: the row's key (see :func:`~billbee_provider.customers.mapping.body_key`).
        :param stage: the stage that rejected the row, e.g. ``validate``.
        :param problems: every problem, each ``<path>: <reason>``.
        """
        self._writer.writerow((row, line, key, stage, PROBLEM_SEPARATOR.join(problems)))


@dataclass(frozen=True, slots=True)
class Reject:
    """A row refused by a later stage, to be added to the rejects file.

    :param row: the source row number.
    :param key: the row's key, or ``None``.
    :param problems: every problem.
    :param line: the physical line of the source, if known.
    """

    row: int
    key: str | None
    problems: Sequence[str]
    line: int | None = None


def rejected_rows(content: bytes, stage: str) -> set[int]:
    """Row numbers of a rejects file's lines of ``stage``.

    :param content: the rejects file's bytes.
    :param stage: the stage, e.g. ``billbee``.
    :return: the row numbers (lines whose row is no integer are left out).
    """
    reader = csv.reader(io.StringIO(content.decode(CSV_ENCODING), newline=""))
    header = next(reader, None)
    if not header or REJECT_ROW not in header or REJECT_STAGE not in header:
        return set()
    row_at, stage_at = header.index(REJECT_ROW), header.index(REJECT_STAGE)
    width = max(row_at, stage_at)
    rows = (json_int(line[row_at]) for line in reader if len(line) > width and line[stage_at] == stage)
    return {row for row in rows if row is not None}


def add_rejects(location: Location, stage: str, rejects: Iterable[Reject]) -> int:
    """Add ``stage``'s rejected rows to a rejects file, skipping rows it already has for that stage.

    The file is rewritten as a whole (:func:`replace`); a missing or empty file is
    created with its byte order mark and header.

    :param location: the rejects file.
    :param stage: the stage that rejected the rows.
    :param rejects: the rows.
    :return: the number of rows added.
    """
    existing = read_bytes(location)
    known = rejected_rows(existing, stage)
    new = [reject for reject in rejects if reject.row not in known]
    if not new:
        return 0
    if not existing.strip():
        existing = b""
    elif not existing.endswith(b"\n"):
        existing += CSV_LINE_END.encode()
    with replace(location) as handle:
        handle.write(existing)
        # Appended after the old content: its byte order mark is already there, or is written now.
        with _text_over(handle, "utf-8" if existing else CSV_ENCODING) as text:
            writer = RejectsWriter(text, header=not existing)
            for reject in new:
                writer.write(
                    row=reject.row, line=reject.line, key=reject.key, stage=stage, problems=reject.problems
                )
    return len(new)


# -- results.csv ------------------------------------------------------------------------

RESULT_ROW: Final = "row"
RESULT_KEY: Final = "key"
RESULT_BILLBEE_ID: Final = "billbee_id"
RESULT_STATUS: Final = "status"
#: The columns of a results file.
RESULTS_COLUMNS: Final = (RESULT_ROW, RESULT_KEY, RESULT_BILLBEE_ID, RESULT_STATUS)


class ResultLine(Protocol):
    """What a results line is written from (the create stage's ``RowOutcome``)."""

    @property
    def row(self) -> int:
        """The source row number."""

    @property
    def key(self) -> str | None:
        """The row's key, or ``None``."""

    @property
    def billbee_id(self) -> int | None:
        """The customer's Billbee Id, if there is one."""

    @property
    def status(self) -> str:
        """The row's final status."""


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One line of a results file, as write-back needs it.

    :param row: the source row number.
    :param billbee_id: the customer's Billbee Id, or ``None``.
    :param status: the row's status.
    """

    row: int
    billbee_id: int | None
    status: str


def write_results(location: Location, lines: Iterable[ResultLine]) -> None:
    """Write the results CSV, one line per row, replacing the file as a whole.

    :param location: the results file.
    :param lines: the rows' outcomes, in the order to write them.
    """
    with csv_target(location) as text:
        writer = SafeCsvWriter(text)
        writer.writerow(RESULTS_COLUMNS)
        for line in lines:
            writer.writerow((line.row, line.key, line.billbee_id, line.status))


def iter_results(location: Location) -> Iterator[ResultRecord]:
    """Read a results file's row numbers, Billbee Ids and statuses (the key is not read).

    :param location: the results file.
    :return: a generator of :class:`ResultRecord`; none if the file does not exist.
    :raises ValueError: for a line whose row number is not an integer.
    """
    text = io.StringIO(read_bytes(location).decode(CSV_ENCODING), newline="")
    for number, record in enumerate(csv.DictReader(text), start=2):
        row = json_int(record[RESULT_ROW])
        if row is None:
            raise ValueError(f"results line {number}: {RESULT_ROW!r} is not an integer")
        yield ResultRecord(row, json_int(record[RESULT_BILLBEE_ID]), record[RESULT_STATUS])
