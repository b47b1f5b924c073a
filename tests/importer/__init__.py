"""Tests of the create stage of a bulk import: the ledger and the importer."""

from __future__ import annotations

from typing import IO

import fsspec


class MemoryPath:
    """An object-store path (fsspec memory file system), like an ``ObjectStoragePath``."""

    protocol = "memory"

    def __init__(self, path: str, *, can_append: bool = True) -> None:
        self.path = path
        self.fs = fsspec.filesystem("memory")
        self.can_append = can_append
        self.modes: list[str] = []

    def open(self, mode: str = "rb") -> IO[bytes]:
        self.modes.append(mode)
        if mode == "ab" and not self.can_append:
            raise NotImplementedError("append is not supported")
        handle: IO[bytes] = self.fs.open(self.path, mode)
        return handle

    def __str__(self) -> str:
        return f"memory://{self.path}"
