"""An append-only JSONL ledger of per-row outcomes of a customer import.

Billbee's create is not idempotent (API-FACTS): a POST that is sent twice can create
the customer twice. The ledger is what lets a killed or retried import tell "sent" from
"not sent": the importer writes ``sending`` *before* a request leaves and the outcome
(``created``, ``rejected``, ...) after its answer. A row whose last event is ``sending``
may have reached Billbee without its answer being recorded: it is *in doubt*. A row
without any record was never sent.

One record per line::

    {"row": 12, "key": "anna@example.de", "event": "created", "billbee_id": 100000150176895,
     "at": "2025-01-31T10:00:00.123+00:00"}

Durability: a local file is kept open in append mode and every record is flushed and
``fsync``-ed before :meth:`Ledger.record` returns, so a SIGKILL (or a power cut) loses at
most the record being written. That record can be torn (half a line); :meth:`Ledger.load`
skips unreadable lines, and the next append starts on a fresh line. Object-store
locations (an fsspec URL such as ``s3://...``, or anything with ``.open(mode)`` such as
Airflow's ``ObjectStoragePath``) are appended to with ``open("ab")`` per record, durable
when the object is closed; a store that cannot append gets the whole ledger rewritten
per record (correct, but slow for very large imports: prefer a local or append-capable
location there).

Locations are :data:`billbee_provider.imports.extract.Location` values, as for the sources. The
helpers that also write and append (:func:`local_path`, :func:`open_location`,
:func:`read_bytes`) live here because the ledger is the module that needs durable
appends; the importer uses them for its staging, results and rejects files too. This
module does not import Airflow.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, cast, get_args
from urllib.parse import unquote, urlsplit

import fsspec  # type: ignore[import-untyped, unused-ignore]

from billbee_provider.imports.extract import Location, Openable, describe_location

Event = Literal["sending", "created", "existing", "duplicate_in_file", "rejected", "in_doubt", "failed"]
EVENTS: frozenset[str] = frozenset(get_args(Event))
#: Outcomes that are never sent again: the row is done, whatever the re-run.
FINAL_EVENTS: frozenset[str] = frozenset({"created", "existing", "duplicate_in_file", "rejected"})
#: Sent, answer unknown: the customer may or may not exist.
UNRESOLVED_EVENTS: frozenset[str] = frozenset({"sending", "in_doubt"})

#: Protocols of fsspec-style paths that are really local files (fsync is possible).
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})

logger = logging.getLogger(__name__)


def local_path(location: Location) -> Path | None:
    """The local file behind ``location``, or ``None`` for a remote one.

    As in :mod:`billbee_provider.imports.extract`, a ``str`` is a path or an fsspec URL;
    ``file://`` URLs and ``file``-protocol objects (an ``ObjectStoragePath`` of a local
    file) count as local, so that they get real appends and ``fsync``.
    """
    if isinstance(location, str):
        scheme, sep, _ = location.partition("://")
        if not sep:
            return Path(location)
        return Path(unquote(urlsplit(location).path)) if scheme.lower() in _LOCAL_PROTOCOLS else None
    if isinstance(location, os.PathLike):
        return Path(os.fspath(location))
    protocol = getattr(location, "protocol", None)
    if isinstance(protocol, tuple | list):  # fsspec lists a file system's protocol aliases
        protocol = protocol[0] if protocol else ""
    path = getattr(location, "path", None)
    if isinstance(protocol, str) and protocol in _LOCAL_PROTOCOLS and isinstance(path, str) and path:
        return Path(path)
    return None


def open_location(location: Location, mode: str) -> IO[bytes]:
    """Open ``location`` in a binary ``mode`` (``"rb"``, ``"wb"``, ``"ab"``)."""
    path = local_path(location)
    if path is not None:
        return path.open(mode)
    if isinstance(location, str):
        fs, fs_path = fsspec.core.url_to_fs(location)
        return cast(IO[bytes], fs.open(fs_path, mode))
    return cast(IO[bytes], cast(Openable, location).open(mode))


def read_bytes(location: Location) -> bytes:
    """The whole content of ``location``; ``b""`` when it does not exist."""
    try:
        with open_location(location, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


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
    """

    row: int
    key: str | None
    event: Event
    at: str
    billbee_id: int | None = None
    error_code: int | None = None
    message: str | None = None

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
        for name in ("billbee_id", "error_code", "message"):
            value = getattr(self, name)
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
            billbee_id=_int_or_none(raw.get("billbee_id")),
            error_code=_int_or_none(raw.get("error_code")),
            message=_str_or_none(raw.get("message")),
        )


