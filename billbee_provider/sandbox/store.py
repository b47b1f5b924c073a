"""SQLite persistence of the sandbox: customers, addresses, id sequences, the journal.

One connection, guarded by a lock, serves every thread (the server's event loop and
whoever else holds the store); WAL mode keeps a reader in another process (e.g.
``sqlite3`` on the command line) from blocking the sandbox. Records are kept as the
JSON of their Billbee model, so what is stored is exactly what is answered. The
data survives a restart; :meth:`Store.reset` wipes it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: First id of each sequence: real Billbee ids look like these (PHP SDK fixtures).
SEQUENCE_STARTS = {"customer": 100000150176895, "address": 100000176934711, "meta_data": 208297764}

#: Columns of the request journal, in the order the admin endpoint lists them.
JOURNAL_COLUMNS = (
    "seq",
    "time",
    "method",
    "path",
    "query",
    "status",
    "endpoint",
    "user_agent",
    "accept",
    "content_type",
    "api_key_ok",
    "auth_ok",
    "body",
    "dropped",
    "created_id",
)
_BOOLEAN_COLUMNS = ("api_key_ok", "auth_ok", "dropped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, next_value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY, number INTEGER, record TEXT NOT NULL, raw_body BLOB, created_at TEXT NOT NULL
);
-- The ids alone, a few pages for the whole table: what paging counts and skips through
-- (the table's own pages hold the records, a page or more for every few customers).
CREATE INDEX IF NOT EXISTS customers_by_id ON customers (id);
CREATE TABLE IF NOT EXISTS addresses (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS addresses_by_customer ON addresses (customer_id, id);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    query TEXT, status INTEGER, endpoint TEXT, user_agent TEXT, accept TEXT, content_type TEXT,
    api_key_ok INTEGER NOT NULL, auth_ok INTEGER NOT NULL, body TEXT, dropped INTEGER NOT NULL,
    created_id INTEGER
);
"""


