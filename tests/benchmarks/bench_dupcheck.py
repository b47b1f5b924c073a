"""Benchmark 6: what knowing the account's e-mails costs (``scan_account``).

The sandbox's database is filled with N existing customers directly in SQLite (records
cloned from one customer the sandbox created through its API, with their own Id, Number
and e-mail, in every field that holds it), then one scan runs with throttling off (the
sandbox's limits and the client's); the seconds at Billbee's real limit (2 requests/s on
``GET /api/v1/customers``) are computed from the call count. Memory is the peak of
Python allocations during the scan (tracemalloc), and the peak RSS growth of a fresh
process making the same scan without tracemalloc.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from billbee_provider.sandbox.models import DEFAULT_CONTACTS
from tests.benchmarks.common import body, peak_rss_mb, report, rss_mb, run_worker, sandbox, target


def fill(db: Path, template: dict[str, Any], customers: int) -> None:
    def records() -> Any:
        for n in range(customers):
            record = json.loads(json.dumps(template))
            record["Id"] = template["Id"] + 1000 + n
            record["Number"] = 1000 + n
            record["Name"] = f"Bestand {n}"
            record["Email"] = f"bestand{n}@example.de"
            # Every e-mail entry is the clone's own, as a create with that e-mail answers it:
            # MetaData and the three Default*MailAddress fields (one entry, TypeId 1).
            contacts = [record.get(name) for name in DEFAULT_CONTACTS]
            for meta in [*(record.get("MetaData") or []), *contacts]:
                if isinstance(meta, dict) and meta.get("TypeId") == 1:
                    meta["Value"] = record["Email"]
            yield record["Id"], record["Number"], json.dumps(record), "2026-01-01T00:00:00Z"

    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO customers (id, number, record, raw_body, created_at) VALUES (?, ?, ?, NULL, ?)",
            records(),
        )


def rss_worker(config_json: str) -> None:
    """One fresh process, no tracemalloc (it doubles what it watches): one scan; prints its
    peak RSS (VmHWM) after the scan minus its RSS before it."""
    from billbee_provider.api.client import BillbeeClient
    from billbee_provider.api.config import BillbeeConfig
    from billbee_provider.imports.account import scan_account

    with BillbeeClient(BillbeeConfig(**json.loads(config_json))) as client:
        before = rss_mb()
        index = scan_account(client)
        print(json.dumps({"growth_mb": peak_rss_mb() - before, "customers": index.customers}))


def fresh_process_rss_growth(config: Any, customers: int) -> float:
    """Peak RSS growth, in MB, of a fresh process that scans the account once."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    result = run_worker(["-m", "tests.benchmarks.bench_dupcheck", "rss-worker", json.dumps(fields)], 600)
    assert result["customers"] == customers, result
    return float(result["growth_mb"])


def bench_dupcheck(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    from billbee_provider.api.client import BillbeeClient
    from billbee_provider.imports.account import scan_account

    customers = 1_000 if smoke else 100_000
    db = tmp / "dupcheck.sqlite"
    with sandbox(db, endpoint_limit=100_000, user_limit=100_000, key_limit=100_000) as server:
        server.reset(0.0)
        # Throttling off on both sides: the sandbox's limits above, and the client's own
        # pacing (2 calls/s by default, which alone would stretch 400 calls to 210 s).
        unthrottled = server.client_config(endpoint_rate_limit=100_000, account_rate_limit=100_000)
        with BillbeeClient(unthrottled) as client:
            template = client.create_customer(body(0))
            fill(db, template, customers - 1)
            before = len(server.admin("GET", "/requests", params={"limit": 100_000}))
            tracemalloc.start()
            start = time.perf_counter()
            index = scan_account(client)
            seconds = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            calls = len(server.admin("GET", "/requests", params={"since": before, "limit": 100_000}))
            rss_growth = fresh_process_rss_growth(unthrottled, customers)
    assert index.customers == customers, index.customers
    assert len(index.ids_by_email) == customers, len(index.ids_by_email)  # one own e-mail each
    at_limit = calls / 2
    per_call = customers / calls
    table = [
        [
            customers,
            calls,
            round(per_call),
            round(seconds, 1),
            round(at_limit, 1),
            round(peak / 2**20, 1),
            round(rss_growth, 1),
        ]
    ]
    return report(
        "6-duplicate-check",
        "6. Duplicate check: one scan of the account",
        [
            "existing customers",
            "calls",
            "customers per call",
            "seconds (throttling off)",
            "seconds at 2 calls/s (computed)",
            "peak Python MB (tracemalloc)",
            "RSS growth of a fresh process, no tracemalloc, MB",
        ],
        table,
        [
            target("<= 1 call per 250 existing customers", f"1 per {per_call:.0f}", per_call >= 249),
            target("< 50 MB", f"{peak / 2**20:.1f} MB", peak / 2**20 < 50),
        ],
        {"customers": customers},
        smoke,
        notes=[
            "Each customer record is the sandbox's answer to a create with an address, Tel1 and "
            "e-mail (MetaData, Default*Address), each with e-mails of its own; tracemalloc slows "
            "the scan itself. The last column: a second scan in a fresh process without "
            "tracemalloc, its peak RSS (VmHWM) minus its RSS before the scan."
        ],
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["rss-worker"]:
        rss_worker(sys.argv[2])
    else:
        with tempfile.TemporaryDirectory(prefix="billbee-bench-") as tmpdir:
            bench_dupcheck(Path(tmpdir), smoke="--smoke" in sys.argv)
