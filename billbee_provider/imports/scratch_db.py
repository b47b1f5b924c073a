"""Private temporary SQLite databases: an import run's working memory, kept on disk.

What a run must remember per row (:mod:`~billbee_provider.imports.row_store`) and the
ledger as read back (:class:`~billbee_provider.imports.ledger.LedgerState`) grow with
the file: as Python objects, hundreds of bytes per row. In a scratch database they cost
at most :data:`CACHE_KIB` of memory (SQLite's page cache); the rest is in a temporary
file that SQLite unlinks at once (in ``SQLITE_TMPDIR``, else ``TMPDIR``, else
``/var/tmp``) and that is gone when the connection closes.

Nothing in it needs to be durable (the ledger file is the durable record), so there is
no journal, no fsync and no commit: one transaction for the connection's life. A
connection belongs to the thread that opened it.

This module does not import Airflow.
"""

from __future__ import annotations

import sqlite3
from typing import Self

#: SQLite's page cache per scratch database, in KiB: what each may hold in memory.
CACHE_KIB = 8192


def scratch_database(*schema: str) -> sqlite3.Connection:
    """Open a private temporary database, create ``schema`` in it, and begin its transaction.

    :param schema: ``CREATE`` statements.
    :return: the connection; closing it deletes the database.
    """
    db = sqlite3.connect("", isolation_level=None)  # "": private, temporary, on disk
    for pragma in ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}"):
        db.execute(f"PRAGMA {pragma}")
    for statement in schema:
        db.execute(statement)
    db.execute("BEGIN")
    return db


class ScratchStore:
    """A holder of one scratch database: a context manager whose :meth:`close` drops it.

    :param schema: ``CREATE`` statements (see :func:`scratch_database`).
    """

    def __init__(self, *schema: str) -> None:
        self._db = scratch_database(*schema)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the database (and its temporary file). Idempotent."""
        self._db.close()
