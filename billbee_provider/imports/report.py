"""The import's closing report: ``summary.json`` and a short table for the task log.

Only counts, timings and paths: the report never holds rows or personal data.
This module does not import Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from billbee_provider.imports.extract import Location
from billbee_provider.imports.ledger import open_location

#: Order of statuses in the table (others follow alphabetically).
_STATUS_ORDER = ("created", "existing", "duplicate_in_file", "would_create", "rejected", "in_doubt", "failed")


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
    with open_location(location, "wb") as out:
        out.write(json.dumps(summary, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")


def format_table(summary: Mapping[str, Any]) -> str:
    """A small fixed-width table of the summary, for the task log."""
    counts: Mapping[str, int] = summary.get("counts") or {}
    ordered = [s for s in _STATUS_ORDER if s in counts] + sorted(set(counts) - set(_STATUS_ORDER))
    lines = [
        ("rows read", summary.get("rows_read")),
        ("rejected (validation)", summary.get("rejected_by_validation")),
        *((f"  {status}", counts[status]) for status in ordered),
        ("rejected (Billbee)", summary.get("rejected_by_billbee")),
        ("create phase (s)", summary.get("create_seconds")),
        ("rate (creates/s)", summary.get("rate_per_second")),
        ("429s seen", summary.get("throttled_429")),
    ]
    lines += [(f"{name} file", path) for name, path in (summary.get("files") or {}).items() if path]
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {'-' if value is None else value}" for label, value in lines)
