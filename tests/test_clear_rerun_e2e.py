"""Clearing a finished ``create`` and running it again does not create a second customer (issue §8).

The UI's Clear calls ``clear_task_instances`` on the task instance; the next time it is
scheduled, Airflow 3 gives it the next ``try_number`` (``DagRun.schedule_tis``:
``try_number + 1``). The first run here is ``airflow dags test``; the second is
``tests/airflow_rerun.py``: ``Dag.test`` on the *existing* run (clear, reschedule with
``try_number + 1``, execute), since ``airflow dags test`` of the same logical date deletes
the run and starts again at try 1, and ``airflow tasks test`` keeps the try number.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Sandbox, airflow_env, assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "billbee_create_customer"
CUSTOMER = {
    "Name": "Clara Überall",
    "Email": "clara.ueberall@example.de",
    "Type": 0,
    "Address": {"City": "Köln", "CountryCode": "DE", "AddressType": 1},
}


def create_results(airflow_home: Path, logical_date: str) -> list[tuple[int, Any]]:
    """``(try_number, XCom return value)`` of the create task of the run at ``logical_date``."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND logical_date LIKE ?",
            (DAG_ID, logical_date[:19].replace("T", " ") + "%"),
        ).fetchone()
        (try_number,) = db.execute(
            "SELECT try_number FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = 'create'",
            (DAG_ID, run_id),
        ).fetchone()
        rows = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'create'"
            " AND key = 'return_value'",
            (DAG_ID, run_id),
        ).fetchall()
    return [(int(try_number), json.loads(value) if isinstance(value, str) else value) for (value,) in rows]


def rerun(airflow_home: Path, sandbox: Sandbox, logical_date: str) -> subprocess.CompletedProcess[str]:
    """Clear the run at ``logical_date`` and run its tasks again (``tests/airflow_rerun.py``)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.airflow_rerun", DAG_ID, logical_date],
        env={**airflow_env(airflow_home, sandbox), "PYTHONPATH": f"{REPO}:{REPO / 'dags'}"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert_no_secret(done.stdout + done.stderr, "output of the rerun")
    return done


def test_second_try_of_a_finished_create_returns_the_existing_customer(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, airflow_home: Path
) -> None:
    logical_date = "2030-01-02T03:04:05+00:00"
    conf = json.dumps({"customer": CUSTOMER})
    first = run_airflow("dags", "test", DAG_ID, logical_date, "-c", conf)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    (stored,) = secret_sandbox.customers()
    assert [(1, {"Id": stored["Id"], "Number": stored["Number"]})] == create_results(
        airflow_home, logical_date
    )

    again = rerun(airflow_home, secret_sandbox, logical_date)  # Clear + run again: try 2
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    assert f"Try 2 of this task: the customer already exists in Billbee (Id={stored['Id']}" in output
    assert [(2, {"Id": stored["Id"], "Number": stored["Number"]})] == create_results(
        airflow_home, logical_date
    )
    assert secret_sandbox.customers() == [stored]  # still one customer
    posts = secret_sandbox.journal("/api/v1/customers", "POST")
    assert len(posts) == 1  # the second try only read: a scan and one GET of the customer
    assert f"/api/v1/customers/{stored['Id']}" in [e["path"] for e in secret_sandbox.journal(None, "GET")]
    assert CUSTOMER["Email"] not in output  # the lookup logs Ids, never the e-mail


def test_import_create_task_names_its_pool(run_airflow: Callable[..., Any], tmp_path: Path) -> None:
    """A two-slot pool cannot be seen from inside the task: the reminder is always logged."""
    assert run_airflow("pools", "set", "billbee_api", "2", "Billbee API").returncode == 0
    try:
        done = run_airflow(
            "dags",
            "test",
            "billbee_import_customers",
            "-c",
            json.dumps({"dry_run": True, "output_dir": str(tmp_path / "out")}),
        )
    finally:
        assert run_airflow("pools", "set", "billbee_api", "1", "Billbee API").returncode == 0
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "pool 'billbee_api' must have exactly 1 slot per Billbee account" in output
