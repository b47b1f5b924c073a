"""The import's closing report, and matching its results back to the source's keys.

:func:`build_summary`, :func:`write_summary` and :func:`format_table` make
``summary.json`` and a short table for the task log: only counts, timings and paths,
never rows or personal data.

Write-back: after a SQL-sourced import, the Billbee Id of every created (or already
existing) customer is written back to the source row, so that the next run selects only
rows without an Id. Results name source row numbers (:func:`billbee_ids_by_row`, by the
results file's numeric ``row`` column); the extracted JSONL file maps row numbers to the
table's key column (:func:`key_id_pairs`).

This module does not import Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.files import iter_results
from billbee_provider.imports.storage import Location, replace

#: Statuses whose row now has a customer in Billbee.
LINKED_STATUSES = frozenset({"created", "existing"})

#: Order of statuses in the table (others follow alphabetically).
_STATUS_ORDER = (
    "created",
    "existing",
    "ambiguous",
    "duplicate_in_file",
    "would_create",
    "rejected",
    "in_doubt",
    "failed",
)


def build_summary(validated: Mapping[str, Any], created: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the validate and create stages' XCom summaries into one report."""
    counts = dict(created.get("counts") or {})
    return {
        "rows_read": validated.get("rows_read"),
        "rejected_by_validation": validated.get("rejected"),
        "rejected_by_billbee": created.get("rejects_added"),
        "counts": counts,
        "dry_run": created.get("dry_run"),
        "if_exists": created.get("if_exists"),
        "create_seconds": created.get("create_seconds"),
        "elapsed_seconds": created.get("elapsed_seconds"),
        "rate_per_second": created.get("rate"),
        "throttled_429": created.get("throttled"),
        "retries": created.get("retries"),
        "files": {
            "staging": validated.get("staging"),
            "rejects": created.get("rejects_path") or validated.get("rejects"),
            "results": created.get("results_path"),
            "ledger": created.get("ledger_path"),
        },
    }


def write_summary(location: Location, summary: Mapping[str, Any]) -> None:
    """Write ``summary`` as pretty JSON (UTF-8) to ``location``."""
    with replace(location) as out:
        out.write(json.dumps(summary, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")


def format_table(summary: Mapping[str, Any]) -> str:
    """A small fixed-width table of the summary, for the task log (one line per log record).

    The valid rows' outcomes stand under their own heading, so that they do not read as
    parts of "rejected (validation)"; statuses no row has are left out, except
    ``created``.
    """
    counts: Mapping[str, int] = summary.get("counts") or {}
    ordered = [s for s in _STATUS_ORDER if s in counts] + sorted(set(counts) - set(_STATUS_ORDER))
    shown = [status for status in ordered if counts[status] or status == "created"]
    lines: list[tuple[str, object]] = [
        ("rows read", summary.get("rows_read")),
        ("rejected (validation)", summary.get("rejected_by_validation")),
        ("valid rows, by outcome:", ""),
        *((f"  {status}", counts[status]) for status in shown),
        ("rejected by Billbee", summary.get("rejected_by_billbee")),
        ("create phase (s)", summary.get("create_seconds")),
        ("rate (creates/s)", summary.get("rate_per_second")),
        ("429s seen", summary.get("throttled_429")),
    ]
    lines += [(f"{name} file", path) for name, path in (summary.get("files") or {}).items() if path]
    width = max(len(label) for label, _ in lines)
    return "\n".join(
        f"{label:<{width}}  {'-' if value is None else value}".rstrip() for label, value in lines
    )


def billbee_ids_by_row(results: Location) -> dict[int, int]:
    """Row number -> Billbee Id for the rows that are linked to a Billbee customer.

    :param results: the create stage's results file.
    :return: the Ids by source row number.
    """
    return {
        record.row: record.billbee_id
        for record in iter_results(results)
        if record.status in LINKED_STATUSES and record.billbee_id is not None
    }


def key_id_pairs(source: Location, results: Location, key_column: str) -> Iterator[tuple[object, int]]:
    """Yield ``(source key, Billbee Id)`` for every linked row of the extracted source.

    :param source: the extracted JSONL file (its row numbers are the results' rows).
    :param results: the create stage's results file.
    :param key_column: the source's key column, e.g. ``id``.
    :return: a generator of pairs.
    :raises KeyError: naming ``key_column`` if a source row lacks it.
    """
    linked = billbee_ids_by_row(results)
    for row in iter_jsonl(source):
        if row.number in linked:
            if key_column not in row.fields:
                raise KeyError(f"row {row.number} of the source has no column {key_column!r}")
            yield row.fields[key_column], linked[row.number]
