"""The provider on a real multi-worker Airflow: CeleryExecutor, PostgreSQL, Redis, S3, two workers.

The workers share no disk (see ``cluster.py``), so a task that reads a file another task
wrote on local disk fails, as it would across machines. Each test empties the sandbox
first and checks the sandbox's own store: every valid customer exactly once.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from tests.cluster.cluster import REPO, Cluster, wait_for
from tests.cluster.conftest import RESULTS
from tests.sandbox_client import Sandbox

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(420)]

SAMPLE = REPO / "dags" / "data" / "customers_sample.csv"
IMPORT_DAG = "billbee_import_customers"
MAPPED_DAG = "cluster_mapped_creates"
SECOND_IMPORT_DAG = "cluster_second_import"
MAPPED_COUNT = 50


def valid_sample_emails() -> list[str]:
    """The e-mails of the sample's 30 valid rows (its last 6 rows are invalid or a repeat)."""
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    return [row["Email"].lower() for row in rows[:30]]


def tally(sandbox: Sandbox, expected: list[str]) -> dict[str, Any]:
    """Expected, created, duplicated and lost, from the sandbox's customers by e-mail."""
    emails = Counter(c["Email"].lower() for c in sandbox.customers())
    return {
        "expected": len(expected),
        "created": sum(emails.values()),
        "duplicated": sum(n - 1 for n in emails.values() if n > 1),
        "lost": sum(1 for e in expected if e not in emails),
        "unexpected": sorted(set(emails) - set(expected)),
    }


def seconds(run: dict[str, Any]) -> float:
    """A run's wall time, from its start to its end as Airflow recorded them."""
    start = datetime.fromisoformat(run["start_date"])
    end = datetime.fromisoformat(run["end_date"])
    return (end - start).total_seconds()


def record(request: pytest.FixtureRequest, dag_id: str, run_id: str) -> None:
    """Remember a run of this test, so that a failure's report shows its task logs."""
    runs = getattr(request.node, "cluster_runs", [])
    runs.append((dag_id, run_id))
    request.node.cluster_runs = runs


def s3_import(cluster: Cluster, name: str) -> dict[str, str]:
    """The sample CSV uploaded to S3 (moto), and a run folder on S3: an import's conf."""
    prefix = f"{name}-{uuid.uuid4().hex[:8]}"
    cluster.s3_put(f"{prefix}/customers_sample.csv", SAMPLE.read_bytes())
    return {
        "source": cluster.s3_url_of(f"{prefix}/customers_sample.csv"),
        "output_dir": cluster.s3_url_of(f"{prefix}/run"),
    }


