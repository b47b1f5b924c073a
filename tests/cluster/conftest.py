"""The cluster of ``make test-cluster``: started once per session, stopped by PID even on failure.

The tests here run only when ``BILLBEE_CLUSTER_TESTS=1`` (``make test-cluster`` sets it),
so that a plain ``pytest`` or ``make test-quick`` does not start a whole cluster. A
failed test gets the tail of every component's log and the task logs of its run in its
report; the session ends with the table of scenarios and the cluster's start-up times.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from billbee_provider.sandbox.config import SandboxConfig
from tests.cluster.cluster import Cluster, remove_tree
from tests.sandbox_client import Sandbox

if os.environ.get("BILLBEE_CLUSTER_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]

#: One row per scenario, printed at the end of the session (and written to results.json).
RESULTS: list[dict[str, Any]] = []
_CLUSTER: list[Cluster] = []
_STARTED = time.monotonic()


def pg_bin() -> Path:
    """PostgreSQL's bin folder: ``BILLBEE_CLUSTER_PG_BIN`` (setup.sh), where ``initdb`` on PATH
    really is, or Debian's versioned folder."""
    if os.environ.get("BILLBEE_CLUSTER_PG_BIN"):
        return Path(os.environ["BILLBEE_CLUSTER_PG_BIN"])
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail("PostgreSQL's initdb is not installed: run tests/cluster/setup.sh (make test-cluster)")
    return found[-1].parent


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="billbee-cluster-"))
    base.chmod(0o755)  # PostgreSQL's user must reach its data folder
    running = Cluster(base=base, pg_bin=pg_bin())
    _CLUSTER.append(running)
    try:
        try:
            running.start()
        except Exception as exc:
            pytest.fail(f"the cluster did not start: {exc}\n{running.diagnostics()}", pytrace=False)
        yield running
    finally:
        running.stop()
        if os.environ.get("BILLBEE_CLUSTER_KEEP") != "1":
            remove_tree(base)


@pytest.fixture
def sandbox(cluster: Cluster) -> Sandbox:
    """The cluster's sandbox, emptied (customers, journal, throttle history), both workers up."""
    cluster.ensure_workers()
    server = SimpleNamespace(
        base_url=cluster.sandbox_url, config=SandboxConfig(port=cluster.ports["sandbox"])
    )
    client = Sandbox(server)  # type: ignore[arg-type]
    client.reset()
    return client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and _CLUSTER and call.when in ("setup", "call"):
        running = _CLUSTER[0]
        report.sections.append(("cluster: component logs", running.diagnostics()))
        for dag_id, run_id in getattr(item, "cluster_runs", []):
            for ti in _safe(lambda d=dag_id, r=run_id: running.task_instances(d, r)) or []:
                if not ti["hostname"]:  # never ran: no log
                    continue
                text = running.task_log(dag_id, run_id, ti["task_id"], max(ti["try_number"], 1))
                tail = "\n".join(text.splitlines()[-30:])
                report.sections.append(
                    (f"cluster: {ti['task_id']}[{ti['map_index']}] {ti['state']} on {ti['hostname']}", tail)
                )
    return report


def _safe(call: Any) -> Any:
    try:
        return call()
    except Exception:  # diagnostics must never hide the failure itself
        return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _CLUSTER:
        return
    write = terminalreporter.write_line
    running = _CLUSTER[0]
    write("")
    write("cluster start-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in running.timings.items()))
    if RESULTS:
        header = (
            "scenario",
            "expected",
            "created",
            "duplicated",
            "lost",
            "429s",
            "seconds",
            "workers",
            "note",
        )
        rows = [
            (
                *tuple(str(r.get(k, "")) for k in ("scenario", "expected", "created", "duplicated", "lost")),
                str(r.get("throttled", "")),
                f"{r['seconds']:.1f}",
                r.get("workers", ""),
                r.get("note", ""),
            )
            for r in RESULTS
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        write(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        write("-+-".join("-" * w for w in widths))
        for row in rows:
            write(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    write(f"cluster session: {time.monotonic() - _STARTED:.0f} s")
