"""Matching an import's results back to the source table's keys.

After a SQL-sourced import, the Billbee Id of every created (or already existing)
customer is written back to the source row, so that the next run selects only rows
without an Id. Results name source row numbers; the extracted JSONL file maps row
numbers to the table's key column. This module does not import Airflow.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from billbee_provider.imports.extract import Location, iter_jsonl
from billbee_provider.imports.ledger import read_bytes

#: Statuses whose row now has a customer in Billbee.
LINKED_STATUSES = frozenset({"created", "existing"})


def billbee_ids_by_row(results: Location) -> dict[int, int]:
    """Row number -> Billbee Id for the rows that are linked to a Billbee customer."""
    text = read_bytes(results).decode("utf-8-sig")
    linked: dict[int, int] = {}
    for record in csv.DictReader(io.StringIO(text)):
        if record["status"] in LINKED_STATUSES and record["billbee_id"]:
            linked[int(record["row"])] = int(record["billbee_id"])
    return linked


def key_id_pairs(source: Location, results: Location, key_column: str) -> Iterator[tuple[object, int]]:
    """Yield ``(source key, Billbee Id)`` for every linked row of the extracted source.

    :raises KeyError: naming ``key_column`` if a source row lacks it.
    """
    linked = billbee_ids_by_row(results)
    for row in iter_jsonl(source):
        if row.number in linked:
            if key_column not in row.fields:
                raise KeyError(f"row {row.number} of the source has no column {key_column!r}")
            yield row.fields[key_column], linked[row.number]
