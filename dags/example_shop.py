"""The example shop database of the ``billbee_sync_customers_sql`` DAG.

A ``shop_customers`` table in the shop's own column names (not Billbee's), and the
write-back of Billbee Ids. Works on any DB-API connection; the example uses SQLite.
This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TABLE = "shop_customers"
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, company TEXT, email TEXT,
    phone TEXT, street TEXT, house_no TEXT, zip TEXT, city TEXT, country TEXT, billbee_id BIGINT
)
"""
COLUMNS = (
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "house_no",
    "zip",
    "city",
    "country",
)
SAMPLE_ROWS: list[tuple[str, ...]] = [
    (
        "Lena",
        "Fischer",
        "",
        "Lena.Fischer@example.de",
        "+49 40 555123",
        "Jungfernstieg",
        "10",
        "20354",
        "Hamburg",
        "de",
    ),
    (
        "Max",
        "Bauer",
        "Bauer Werkzeuge GmbH",
        "einkauf@bauer-werkzeuge.example",
        "",
        "Industriestraße",
        "5",
        "86167",
        "Augsburg",
        "DE",
    ),
    (
        "Sophie",
        "Schäfer",
        "",
        "sophie.schaefer@example.de",
        "",
        "Am Wehrhahn",
        "2",
        "40211",
        "Düsseldorf",
        "DE",
    ),
    (
        "Paul",
        "Öztürk",
        "",
        "paul.oeztuerk@example.de",
        "+49 221 777",
        "Ehrenstraße",
        "44",
        "50672",
        "Köln",
        "DE",
    ),
    ("Emma", "Gruber", "", "emma.gruber@example.at", "", "Mariahilfer Straße", "77", "1060", "Wien", "AT"),
    (
        "Felix",
        "Weber",
        "",
        "felix.weber@example.de",
        "",
        "Hauptstraße",
        "1",
        "69117",
        "Heidelberg",
        "Deutschland",
    ),
]


def ensure_example_table(conn: Any, placeholder: str = "?") -> int:
    """Create the example table if missing and fill it with the sample customers if empty.

    :param conn: an open DB-API connection.
    :param placeholder: the driver's parameter placeholder (``?`` for SQLite).
    :return: the number of rows inserted.
    """
    cursor = conn.cursor()
    cursor.execute(CREATE_TABLE)
    cursor.execute(f"SELECT count(*) FROM {TABLE}")  # noqa: S608 - constant table name
    if cursor.fetchone()[0]:
        conn.commit()
        return 0
    marks = ", ".join([placeholder] * len(COLUMNS))
    cursor.executemany(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})", SAMPLE_ROWS)  # noqa: S608
    conn.commit()
    return len(SAMPLE_ROWS)


def write_billbee_ids(conn: Any, pairs: Iterable[tuple[object, int]], placeholder: str = "?") -> int:
    """Store Billbee Ids in their rows: ``pairs`` are ``(id, billbee_id)``.

    :return: the number of rows updated.
    """
    params = [(billbee_id, key) for key, billbee_id in pairs]
    if params:
        sql = f"UPDATE {TABLE} SET billbee_id = {placeholder} WHERE id = {placeholder}"  # noqa: S608
        conn.cursor().executemany(sql, params)
        conn.commit()
    return len(params)