def test_import_on_s3_runs_across_both_workers_and_creates_each_customer_once(
    cluster: Cluster, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    cluster.wait_dags(IMPORT_DAG)
    conf = s3_import(cluster, "s1")
    run_id = cluster.trigger(IMPORT_DAG, conf)
    record(request, IMPORT_DAG, run_id)
    run = cluster.wait_run(IMPORT_DAG, run_id)
    tis = cluster.task_instances(IMPORT_DAG, run_id)
    hosts = {ti["task_id"]: ti["hostname"] for ti in tis}
    counts = tally(sandbox, valid_sample_emails())
    RESULTS.append(
        {
            "scenario": "1 import on S3, 2 workers",
            **counts,
            "throttled": sandbox.stats()["throttled"],
            "seconds": seconds(run),
            "workers": ",".join(f"{t}@{h}" for t, h in sorted(hosts.items())),
        }
    )
    assert run["state"] == "success", tis
    assert {ti["state"] for ti in tis} == {"success"}
    assert len(set(hosts.values())) >= 2, f"every task ran on one worker: {hosts}"
    assert counts["duplicated"] == 0 and counts["lost"] == 0 and not counts["unexpected"], counts
    assert counts["created"] == 30
    keys = cluster.s3_keys(conf["output_dir"].split(f"{cluster.s3_url_of('')}", 1)[1])
    assert any(k.endswith("summary.json") for k in keys), keys


def test_local_default_storage_is_refused_at_the_start_of_extract(
    cluster: Cluster, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    cluster.wait_dags(IMPORT_DAG)
    started = time.monotonic()
    run_id = cluster.trigger(IMPORT_DAG, {})  # the form's defaults: the run's files on local disk
    record(request, IMPORT_DAG, run_id)
    run = cluster.wait_run(IMPORT_DAG, run_id)
    states = {ti["task_id"]: ti["state"] for ti in cluster.task_instances(IMPORT_DAG, run_id)}
    log = cluster.task_log(IMPORT_DAG, run_id, "extract")
    RESULTS.append(
        {
            "scenario": "3 local storage refused",
            "expected": 0,
            "created": sandbox.stats()["creates"],
            "duplicated": 0,
            "lost": 0,
            "seconds": time.monotonic() - started,
            "note": f"extract {states.get('extract')}, validate {states.get('validate')}",
        }
    )
    assert run["state"] == "failed"
    assert states["extract"] == "failed", states
    assert states["validate"] == "upstream_failed", states
    assert "import_storage" in log, log[-3000:]
    assert "FileNotFoundError" not in log
    assert sandbox.journal(method="POST") == []


def test_two_imports_of_one_account_on_two_workers_run_their_creates_one_after_the_other(
    cluster: Cluster, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    cluster.wait_dags(IMPORT_DAG, SECOND_IMPORT_DAG)
    first_conf, second_conf = s3_import(cluster, "pool-a"), s3_import(cluster, "pool-b")
    started = time.monotonic()
    runs = {
        IMPORT_DAG: cluster.trigger(IMPORT_DAG, first_conf),
        SECOND_IMPORT_DAG: cluster.trigger(SECOND_IMPORT_DAG, second_conf),
    }
    for dag_id, run_id in runs.items():
        record(request, dag_id, run_id)
    finished = {dag_id: cluster.wait_run(dag_id, run_id) for dag_id, run_id in runs.items()}
    creates = {
        dag_id: next(ti for ti in cluster.task_instances(dag_id, run_id) if ti["task_id"] == "create")
        for dag_id, run_id in runs.items()
    }
    counts = tally(sandbox, valid_sample_emails())
    first, second = sorted(creates.values(), key=lambda ti: ti["start_date"])
    RESULTS.append(
        {
            "scenario": "4 two imports of one account",
            **counts,
            "throttled": sandbox.stats()["throttled"],
            "seconds": time.monotonic() - started,
            "workers": " then ".join(f"{ti['dag_id']}.create@{ti['hostname']}" for ti in (first, second)),
            "note": "pool billbee_api, 1 slot: serialised",
        }
    )
    assert {run["state"] for run in finished.values()} == {"success"}, finished
    # The pool's one slot: the second create started after the first had ended.
    assert datetime.fromisoformat(second["start_date"]) >= datetime.fromisoformat(first["end_date"]), creates
    assert counts["duplicated"] == 0 and counts["lost"] == 0 and not counts["unexpected"], counts
    assert counts["created"] == 30


def test_mapped_single_creates_spread_over_both_workers_create_each_customer_once(
    cluster: Cluster, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    cluster.wait_dags(MAPPED_DAG)
    run_id = cluster.trigger(MAPPED_DAG)
    record(request, MAPPED_DAG, run_id)
    run = cluster.wait_run(MAPPED_DAG, run_id, timeout=360)
    tis = cluster.task_instances(MAPPED_DAG, run_id)
    expected = [f"cluster.kunde{n:02d}@example.de" for n in range(1, MAPPED_COUNT + 1)]
    counts = tally(sandbox, expected)
    stats = sandbox.stats()
    per_host = Counter(ti["hostname"] for ti in tis)
    retried = sum(1 for ti in tis if ti["try_number"] > 1)
    RESULTS.append(
        {
            "scenario": f"5 {MAPPED_COUNT} mapped single creates",
            **counts,
            "throttled": stats["throttled"],
            "seconds": seconds(run),
            "workers": ",".join(f"{h}:{n}" for h, n in sorted(per_host.items())),
            "note": f"{stats['requests']} requests, {retried} tasks retried",
        }
    )
    print(
        f"\n{MAPPED_COUNT} mapped creates: {seconds(run):.1f} s, {stats['throttled']} x 429, "
        f"{stats['requests']} requests, {retried} tasks retried, per worker {dict(per_host)}"
    )
    assert run["state"] == "success", [
        (ti["map_index"], ti["state"]) for ti in tis if ti["state"] != "success"
    ]
    assert len(tis) == MAPPED_COUNT
    assert len(per_host) >= 2, per_host
    assert counts["duplicated"] == 0 and counts["lost"] == 0 and not counts["unexpected"], counts


def test_killed_worker_mid_create_is_resumed_by_the_other_with_nothing_lost_or_doubled(
    cluster: Cluster, sandbox: Sandbox, request: pytest.FixtureRequest
) -> None:
    cluster.wait_dags(IMPORT_DAG)
    conf = s3_import(cluster, "kill")
    run_id = cluster.trigger(IMPORT_DAG, conf)
    record(request, IMPORT_DAG, run_id)
    # The sandbox runs at Billbee's 2 creates/s: 30 creates take 15 s; kill after ~10.
    wait_for("10 creates", lambda: sandbox.stats()["creates"] >= 10, 240, 0.2)
    create = next(ti for ti in cluster.task_instances(IMPORT_DAG, run_id) if ti["task_id"] == "create")
    assert create["state"] == "running", create
    victim = create["hostname"].removeprefix("cluster-")
    killed_after = sandbox.stats()["creates"]
    pids = cluster.kill_worker(victim)
    run = cluster.wait_run(IMPORT_DAG, run_id, timeout=300)
    tries = cluster.tries(IMPORT_DAG, run_id, "create")
    counts = tally(sandbox, valid_sample_emails())
    RESULTS.append(
        {
            "scenario": "2 worker killed mid-create",
            **counts,
            "throttled": sandbox.stats()["throttled"],
            "seconds": seconds(run),
            "workers": " -> ".join(f"{t['hostname']}:{t['state']}" for t in tries),
            "note": f"SIGKILL to {len(pids)} processes after {killed_after} creates",
        }
    )
    assert run["state"] == "success", tries
    assert len(tries) >= 2, tries
    assert tries[0]["hostname"] != tries[-1]["hostname"], tries
    assert counts["duplicated"] == 0 and counts["lost"] == 0 and not counts["unexpected"], counts
    assert counts["created"] == 30
    assert killed_after < 30, "the kill came after the last create"
