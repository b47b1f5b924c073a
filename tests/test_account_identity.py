"""One account, one lock, however its connections spell the Host (issue §2).

Two imports of one sandbox account, started together in child processes, one through
``http://127.0.0.1:P`` and one through ``http://localhost:P/api/v1``: before the
account's identity was normalised they took two different locks, both scanned an
account without the other's customers, and created 16 duplicates of 20. Now they take
one lock: one creates every customer, the other waits, scans, and finds them all.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from billbee_provider.api.config import normalize_base_url
from billbee_provider.imports.account import account_lock_path
from tests.reliability.matrix import Bench, Child, Faults, Job, audit, people, write_staging

ROWS = 20


@pytest.mark.slow
def test_two_imports_with_differently_spelled_hosts_create_each_customer_once(tmp_path: Path) -> None:
    bodies = people(ROWS, tag="spelled")
    write_staging(tmp_path / "staging.jsonl", bodies)
    jobs = [Job(tmp_path / "staging.jsonl", tmp_path / name) for name in ("a", "b")]
    locks = tmp_path / "locks"  # one machine: both use the same temporary directory
    with Bench(tmp_path, faults=Faults(latency=0.05)) as bench:
        port = bench.base_url.rsplit(":", 1)[1]
        hosts = [f"http://127.0.0.1:{port}", f"http://LOCALHOST:{port}/api/v1/"]
        # What each Airflow connection's Host turns into: two different base URLs ...
        configs = [bench.client_config(base_url=normalize_base_url(host)) for host in hosts]
        assert configs[0].base_url != configs[1].base_url
        # ... of one account: one lock file.
        assert len({account_lock_path(c.base_url, c.user, locks) for c in configs}) == 1
        started = time.monotonic()
        with ExitStack() as stack:
            children = [
                stack.enter_context(Child(job.spec(config, locks, seed=n), job.out / "run"))
                for n, (job, config) in enumerate(zip(jobs, configs, strict=True))
            ]
            summaries = [child.finish() for child in children]
        seconds = time.monotonic() - started
    tally = audit(
        "two imports, Host spelled two ways",
        bench,
        bodies,
        jobs,
        retries=sum(s["retries"] for s in summaries),
        seconds=seconds,
    )
    assert (tally.created, tally.duplicates, tally.lost) == (ROWS, 0, 0)
    created = sorted(s["counts"].get("created", 0) for s in summaries)
    existing = sorted(s["counts"].get("existing", 0) for s in summaries)
    assert created == [0, ROWS] and existing == [0, ROWS]  # one waited for the lock, then found all