class Ledger:
    """The per-row outcome log of one import; thread-safe.

    :param location: where the ledger lives: a local path, or an object with
        ``.open(mode)`` (e.g. an ``ObjectStoragePath``). Created on the first record.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._local = local_path(location)
        self._lock = threading.Lock()
        self._handle: IO[bytes] | None = None
        #: Object stores: the newline a torn last line needs (``None``: not checked yet),
        #: and, once appending turned out to be unsupported, the whole content to rewrite.
        self._object_prefix: bytes | None = None
        self._object_content: bytearray | None = None

    def __repr__(self) -> str:
        return f"Ledger({describe_location(self.location)!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the local file handle, if one is open. Idempotent."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def load(self) -> dict[int, LedgerEntry]:
        """The last entry of every row in the ledger; ``{}`` when there is none.

        Unreadable lines (a torn last line from a kill, which later appends push into
        the middle) are skipped: the record being written when the process died
        carries no outcome that the previous record of its row does not cover safely.
        """
        state: dict[int, LedgerEntry] = {}
        skipped: list[int] = []
        for number, line in enumerate(read_bytes(self.location).split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                entry = LedgerEntry.from_json(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                skipped.append(number)
                continue
            state[entry.row] = entry
        if skipped:
            # Line numbers only: a torn line may hold an e-mail.
            logger.warning("ledger: skipped %d unreadable line(s): %s", len(skipped), skipped[:20])
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
    ) -> LedgerEntry:
        """Append one record and make it durable before returning.

        :raises ValueError: for an unknown ``event``.
        """
        if event not in EVENTS:
            raise ValueError(f"unknown ledger event {event!r}")
        entry = LedgerEntry(row, key, event, _now(), billbee_id, error_code, message)
        data = (entry.to_json() + "\n").encode("utf-8")
        with self._lock:
            if self._local is not None:
                self._append_local(self._local, data)
            else:
                self._append_object(data)
        return entry

    def _append_local(self, path: Path, data: bytes) -> None:
        if self._handle is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("ab")
            if _ends_torn(path):
                self._handle.write(b"\n")
        self._handle.write(data)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _append_object(self, data: bytes) -> None:
        if self._object_prefix is None:  # the first record of this process
            existing = read_bytes(self.location)
            self._object_prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
        data, self._object_prefix = self._object_prefix + data, b""
        if self._object_content is None:
            try:
                handle = open_location(self.location, "ab")
            except (NotImplementedError, ValueError):  # io.UnsupportedOperation is a ValueError
                logger.warning(
                    "ledger: %s cannot be appended to; rewriting it per record (slow for large imports)",
                    type(self.location).__name__,
                )
                self._object_content = bytearray(read_bytes(self.location))
            else:
                with handle:
                    handle.write(data)
                return
        # The store cannot append: rewrite the whole object, which is durable once closed.
        self._object_content += data
        with open_location(self.location, "wb") as handle:
            handle.write(bytes(self._object_content))


def _ends_torn(path: Path) -> bool:
    """Whether the file is non-empty and its last byte is not a newline."""
    with path.open("rb") as handle:
        handle.seek(0, io.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, io.SEEK_END)
        return handle.read(1) != b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
