"""An import whose source and run folder are on S3 (a real moto_server), through `airflow dags test`.

The Airflow ``aws`` connection points at the loopback moto_server (``endpoint_url`` in its
extra, given as ``AIRFLOW_CONN_AWS_MOTO``), and every file is addressed as
``s3://aws_moto@bucket/key``, as on a cluster whose workers share no disk. The create task
is SIGKILLed mid-run and the run is resumed from the ledger's record objects.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AIRFLOW, REPO, Sandbox, airflow_env
from tests.storage.moto import FAKE_CREDENTIALS, MotoServer

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SAMPLE = REPO / "dags" / "data" / "customers_sample.csv"
CONN_ID = "aws_moto"


def s3_env(moto: MotoServer) -> dict[str, str]:
    return {f"AIRFLOW_CONN_{CONN_ID.upper()}": moto.aws_conn_json(), **FAKE_CREDENTIALS}


def test_import_on_s3_runs_end_to_end_and_a_killed_create_resumes_without_duplicates(
    run_airflow: Callable[..., Any],
    secret_sandbox: Sandbox,
    airflow_home: Path,
    moto: MotoServer,
    bucket: str,
) -> None:
    fs = moto.s3fs()
    fs.pipe_file(f"{bucket}/in/customers.csv", SAMPLE.read_bytes())
    out = f"s3://{CONN_ID}@{bucket}/runs/killed"
    conf = json.dumps({"source": f"s3://{CONN_ID}@{bucket}/in/customers.csv", "output_dir": out})
    env = s3_env(moto)

    # 1. The create task is killed (SIGKILL, the whole process group) after 8 creates.
    proc = subprocess.Popen(
        [AIRFLOW, "dags", "test", "billbee_import_customers", "-c", conf],
        env=airflow_env(airflow_home, secret_sandbox, **env),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(secret_sandbox.journal("/api/v1/customers", "POST")) < 8:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    created_before = len(secret_sandbox.customers())
    assert 8 <= created_before < 30  # really cut off
    records = fs.ls(f"{bucket}/runs/killed/ledger.jsonl.d")
    assert len(records) >= 8 and all(r.endswith(".json") for r in records)
    assert not fs.exists(f"{bucket}/runs/killed/ledger.jsonl")  # no growing object

    # 2. The resume (the retry of the run) reads the record objects and finishes the import.
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", conf, **env)
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
    emails = [c["Email"] for c in secret_sandbox.customers()]
    assert len(emails) == 30 and len(set(emails)) == 30  # every valid row once, no duplicate
    posts = secret_sandbox.journal("/api/v1/customers", "POST")
    # Rows left at "sending" by the kill were looked up by e-mail, not sent blindly: at most
    # the requests in flight at the kill (max_in_flight 8) that never reached Billbee go again.
    assert 30 <= len(posts) <= 38 and {json.loads(p["body"])["Email"] for p in posts} == set(emails)

    fs = moto.s3fs()  # a fresh listing cache
    summary = json.loads(fs.cat_file(f"{bucket}/runs/killed/summary.json"))
    assert summary["rows_read"] == 36 and summary["rejected_by_validation"] == 5
    results = list(
        csv.DictReader(io.StringIO(fs.cat_file(f"{bucket}/runs/killed/results.csv").decode("utf-8-sig")))
    )
    statuses = sorted(r["status"] for r in results)
    assert statuses.count("created") == 30 and statuses.count("duplicate_in_file") == 1
    assert json.loads(fs.cat_file(f"{bucket}/runs/killed/progress.json"))["state"] == "done"
    # The snapshot, staging and rejects live next to the ledger on S3, nothing in AIRFLOW_HOME.
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(f"{bucket}/runs/killed")}
    assert {"source.csv", "staging.jsonl", "rejects.csv", "ledger.jsonl.d"} <= names

    # 3. The same run again sends nothing: every outcome comes from the object ledger.
    again = run_airflow("dags", "test", "billbee_import_customers", "-c", conf, **env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert len(secret_sandbox.journal("/api/v1/customers", "POST")) == len(posts)
    assert len(secret_sandbox.customers()) == 30


def test_import_storage_setting_puts_the_run_folder_on_s3(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, moto: MotoServer, bucket: str
) -> None:
    """``[billbee] import_storage`` on S3 and a Celery executor: the default run folder is there."""
    env = {
        **s3_env(moto),
        "AIRFLOW__BILLBEE__IMPORT_STORAGE": f"s3://{CONN_ID}@{bucket}/imports",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor,CeleryExecutor",
    }
    conf = json.dumps({"dry_run": True})
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", conf, **env)
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
    found = moto.s3fs().find(f"{bucket}/imports/billbee_import_customers")
    assert any(p.endswith("/summary.json") for p in found) and any(p.endswith("/source.csv") for p in found)
    assert secret_sandbox.journal(method="POST") == []


def test_the_local_default_is_refused_at_the_start_under_celery(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox
) -> None:
    env = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW__BILLBEE__IMPORT_STORAGE": ""}
    done = run_airflow("dags", "test", "billbee_import_customers", **env)
    text = done.stdout + done.stderr
    assert "[billbee] import_storage" in text and "AIRFLOW__BILLBEE__IMPORT_STORAGE" in text
    assert "state=success" not in text and "AirflowFailException" in text
    assert secret_sandbox.journal(method="POST") == []
