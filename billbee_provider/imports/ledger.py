"""An append-only JSONL ledger of per-row outcomes of a customer import.

Billbee's create is not idempotent (API-FACTS): a POST that is sent twice can create
the customer twice. The ledger is what lets a killed or retried import tell "sent" from
"not sent": the importer writes ``sending`` *before* a request leaves and the outcome
(``created``, ``rejected``, ...) after its answer. A row whose last event is ``sending``
may have reached Billbee without its answer being recorded: it is *in doubt*. A row
without any record was never sent.

One record per line::

    {"row": 12, "key": "anna@example.de", "event": "created", "billbee_id": 100000150176895,
     "digest": "9f2c...", "input": "41d0...", "at": "2025-01-31T10:00:00.123+00:00"}

A record belongs to one row of one input
    ``digest`` is the row's :func:`~billbee_provider.imports.files.row_digest` (SHA-256 of
    the canonical JSON of its key and body), ``input`` the staging file's identity
    (:func:`~billbee_provider.imports.files.inspect_staging`, SHA-256 of its bytes). An
    output folder can be reused with another source (a nightly import into a fixed
    folder, a SQL sync whose row 1 is another shop row every night): row numbers alone
    would then carry day A's outcomes (and Billbee Ids) over to day B's rows. The rule,
    :meth:`LedgerState.match`: an entry applies to a staged row only if it was recorded
    for the same row number **and the same digest** (the same key and the same body).
    A row whose digest differs from its ledger entries is another row: it is treated as
    new (checked against the account and sent, or found existing, as any new row), and
    the old entry's outcome and Id are never reported for it. Nothing is refused and no
    file is rotated: entries are kept per ``(row, digest)`` in the one file, so a run of
    the first input again (or a resume of it) still finds its own entries, and the Ids
    of every entry stay claimed (:meth:`LedgerState.entries`), so an in-doubt row is
    never resolved to a customer another row of any input was given. The same row
    (same key and body, same number) in another input counts as the same row: its
    outcome carries over. Records written before digests existed (no ``digest``) match a
    row of the same number and the same key, so a resume of an import that was in
    flight when the provider was upgraded stays exactly-once. ``input`` is recorded for
    people and for the run's log (:attr:`LedgerState.inputs`); matching does not use it.

Durability, two backends behind one interface (:class:`Ledger` picks by location):

* **A local file** (a path, ``file://``, a local ``ObjectStoragePath``) is appended to
  with :class:`~billbee_provider.imports.storage.Appender`: kept open in append mode,
  every record flushed and ``fsync``-ed before :meth:`Ledger.record` returns, so a
  SIGKILL (or a power cut) loses at most the record being written. That record can be
  torn (half a line); :meth:`Ledger.load` skips unreadable lines, and the next append
  starts on a fresh line.
* **Object storage** (an fsspec URL such as ``s3://...``, or an ``ObjectStoragePath``
  with its connection) cannot append. Every record is one small object under
  ``<ledger>.d/`` (:mod:`~billbee_provider.imports.object_ledger`), written by one PUT
  that has completed when :meth:`Ledger.record` returns: the cost per record does not
  grow with the ledger, and a second writer cannot overwrite the first one's records.
  :meth:`Ledger.load` lists the folder and reads each record once (after a ledger left
  as one object at the location itself by an older version).
* An object with ``.open(mode)`` but no file system behind it gets ``open("ab")`` per
  record, or its whole content rewritten per record if it cannot append (correct, slow).

Locations are :data:`billbee_provider.imports.storage.Location` values, as for every file
of the import. This module does not import Airflow.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from billbee_provider.api.envelope import json_int
from billbee_provider.imports.object_ledger import ObjectRecords, file_system_of
from billbee_provider.imports.scratch_db import ScratchStore
from billbee_provider.imports.storage import (
    Appender,
    Location,
    describe_location,
    ends_with_newline,
    open_read,
)

Event = Literal["sending", "created", "existing", "duplicate_in_file", "rejected", "in_doubt", "failed"]
EVENTS: frozenset[str] = frozenset(get_args(Event))
#: Outcomes that are never sent again: the row is done, whatever the re-run.
FINAL_EVENTS: frozenset[str] = frozenset({"created", "existing", "duplicate_in_file", "rejected"})
#: Sent, answer unknown: the customer may or may not exist.
UNRESOLVED_EVENTS: frozenset[str] = frozenset({"sending", "in_doubt"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger record (the last one of its row, as :meth:`Ledger.load` returns it).

    :param row: source row number.
    :param key: the row's lower-cased e-mail, or ``None``.
    :param event: what happened.
    :param at: ISO 8601 time of the record (UTC).
    :param billbee_id: the customer's Billbee Id (created / existing).
    :param error_code: Billbee's ``ErrorCode`` (rejected).
    :param message: Billbee's message (rejected) or the error (failed / in doubt).
    :param digest: the row's :func:`~billbee_provider.imports.files.row_digest`; ``None`` in
        records written before digests existed.
    :param input_id: the identity of the staging file the record was written for (the
        record's ``input``), or ``None``.
    """

    row: int
    key: str | None
    event: Event
    at: str
    billbee_id: int | None = None
    error_code: int | None = None
    message: str | None = None
    digest: str | None = None
    input_id: str | None = None

    @property
    def final(self) -> bool:
        """Whether the row is done and must never be sent again."""
        return self.event in FINAL_EVENTS

    @property
    def unresolved(self) -> bool:
        """Whether the row was sent and its outcome is unknown."""
        return self.event in UNRESOLVED_EVENTS

    def to_json(self) -> str:
        """The record as one JSON line (without the newline); ``None`` fields left out."""
        record: dict[str, Any] = {"row": self.row, "key": self.key, "event": self.event}
        for name, field in (
            ("billbee_id", "billbee_id"),
            ("error_code", "error_code"),
            ("message", "message"),
            ("digest", "digest"),
            ("input", "input_id"),
        ):
            value = getattr(self, field)
            if value is not None:
                record[name] = value
        record["at"] = self.at
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> LedgerEntry:
        """Parse one JSON line.

        :raises ValueError: if it is not JSON or not a ledger record.
        """
        raw = json.loads(line)
        if not isinstance(raw, Mapping):
            raise ValueError("not a JSON object")
        row, key, event = raw.get("row"), raw.get("key"), raw.get("event")
        if not isinstance(row, int) or isinstance(row, bool) or event not in EVENTS:
            raise ValueError("not a ledger record")
        if not (key is None or isinstance(key, str)):
            raise ValueError("not a ledger record")
        return cls(
            row=row,
            key=key,
            event=cast(Event, event),
            at=str(raw.get("at") or ""),
            billbee_id=json_int(raw.get("billbee_id")),
            error_code=json_int(raw.get("error_code")),
            message=_str_or_none(raw.get("message")),
            digest=_str_or_none(raw.get("digest")),
            input_id=_str_or_none(raw.get("input")),
        )