def utc_now() -> str:
    """The current time as ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """The sandbox's database.

    :param path: SQLite file, created if missing, or ``":memory:"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (see _transaction).
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def reset(self) -> None:
        """Delete all customers, addresses and the journal; restart the id sequences."""
        with self._transaction() as db:
            for table in ("addresses", "customers", "journal", "sequences"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'journal'")

    def next_id(self, kind: str) -> int:
        """Allocate the next id of sequence ``kind`` (a key of :data:`SEQUENCE_STARTS`)."""
        with self._transaction() as db:
            row = db.execute("SELECT next_value FROM sequences WHERE name = ?", (kind,)).fetchone()
            value = int(row[0]) if row else SEQUENCE_STARTS[kind]
            db.execute("INSERT OR REPLACE INTO sequences (name, next_value) VALUES (?, ?)", (kind, value + 1))
            return value

    # -- customers -----------------------------------------------------------------

    def insert_customer(
        self, customer: dict[str, Any], addresses: list[dict[str, Any]], raw_body: bytes
    ) -> None:
        """Store a new customer and its addresses in one transaction.

        A customer without ``Number`` gets the next free one (``customer`` is updated).

        :param raw_body: the create request's body, kept byte for byte.
        """
        with self._transaction() as db:
            if customer.get("Number") is None:
                row = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM customers").fetchone()
                customer["Number"] = int(row[0])
            db.execute(
                "INSERT INTO customers (id, number, record, raw_body, created_at) VALUES (?, ?, ?, ?, ?)",
                (customer["Id"], customer["Number"], _dump(customer), raw_body, utc_now()),
            )
            for address in addresses:
                self._insert_address(db, address)

    def replace_customer(self, customer: dict[str, Any]) -> None:
        """Overwrite a stored customer (same ``Id``)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE customers SET number = ?, record = ? WHERE id = ?",
                (customer.get("Number"), _dump(customer), customer["Id"]),
            )

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        """The customer with ``customer_id``, or ``None``."""
        return self._one("SELECT record FROM customers WHERE id = ?", (customer_id,))

    def customers_page(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Customers ordered by id, ``limit`` of them from ``offset``; and the total count."""
        return self._page("customers", "1 = 1", (), offset, limit)

    def all_customers(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every customer with its addresses, ordered by id (for search)."""
        with self._lock:
            customers = [_load(r[0]) for r in self._db.execute("SELECT record FROM customers ORDER BY id")]
            addresses: dict[int, list[dict[str, Any]]] = {}
            for customer_id, record in self._db.execute(
                "SELECT customer_id, record FROM addresses ORDER BY id"
            ):
                addresses.setdefault(customer_id, []).append(_load(record))
        return [(c, addresses.get(c["Id"], [])) for c in customers]

    def raw_body(self, customer_id: int) -> bytes | None:
        """The body of the request that created the customer, exactly as received."""
        with self._lock:
            row = self._db.execute("SELECT raw_body FROM customers WHERE id = ?", (customer_id,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- addresses -----------------------------------------------------------------

    def insert_address(self, address: dict[str, Any]) -> None:
        """Store a new address (its ``CustomerId`` must exist)."""
        with self._transaction() as db:
            self._insert_address(db, address)

    def replace_address(self, address: dict[str, Any]) -> None:
        """Overwrite a stored address (same ``Id``)."""
        with self._transaction() as db:
            db.execute("UPDATE addresses SET record = ? WHERE id = ?", (_dump(address), address["Id"]))

    def address(self, address_id: int) -> dict[str, Any] | None:
        """The address with ``address_id``, or ``None``."""
        return self._one("SELECT record FROM addresses WHERE id = ?", (address_id,))

    def addresses_page(self, customer_id: int, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A customer's addresses ordered by id, paged like :meth:`customers_page`."""
        return self._page("addresses", "customer_id = ?", (customer_id,), offset, limit)

    @staticmethod
    def _insert_address(db: sqlite3.Connection, address: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO addresses (id, customer_id, record) VALUES (?, ?, ?)",
            (address["Id"], address["CustomerId"], _dump(address)),
        )

    # -- journal -------------------------------------------------------------------

    def append_journal(self, entry: Mapping[str, Any]) -> int:
        """Record one API request; ``entry`` has the :data:`JOURNAL_COLUMNS` but ``seq``."""
        names = JOURNAL_COLUMNS[1:]
        values = [int(bool(entry[n])) if n in _BOOLEAN_COLUMNS else entry.get(n) for n in names]
        sql = f"INSERT INTO journal ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"  # noqa: S608
        with self._transaction() as db:
            return int(db.execute(sql, values).lastrowid or 0)

    def journal(self, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Journal entries with ``seq > since``, oldest first, at most ``limit``."""
        sql = f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608
        with self._lock:
            rows = self._db.execute(sql, (since, limit)).fetchall()
        entries = [dict(zip(JOURNAL_COLUMNS, row, strict=True)) for row in rows]
        for entry in entries:
            for name in _BOOLEAN_COLUMNS:
                entry[name] = bool(entry[name])
        return entries

    def stats(self) -> dict[str, Any]:
        """Counts over the journal and the data: per status, 429s, drops, creates."""
        with self._lock:
            db = self._db
            by_status = dict(db.execute("SELECT status, COUNT(*) FROM journal GROUP BY status").fetchall())
            drops, creates, total = db.execute(
                "SELECT COALESCE(SUM(dropped), 0), COUNT(created_id), COUNT(*) FROM journal"
            ).fetchone()
            customers, addresses = db.execute(
                "SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM addresses)"
            ).fetchone()
        return {
            "requests": total,
            "by_status": {str(k): v for k, v in by_status.items() if k is not None},
            "throttled": by_status.get(429, 0),
            "drops": drops,
            "creates": creates,
            "customers": customers,
            "addresses": addresses,
        }

    # -- helpers -------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else _load(row[0])

    def _page(
        self, table: str, where: str, args: tuple[Any, ...], offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        # table and where are fixed strings of this module, never user input. The same rows
        # as "ORDER BY id LIMIT ? OFFSET ?": the OFFSET only finds the page's first id, in
        # an index of ids (customers_by_id, addresses_by_customer), instead of stepping
        # over every skipped record in the table; the count reads that index too.
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0]  # noqa: S608
            rows = self._db.execute(
                f"SELECT record FROM {table} WHERE {where} AND id >= "  # noqa: S608
                f"(SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT 1 OFFSET ?) ORDER BY id LIMIT ?",
                (*args, *args, offset, limit),
            ).fetchall()
        return [_load(r[0]) for r in rows], int(total)


def _dump(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def _load(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
