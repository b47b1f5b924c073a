"""Benchmark 5b: the memory of a re-run, i.e. a finished import run again with its ledger.

Benchmark 5 is a first run (an empty ledger). A re-run (a Clear in the task view, a task
retry after the last row, a resume) first reads the ledger back: two records per row
(``sending``, then ``created``). The staging file and a ledger saying every row was
created are written here; then a fresh process runs ``import_customers`` (not a dry run)
against an empty sandbox: every row is carried over from the ledger, nothing is sent.
Peak RSS (VmHWM) of that process, minus a 30-row run's.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    import_in,
    memory_table,
    peak_rss_mb,
    report,
    run_worker,
    sandbox,
    sandbox_client_config,
    write_staging,
)


def write_finished_ledger(staging: Path, ledger: Path) -> None:
    """The ledger of an import that created every row of ``staging`` (Ids made up)."""
    from billbee_provider.imports.files import inspect_staging, iter_staging

    identity = inspect_staging(staging).identity
    at = "2026-12-01T00:00:00.000+00:00"
    with ledger.open("w", encoding="utf-8") as out:
        for staged in iter_staging(staging):
            common = {"row": staged.row, "key": staged.key, "digest": staged.digest, "input": identity}
            out.write(json.dumps({**common, "event": "sending", "at": at}) + "\n")
            created = {**common, "event": "created", "billbee_id": 10**9 + staged.row, "at": at}
            out.write(json.dumps(created) + "\n")


def rerun_worker(workdir: str, base_url: str) -> None:
    """One task process: the create stage of a finished import, again; prints peak RSS."""
    summary = import_in(Path(workdir), sandbox_client_config(base_url))
    print(json.dumps({"peak_mb": peak_rss_mb(), "created": summary.counts["created"], "sent": summary.sent}))


def bench_rerun(tmp: Path, *, smoke: bool = False) -> dict[str, Any]:
    """Benchmark 5b."""
    sizes = (30, 300, 3_000) if smoke else (30, 100_000, 1_000_000)
    peaks: dict[int, float] = {}
    seconds: dict[int, float] = {}
    ledger_mb: dict[int, float] = {}
    with sandbox(tmp / "rerun.sqlite") as server:
        for rows in sizes:
            work = tmp / f"rerun-{rows}"
            work.mkdir()
            write_staging(work / "staging.jsonl", rows)
            write_finished_ledger(work / "staging.jsonl", work / "ledger.jsonl")
            (work / "rejects.csv").write_text("")
            start = time.monotonic()
            result = run_worker(["-m", "tests.benchmarks.bench_rerun", "worker", str(work), server.base_url])
            assert result["created"] == rows and result["sent"] == 0, result
            peaks[rows], seconds[rows] = result["peak_mb"], time.monotonic() - start
            ledger_mb[rows] = (work / "ledger.jsonl").stat().st_size / 2**20
    table, targets = memory_table(sizes, peaks)
    return report(
        "5b-rerun-memory",
        "5b. Memory of a re-run: a finished import's create stage again, its ledger read back",
        ["rows", "peak RSS MB", "minus 30-row run MB", "ledger MB", "seconds"],
        [[*line, round(ledger_mb[line[0]], 1), round(seconds[line[0]], 1)] for line in table],
        targets,
        {"sizes": sizes},
        smoke,
        notes=[
            "Peak RSS (VmHWM) of a fresh Python process running import_customers over a staging "
            "file whose ledger says every row was created (sending + created per row): the "
            "account scan (an empty sandbox), the ledger read back, every row carried over, "
            "results written; 0 rows sent. Airflow itself is not loaded in this process."
        ],
    )


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        rerun_worker(*sys.argv[2:4])
    else:
        with tempfile.TemporaryDirectory(prefix="billbee-bench-") as tmpdir:
            bench_rerun(Path(tmpdir), smoke="--smoke" in sys.argv)