class LedgerState(ScratchStore, Mapping[int, LedgerEntry]):
    """A loaded ledger: the last entry of every ``(row, digest)``, and which one applies to a row.

    As a mapping it is the last entry of every row number, whatever its digest (what
    happened last at that row number), in row order; the importer asks :meth:`match`.
    The entries are kept in a private temporary SQLite file, not in Python objects (a
    resume of a 100,000-row import held 150 MB of them): memory stays flat in the
    records. :meth:`close` (or the end of a ``with`` block) drops the file.
    """

    def __init__(self) -> None:
        super().__init__(
            # digest "" stands for none (a record older than digests): a real one is hex. The
            # event, whether there is a key and the Id answer the run's questions without
            # parsing every record (see has_unresolved and billbee_ids).
            "CREATE TABLE by_digest (row INTEGER NOT NULL, digest TEXT NOT NULL, line INTEGER NOT NULL,"
            " input TEXT, event TEXT NOT NULL, keyed INTEGER NOT NULL, billbee_id INTEGER,"
            " record TEXT NOT NULL, PRIMARY KEY (row, digest)) WITHOUT ROWID",
            # The last record of a row is the last one of its (row, digest): kept once, in by_digest.
            "CREATE TABLE last (row INTEGER PRIMARY KEY, digest TEXT NOT NULL)",
        )

    def add(self, line: int, entry: LedgerEntry, record: str | None = None) -> None:
        """Take one record (records must come in file order).

        :param record: the entry's JSON line as read (default: :meth:`LedgerEntry.to_json`).
        """
        text = entry.to_json() if record is None else record
        self._db.execute(
            "INSERT INTO last (row, digest) VALUES (?, ?) "
            "ON CONFLICT (row) DO UPDATE SET digest = excluded.digest",
            (entry.row, entry.digest or ""),
        )
        self._db.execute(
            "INSERT INTO by_digest (row, digest, line, input, event, keyed, billbee_id, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (row, digest) DO UPDATE SET line = excluded.line, "
            "input = excluded.input, event = excluded.event, keyed = excluded.keyed, "
            "billbee_id = excluded.billbee_id, record = excluded.record",
            (
                entry.row,
                entry.digest or "",
                line,
                entry.input_id,
                entry.event,
                bool(entry.key),
                entry.billbee_id,
                text,
            ),
        )

    def __getitem__(self, row: int) -> LedgerEntry:
        found = self._db.execute(
            "SELECT b.record FROM last AS l JOIN by_digest AS b ON b.row = l.row AND b.digest = l.digest "
            "WHERE l.row = ?",
            (row,),
        ).fetchone()
        if found is None:
            raise KeyError(row)
        return LedgerEntry.from_json(found[0])

    def __iter__(self) -> Iterator[int]:
        return (found[0] for found in self._db.execute("SELECT row FROM last ORDER BY row"))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM last").fetchone()[0])

    def match(self, row: int, key: str | None, digest: str) -> LedgerEntry | None:
        """The entry that applies to the staged row ``row`` with this key and digest, or ``None``.

        The last entry recorded for ``(row, digest)``; or an entry without a digest (an
        older version's record) of the same row and key, whichever was recorded later.
        """
        found = self._db.execute(
            "SELECT line, record FROM by_digest WHERE row = ? AND digest IN (?, '')", (row, digest)
        ).fetchall()
        candidates = [(line, LedgerEntry.from_json(record)) for line, record in found]
        applies = [(line, e) for line, e in candidates if e.digest is not None or e.key == key]
        return max(applies, key=lambda c: c[0])[1] if applies else None

    def entries(self) -> Iterator[LedgerEntry]:
        """The last entry of every ``(row, digest)``: every row of every input the ledger saw (streamed)."""
        for (record,) in self._db.execute("SELECT record FROM by_digest ORDER BY row, line"):
            yield LedgerEntry.from_json(record)

    def has_unresolved(self) -> bool:
        """Whether an entry with a key was sent without a known answer (``sending``, ``in_doubt``)."""
        events = sorted(UNRESOLVED_EVENTS)
        found = self._db.execute(
            f"SELECT 1 FROM by_digest WHERE keyed AND event IN ({', '.join('?' * len(events))}) LIMIT 1",  # noqa: S608
            events,
        )
        return found.fetchone() is not None

    def billbee_ids(self) -> Iterator[int]:
        """The Billbee Ids of the entries (streamed): every Id the ledger gave a row."""
        return (
            found[0]
            for found in self._db.execute("SELECT billbee_id FROM by_digest WHERE billbee_id IS NOT NULL")
        )

    def entry_count(self) -> int:
        """How many entries :meth:`entries` gives."""
        return int(self._db.execute("SELECT count(*) FROM by_digest").fetchone()[0])

    @property
    def inputs(self) -> set[str]:
        """Identities of the staging inputs the ledger has records of (without older records')."""
        found = self._db.execute("SELECT DISTINCT input FROM by_digest WHERE input IS NOT NULL")
        return {input_id for (input_id,) in found}


