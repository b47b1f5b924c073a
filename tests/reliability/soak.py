"""The soak: thousands of customers through every fault at once, killed and resumed.

``python -m tests.reliability.soak [--rows 2000] [--seed N]`` (``make soak``) starts a
sandbox in this process at a scaled-up limit (100 requests/s per endpoint) with 503s,
dropped answers, ``ErrorCode`` 8, 429 bursts and latency pulses beyond the client's read
timeout switched on, and one outage (the sandbox stops and comes back on its port). The
import runs in child processes (``tests.reliability.runner``): ``--kills`` of them are
SIGKILLed at seeded random points, the ledger gets a torn last line, and then runs
complete the import (a further run only while rows are left ``failed``, as a person
re-running the task would).

It prints the books (created, duplicates, lost, in doubt, failed, retries, seconds) as
a table line and as JSON, and exits 0 only at 0 duplicates, 0 lost and 0 rows left in
doubt (every row has an e-mail, so every doubt must be resolved); 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from billbee_provider.api.config import BillbeeConfig
from billbee_provider.sandbox import Burst, Faults
from tests.reliability.matrix import (
    Bench,
    Job,
    Tally,
    audit,
    format_table,
    kill_then_complete,
    latency_pulses,
    ledger_notes,
    outage,
    people,
    write_staging,
)

#: Faults of the soak: every kind at once.
SOAK_FAULTS = Faults(fail_rate=0.05, drop_rate=0.05, error_rate=0.05, burst_429=Burst.parse("10:1"))
#: Latency pulses: 1.5 s answers (beyond the 1 s read timeout) for 1 s of every 7 s.
PULSES = (1.5, 1.0, 6.0)
READ_TIMEOUT = 1.0
#: Runs after the kills, at most: a further one only while a run fails or leaves rows ``failed``.
COMPLETIONS = 3
SOAK_LIMITS = {"endpoint_limit": 100, "user_limit": 200, "key_limit": 400}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=2000, help="customers to import (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of faults, kill points and jitter")
    parser.add_argument("--kills", type=int, default=3, help="runs to SIGKILL before completing (default 3)")
    parser.add_argument("--down", type=float, default=10.0, help="seconds the sandbox is down (default 10)")
    parser.add_argument("--max-in-flight", type=int, default=16, help="concurrent creates per run")
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    if args.rows < 100 or args.kills < 0:
        parser.error("--rows must be >= 100 and --kills >= 0")
    return args


def client_config(bench: Bench) -> BillbeeConfig:
    """The importer's connection: 1.5 times the sandbox's limits (another app shares the
    quota, so the sandbox's own throttle answers 429 too), a read timeout the pulses outlast."""
    return bench.client_config(
        endpoint_rate_limit=SOAK_LIMITS["endpoint_limit"] * 3 // 2,
        account_rate_limit=SOAK_LIMITS["user_limit"] * 3 // 2,
        read_timeout=READ_TIMEOUT,
    )


def soak(args: argparse.Namespace, directory: Path) -> Tally:
    """Run the soak in ``directory`` and return its books."""
    bodies = people(args.rows, tag="s")
    write_staging(directory / "staging.jsonl", bodies)
    job = Job(directory / "staging.jsonl", directory / "out")
    rng = random.Random(args.seed)  # kill points, not security
    step = max(10, args.rows // 10)
    with Bench(directory, faults=SOAK_FAULTS, seed=args.seed, limits=SOAK_LIMITS) as bench:
        config = client_config(bench)
        started = time.monotonic()
        with latency_pulses(bench, *PULSES), outage(bench, rng.randint(step, 5 * step), args.down) as down:
            report = kill_then_complete(
                bench,
                job,
                lambda n: job.spec(config, directory, seed=args.seed + n, max_in_flight=args.max_in_flight),
                kills=args.kills,
                rng=rng,
                creates_between=(step, 2 * step),
                completions=COMPLETIONS,
            )
        seconds = time.monotonic() - started
        answers = dict(bench.journal_statuses())
    notes: dict[str, Any] = {
        "killed": report.killed,
        "runs": report.killed + report.failed_runs + len(report.summaries),
        "failed_runs": report.failed_runs,
        "down_seconds": round(down.up_at - down.down_at, 2),
        "answers": answers,
        "last_run_counts": {k: v for k, v in report.summaries[-1]["counts"].items() if v},
        **ledger_notes(job),
    }
    retries = sum(s["retries"] for s in report.summaries)
    fault = f"soak: all faults, {args.kills} SIGKILLs, {args.down:g} s outage"
    return audit(fault, bench, bodies, [job], retries=retries, seconds=seconds, notes=notes)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; 0 only at 0 duplicates, 0 lost, 0 left in doubt."""
    args = parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="billbee-soak-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        tally = soak(args, directory)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    print(format_table([tally]))
    print(f"in_doubt={tally.in_doubt} failed={tally.failed} wrong_ids={tally.wrong_ids}")
    print(json.dumps(tally.as_dict(), sort_keys=True))
    ok = tally.duplicates == 0 and tally.lost == 0 and tally.in_doubt == 0 and tally.wrong_ids == 0
    print("SOAK PASSED" if ok else "SOAK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
