"""The ledger's records on object storage: one small object per record, read back by listing.

An object store (S3, GCS, Azure Blob, ...) cannot append: "appending" a record to one
ledger object means reading the whole object and writing it back, a GET and a PUT per
record that grow with the ledger, and two writers overwrite each other's records. Here
every record is its own object instead, under the folder ``<ledger>.d/`` next to where
the single-file ledger would be::

    s3://bucket/imports/run1/ledger.jsonl.d/000000000001-3f2a9c1e7b04.json
    s3://bucket/imports/run1/ledger.jsonl.d/000000000002-3f2a9c1e7b04.json

An object's name is ``<sequence>-<writer>.json``: the sequence, zero-padded so that names
sort in write order, continues after the highest one present when the writer first
writes (a retry on another machine goes on after the try it replaces); the writer id is
random per :class:`ObjectRecords`, so two writers never write the same name. Writing a
record is one PUT of one small object (:meth:`ObjectRecords.append` returns after the
store confirmed it), whatever the ledger's size: no read-modify-write, no lock service.
Reading is one listing of the folder plus one GET per record, concurrent where the file
system is asynchronous (s3fs, gcsfs), done once when an import starts.

A store's PUT is atomic, so a record is either there whole or not at all: there is no
torn record as in a local file after a kill. An object that cannot be parsed anyway (put
there by hand) is skipped by the ledger, like a torn line.

This module does not import Airflow.
"""

from __future__ import annotations

import posixpath
import re
import threading
import uuid
from typing import Any, Final

from billbee_provider.imports.storage import Location, local_path

#: The folder of a ledger's record objects: ``<ledger location>`` + this suffix.
RECORDS_SUFFIX: Final = ".d"
#: Digits of the sequence number in a record's name (sortable as text).
SEQUENCE_DIGITS: Final = 12
_RECORD_NAME: Final = re.compile(rf"^(\d{{{SEQUENCE_DIGITS}}})-([0-9a-f]+)\.json$")


def file_system_of(location: Location) -> tuple[Any, str] | None:
    """The fsspec file system and path of a remote location, or ``None``.

    A URL string is resolved by fsspec (``s3://bucket/key``); an object that carries its
    file system (``ObjectStoragePath``, ``UPath``: ``.fs`` and ``.path``) gives both,
    with the credentials of its Airflow connection already attached. Local locations and
    objects without a file system give ``None``.

    :param location: the ledger's location.
    :return: ``(fs, path)`` or ``None``.
    """
    if local_path(location) is not None:
        return None
    if isinstance(location, str):
        import fsspec  # type: ignore[import-untyped, unused-ignore]

        fs, path = fsspec.core.url_to_fs(location)
        return fs, str(path)
    fs = getattr(location, "fs", None)
    path = getattr(location, "path", None)
    if fs is None or not isinstance(path, str) or not path or not hasattr(fs, "pipe_file"):
        return None
    return fs, path


class ObjectRecords:
    """Records as objects under ``<path>.d/``; :meth:`append` is thread-safe.

    :param fs: an fsspec file system (``pipe_file``, ``find``, ``cat``, ``cat_file``).
    :param path: the ledger's path in ``fs`` (without the suffix).
    """

    def __init__(self, fs: Any, path: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self.folder = self.path + RECORDS_SUFFIX
        #: Random per writer: two writers (two tries, two machines) never share a name.
        self.writer = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        #: The next sequence number; ``None`` until the folder was listed once.
        self._next: int | None = None

    def append(self, data: bytes) -> str:
        """Write one record as a new object; durable when this returns (one PUT).

        :param data: the record's bytes.
        :return: the object's path.
        """
        with self._lock:
            if self._next is None:
                self._next = _highest_sequence(self._names()) + 1
            sequence = self._next
            self._next += 1
        name = f"{self.folder}/{sequence:0{SEQUENCE_DIGITS}d}-{self.writer}.json"
        self.fs.pipe_file(name, data)
        return name

    def read(self) -> list[bytes]:
        """Every record in write order: a single-file ledger left at ``path`` first (its lines).

        A ledger written at ``path`` as one object (by an older version of the provider)
        comes first, line by line, so that a resume across an upgrade keeps its entries.

        :return: the records' bytes.
        """
        records: list[bytes] = []
        try:
            legacy: bytes = self.fs.cat_file(self.path)
        except (FileNotFoundError, IsADirectoryError):
            legacy = b""
        records.extend(line for line in legacy.split(b"\n") if line.strip())
        names = self._names()
        with self._lock:
            if self._next is None:
                self._next = _highest_sequence(names) + 1
        if not names:
            return records
        paths = [f"{self.folder}/{name}" for name in names]
        found = self.fs.cat(paths, on_error="omit")
        records.extend(found[path] for path in _keys_in_order(found, paths))
        return records

    def _names(self) -> list[str]:
        """The record names in the folder, sorted (sequence, then writer)."""
        self.fs.invalidate_cache(self.folder)
        try:
            found = self.fs.find(self.folder)
        except FileNotFoundError:
            return []
        names = (posixpath.basename(str(path).rstrip("/")) for path in found)
        return sorted(name for name in names if _RECORD_NAME.match(name))


def _highest_sequence(names: list[str]) -> int:
    match = _RECORD_NAME.match(names[-1]) if names else None
    return int(match.group(1)) if match else 0


def _keys_in_order(found: dict[str, bytes], paths: list[str]) -> list[str]:
    """``paths`` that ``found`` holds, matching keys with or without the protocol prefix."""
    by_name = {posixpath.basename(str(key)): key for key in found}
    keys: list[str] = []
    for path in paths:
        key = path if path in found else by_name.get(posixpath.basename(path))
        if key is not None:
            keys.append(key)
    return keys