class Ledger:
    """The per-row outcome log of one import; thread-safe.

    :param location: where the ledger lives: a local path or ``file://`` URL (one JSONL
        file, fsync'ed per record), or an object-store URL or ``ObjectStoragePath`` (one
        object per record under ``<location>.d/``). Created on the first record.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._lock = threading.Lock()
        remote = file_system_of(location)
        #: The object-storage backend, or ``None`` for a file (local, or a plain openable).
        self._objects = ObjectRecords(*remote) if remote is not None else None
        self._appender = Appender(location)
        #: Whether the first record of this process has checked for a torn last line.
        self._checked_tail = False

    def __repr__(self) -> str:
        return f"Ledger({describe_location(self.location)!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        """``"objects"`` (one object per record) or ``"file"`` (one appended file)."""
        return "objects" if self._objects is not None else "file"

    def close(self) -> None:
        """Close the local file handle, if one is open. Idempotent."""
        with self._lock:
            self._appender.close()

    def _lines(self) -> Iterator[bytes]:
        if self._objects is not None:
            yield from self._objects.read()
            return
        try:
            with open_read(self.location) as handle:
                yield from handle  # one line at a time: the file may hold millions of records
        except FileNotFoundError:
            return

    def load(self) -> LedgerState:
        """The ledger's entries (see :class:`LedgerState`); empty when there is none.

        Unreadable records (a torn last line from a kill, which later appends push into
        the middle) are skipped: the record being written when the process died
        carries no outcome that the previous record of its row does not cover safely.
        """
        state = LedgerState()
        skipped: list[int] = []
        for number, line in enumerate(self._lines(), start=1):
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8").strip()
                entry = LedgerEntry.from_json(text)
            except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                skipped.append(number)
                continue
            state.add(number, entry, text)
        if skipped:
            # Record numbers only: a torn line may hold an e-mail.
            logger.warning("ledger: skipped %d unreadable record(s): %s", len(skipped), skipped[:20])
        return state

    def record(
        self,
        row: int,
        key: str | None,
        event: Event,
        *,
        billbee_id: int | None = None,
        error_code: int | None = None,
        message: str | None = None,
        digest: str | None = None,
        input_id: str | None = None,
    ) -> LedgerEntry:
        """Append one record and make it durable before returning.

        :param digest: the row's digest; always given by the importer (see the module docstring).
        :param input_id: the staging file's identity (the record's ``input``).
        :raises ValueError: for an unknown ``event``.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown ledger event {event!r}")
        entry = LedgerEntry(row, key, event, _now(), billbee_id, error_code, message, digest, input_id)
        data = (entry.to_json() + "\n").encode("utf-8")
        if self._objects is not None:
            # One PUT per record, outside the lock: requests of other threads are not held up.
            self._objects.append(data)
            return entry
        with self._lock:
            if not self._checked_tail:
                # A torn last line (a kill mid-write) must not swallow this record.
                data = data if ends_with_newline(self.location) else b"\n" + data
                self._checked_tail = True
            self._appender.append(data)
        return entry


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
