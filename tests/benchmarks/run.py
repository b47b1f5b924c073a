"""``make bench``: run every benchmark, print its table, append its line to results.jsonl.

``python -m tests.benchmarks.run`` runs benchmarks 1-8 (5b, the memory of a re-run, is
``tests/benchmarks/bench_rerun.py``; 8, the ledger cost, ``tests/benchmarks/ledger_cost.py``);
``--only 4 7`` runs some; ``--smoke`` runs all of
them at tiny sizes (what ``tests/benchmarks/test_bench_smoke.py`` does in ``make test``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.common import REPO, machine


def ledger_cost(tmp: Path, *, smoke: bool = False) -> None:
    """Benchmark 8: another engineer's script, run as it is; its table goes to results.jsonl as text."""
    import json

    from tests.benchmarks.common import report

    sizes = ["110", "120"] if smoke else ["100", "2000"]
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.ledger_cost", "--json", "--sizes", *sizes],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
    )
    results = json.loads(done.stdout)
    rows = [
        [
            r["backend"],
            r["records"],
            r["ms_per_record_mean"],
            r["ms_per_record_last_100"],
            r["bytes_per_record"],
            r["load_s"],
        ]
        for r in results
    ]
    report(
        "8-ledger-cost",
        "8. Ledger cost per record (tests/benchmarks/ledger_cost.py)",
        ["backend", "records", "ms/record (mean)", "ms/record (last 100)", "bytes/record at size", "load s"],
        rows,
        [],
        {"sizes": sizes},
        smoke,
    )


def benchmarks() -> dict[str, object]:
    from tests.benchmarks import bench_create, bench_dupcheck, bench_local, bench_rerun

    found = {
        "1": bench_create.bench_limit,
        "2": bench_create.bench_ceiling,
        "3": bench_create.bench_accounts,
        "4": bench_local.bench_validate,
        "5": bench_local.bench_memory,
        "5b": bench_rerun.bench_rerun,
        "6": bench_dupcheck.bench_dupcheck,
        "7": bench_local.bench_parse,
    }
    if (Path(__file__).parent / "ledger_cost.py").exists():
        found["8"] = ledger_cost
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: only check that every figure comes out"
    )
    parser.add_argument("--only", nargs="+", help="benchmark numbers to run")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    info = machine()
    print(f"machine: {info['uname']}\ncpu: {info['cpu']}, {info['cores']} cores, Python {info['python']}\n")
    timings = {}
    with tempfile.TemporaryDirectory(prefix="billbee-bench-") as tmpdir:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmpdir) / "airflow-home"))
        for number, bench in benchmarks().items():
            if args.only and number not in args.only:
                continue
            start = time.monotonic()
            workdir = Path(tmpdir) / f"bench{number}"
            workdir.mkdir()
            bench(workdir, smoke=args.smoke)  # type: ignore[operator]
            timings[number] = time.monotonic() - start
            print(f"(benchmark {number}: {timings[number]:.0f} s)\n", flush=True)
    print("seconds per benchmark: " + ", ".join(f"{k}: {v:.0f}" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
