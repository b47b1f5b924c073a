"""Every benchmark of ``make bench`` at tiny sizes: each must still produce its figures.

Not a performance test (no target is asserted): it keeps the benchmarks from rotting.
The JSON lines go to a temporary file, not to ``tests/benchmarks/results.jsonl``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.run import benchmarks

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_every_benchmark_produces_its_figures(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    env = {
        **os.environ,
        "BILLBEE_BENCH_RESULTS": str(results),
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.run", "--smoke"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    expected = {
        "1-create-throughput",
        "2-client-ceiling",
        "3-many-accounts",
        "4-validate",
        "5-memory",
        "5b-rerun-memory",
        "6-duplicate-check",
        "7-dag-parse",
    }
    if "8" in benchmarks():
        expected.add("8-ledger-cost")
    assert {r["benchmark"] for r in records} == expected
    for record in records:
        assert record["smoke"] is True and record["rows"], record["benchmark"]
        assert all(len(row) == len(record["columns"]) for row in record["rows"]), record["benchmark"]
        assert record["machine"]["cores"], record["benchmark"]
        assert record["table"] in done.stdout
