"""One import run's per-row state, kept on disk so that memory stays flat in the number of rows.

A run has to remember, for every row of the staging file, its outcome (the results file
follows the file's order, and a row's outcome can still change after it is first
settled: in-doubt rows resolved by a later scan, failed rows re-sent), which e-mails
earlier rows had (duplicates in the file), and which Billbee Ids rows were given (never
the answer for a second row). In Python objects that is about 300 bytes per row: 300 MB
for a million-row file. :class:`RowStore` keeps all three in a scratch database
(:mod:`~billbee_provider.imports.scratch_db`: a private temporary SQLite file, at most
8 MB of it in memory, deleted when the store is closed). Nothing here is durable, and
nothing needs to be: what must survive a kill is in the ledger
(:mod:`~billbee_provider.imports.ledger`); this is the run's working memory.

A store belongs to the thread that made it (the import's main thread; worker threads
never touch it).

This module does not import Airflow.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import cast

from billbee_provider.imports.plan import RowOutcome, Status
from billbee_provider.imports.scratch_db import ScratchStore

_SCHEMA = (
    # ``seq`` (the rowid) is the order rows were first placed in: the staging file's order.
    "CREATE TABLE outcomes (seq INTEGER PRIMARY KEY, row INTEGER NOT NULL UNIQUE, key TEXT,"
    " status TEXT NOT NULL, billbee_id INTEGER, error_code INTEGER, problems TEXT)",
    "CREATE TABLE keys_seen (key TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TABLE claimed (id INTEGER PRIMARY KEY)",
)
_COLUMNS = "row, key, status, billbee_id, error_code, problems"


class RowStore(ScratchStore):
    """Outcomes in file order, keys seen and claimed Ids of one run, in a temporary SQLite file.

    Use as a context manager, or call :meth:`close`, which deletes the file.
    """

    def __init__(self) -> None:
        super().__init__(*_SCHEMA)
        self._rows = 0
        self._max_row = -(2**63)
        #: The claimed Billbee Ids, as a set-like view (see :class:`ClaimedIds`).
        self.claimed = ClaimedIds(self._db)

    # -- outcomes --------------------------------------------------------------------

    def __len__(self) -> int:
        """Rows placed so far."""
        return self._rows

    def __contains__(self, row: object) -> bool:
        if not isinstance(row, int) or row > self._max_row:
            return False  # rows come in rising order: usually answered without a query
        return self.status_of(row) is not None

    def status_of(self, row: int) -> Status | None:
        """The row's status, or ``None`` if it was never placed."""
        found = self._db.execute("SELECT status FROM outcomes WHERE row = ?", (row,)).fetchone()
        return None if found is None else cast(Status, found[0])

    def get(self, row: int) -> RowOutcome | None:
        """The row's outcome, or ``None`` if it was never placed."""
        found = self._db.execute(f"SELECT {_COLUMNS} FROM outcomes WHERE row = ?", (row,)).fetchone()  # noqa: S608
        return None if found is None else _outcome(found)

    def put(self, outcome: RowOutcome) -> Status | None:
        """Place or replace a row's outcome; a row keeps the place it was first given.

        The digest is not kept: it went to the ledger with the outcome, nothing reads it later.

        :return: the row's status before, or ``None`` if it was not placed yet.
        """
        values = (
            outcome.row,
            outcome.key,
            outcome.status,
            outcome.billbee_id,
            outcome.error_code,
            outcome.problems,
        )
        try:
            self._db.execute(f"INSERT INTO outcomes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", values)  # noqa: S608
        except sqlite3.IntegrityError:  # placed before: a new outcome, same place
            before = self.status_of(outcome.row)
            self._db.execute(
                "UPDATE outcomes SET key = ?, status = ?, billbee_id = ?, error_code = ?, problems = ? "
                "WHERE row = ?",
                (*values[1:], outcome.row),
            )
            return before
        self._rows += 1
        self._max_row = max(self._max_row, outcome.row)
        return None

    def outcomes(self, status: Status | None = None) -> Iterator[RowOutcome]:
        """The outcomes in file order (streamed), all or those with ``status``."""
        if status is None:
            cursor = self._db.execute(f"SELECT {_COLUMNS} FROM outcomes ORDER BY seq")  # noqa: S608
        else:
            cursor = self._db.execute(
                f"SELECT {_COLUMNS} FROM outcomes WHERE status = ? ORDER BY seq",  # noqa: S608
                (status,),
            )
        for found in cursor:
            yield _outcome(found)

    def count(self, status: Status, *, keyed: bool = False) -> int:
        """Rows whose status is ``status`` (with ``keyed``: only those with a key)."""
        where = "status = ? AND key IS NOT NULL" if keyed else "status = ?"
        return int(self._db.execute(f"SELECT count(*) FROM outcomes WHERE {where}", (status,)).fetchone()[0])  # noqa: S608

    def status_counts(self) -> dict[str, int]:
        """Rows per status (statuses no row has are left out)."""
        counted = self._db.execute("SELECT status, count(*) FROM outcomes GROUP BY status")
        return {str(status): int(n) for status, n in counted}

    # -- keys seen -------------------------------------------------------------------

    def first_sighting(self, key: str) -> bool:
        """Note ``key``; whether no earlier call had it."""
        return self._db.execute("INSERT OR IGNORE INTO keys_seen (key) VALUES (?)", (key,)).rowcount == 1


class ClaimedIds:
    """The Billbee Ids given to rows: ``add``, ``update`` and ``in``, like a set, on disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def add(self, billbee_id: int) -> None:
        """Claim one Id."""
        self._db.execute("INSERT OR IGNORE INTO claimed (id) VALUES (?)", (billbee_id,))

    def update(self, ids: Iterable[int]) -> None:
        """Claim several Ids."""
        self._db.executemany("INSERT OR IGNORE INTO claimed (id) VALUES (?)", ((i,) for i in ids))

    def __contains__(self, billbee_id: object) -> bool:
        if not isinstance(billbee_id, int):
            return False
        return self._db.execute("SELECT 1 FROM claimed WHERE id = ?", (billbee_id,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM claimed").fetchone()[0])

    def __iter__(self) -> Iterator[int]:
        return (found[0] for found in self._db.execute("SELECT id FROM claimed ORDER BY id"))


def _outcome(found: tuple[object, ...]) -> RowOutcome:
    row, key, status, billbee_id, error_code, problems = found
    return RowOutcome(
        cast(int, row),
        cast("str | None", key),
        cast(Status, status),
        cast("int | None", billbee_id),
        cast("int | None", error_code),
        cast("str | None", problems),
    )
