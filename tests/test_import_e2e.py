"""The import DAGs run by `airflow dags test` against the sandbox."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AIRFLOW, REPO, Sandbox, airflow_env

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SAMPLE = REPO / "dags" / "data" / "customers_sample.csv"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def files_xcoms(airflow_home: Path, dag_id: str, output_dir: Path) -> dict[str, dict[str, str]]:
    """The XCom ``billbee_files`` of each task of the run that wrote into ``output_dir``."""
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = 'billbee_files'", (dag_id,)
        ).fetchall()
    found = {}
    for task_id, value in rows:
        while isinstance(value, str | bytes):
            value = json.loads(value)
        if value["output_dir"] == str(output_dir):
            found[task_id] = value
    return found


def test_import_sample_creates_valid_rows_once_and_explains_the_rest(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, airflow_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run1"
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps({"output_dir": str(out)}))
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows_read"] == 36 and summary["rejected_by_validation"] == 5
    assert summary["counts"]["created"] == 30 and summary["counts"]["duplicate_in_file"] == 1
    assert summary["throttled_429"] == 0
    # Every task said where the run's files are (XCom billbee_files); progress.json ended "done".
    files = files_xcoms(airflow_home, "billbee_import_customers", out)
    assert set(files) == {"extract", "validate", "create", "report"}
    assert {json.dumps(value, sort_keys=True) for value in files.values()} == {
        json.dumps(
            {
                "output_dir": str(out),
                "progress": f"{out}/progress.json",
                "summary": f"{out}/summary.json",
                "results": f"{out}/results.csv",
                "rejects": f"{out}/rejects.csv",
                "ledger": f"{out}/ledger.jsonl",
            },
            sort_keys=True,
        )
    }
    progress = json.loads((out / "progress.json").read_text(encoding="utf-8"))
    assert progress["state"] == "done" and progress["counts"] == summary["counts"]
    assert progress["rows_total"] == progress["rows_done"] == 31 and progress["created"] == 30
    # Every valid row arrived once, byte-exact (the sample is `;`-separated, with BOM and umlauts).
    stored = {c["Email"]: c for c in secret_sandbox.customers()}
    rows = sample_rows()
    valid = rows[:30]
    assert sorted(stored) == sorted(r["Email"] for r in valid)
    for row in valid:
        assert stored[row["Email"]]["Name"] == row["Name"]
    bodies = {
        json.loads(e["body"])["Email"]: e["body"] for e in secret_sandbox.journal("/api/v1/customers", "POST")
    }
    assert '"Company": "Krüger & Söhne GmbH; \\"Fachhandel\\""' in bodies["anja.krueger@example.de"]
    rejects = read_csv(out / "rejects.csv")
    assert [r["row"] for r in rejects] == ["31", "32", "33", "34", "35"]
    assert (
        "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code"
        in rejects[0]["problems"]
    )
    assert not set(bodies) & {r["key"] for r in rejects}  # rejected rows were never sent
    # The log says where things are and names no customer.
    assert str(out / "rejects.csv") in done.stdout + done.stderr
    assert "juergen.weiss@example.de" not in done.stdout + done.stderr

    # A second run of the same file (new output dir) finds them all in the account.
    again = run_airflow(
        "dags", "test", "billbee_import_customers", "-c", json.dumps({"output_dir": str(tmp_path / "run2")})
    )
    assert again.returncode == 0
    second = json.loads((tmp_path / "run2" / "summary.json").read_text(encoding="utf-8"))
    assert second["counts"]["existing"] == 30 and second["counts"]["created"] == 0
    assert len(secret_sandbox.customers()) == 30


def test_import_dry_run_sends_nothing_but_reports(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    conf = {"output_dir": str(tmp_path), "dry_run": True}
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
    assert done.returncode == 0, done.stdout[-3000:]
    assert secret_sandbox.journal(method="POST") == []
    assert len(read_csv(tmp_path / "rejects.csv")) == 5
    assert {r["status"] for r in read_csv(tmp_path / "results.csv")} == {"would_create", "duplicate_in_file"}


def test_too_many_rejects_fail_before_anything_is_sent(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    conf = {"output_dir": str(tmp_path), "max_rejects": 2}
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps(conf))
    assert "5 of 36 rows rejected (13.9%), more than max_rejects allows (2)" in done.stdout + done.stderr
    assert secret_sandbox.journal(method="POST") == []
    assert len(read_csv(tmp_path / "rejects.csv")) == 5


def test_killed_import_task_then_rerun_creates_each_customer_once(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, airflow_home: Path, tmp_path: Path
) -> None:
    """SIGKILL the process running the create task mid-way, twice; re-run: each customer once."""
    conf = json.dumps({"output_dir": str(tmp_path)})
    argv = [AIRFLOW, "dags", "test", "billbee_import_customers", "-c", conf]
    for kill_after in (4, 12):
        proc = subprocess.Popen(
            argv,
            env=airflow_env(airflow_home, secret_sandbox),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while len(secret_sandbox.journal("/api/v1/customers", "POST")) < kill_after:
                assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the kill"
                time.sleep(0.1)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert len(secret_sandbox.customers()) < 30  # it really was cut off
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", conf)
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
    emails = [c["Email"] for c in secret_sandbox.customers()]
    assert len(emails) == 30 and len(set(emails)) == 30
    results = read_csv(tmp_path / "results.csv")
    assert sorted(r["status"] for r in results).count("created") == 30


def test_sql_sync_sends_new_rows_once_and_writes_ids_back(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    db = tmp_path / "shop.sqlite"
    shop = {"AIRFLOW_CONN_BILLBEE_EXAMPLE_SHOP": json.dumps({"conn_type": "sqlite", "host": str(db)})}
    first = run_airflow(
        "dags",
        "test",
        "billbee_sync_customers_sql",
        "-c",
        json.dumps({"output_dir": str(tmp_path / "a")}),
        **shop,
    )
    assert first.returncode == 0 and "state=success" in first.stdout + first.stderr, first.stdout[-3000:]
    with sqlite3.connect(db) as conn:
        linked = dict(conn.execute("SELECT email, billbee_id FROM shop_customers").fetchall())
    stored = {c["Email"]: c["Id"] for c in secret_sandbox.customers()}
    assert len(stored) == 5  # six rows, one with country 'Deutschland' rejected
    assert linked["Lena.Fischer@example.de"] == stored["lena.fischer@example.de"]  # template lower-cased it
    assert linked["felix.weber@example.de"] is None
    assert (
        secret_sandbox.customers()[1]["Name"] == "Bauer Werkzeuge GmbH"
        and secret_sandbox.customers()[1]["Type"] == 1
    )

    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO shop_customers (first_name, last_name, company, email, street, house_no, zip, city,"
            " country) VALUES ('Nina', 'Brandt', '', 'nina.brandt@example.de', 'Elbchaussee', '9', '22763',"
            " 'Hamburg', 'DE')"
        )
    second = run_airflow(
        "dags",
        "test",
        "billbee_sync_customers_sql",
        "-c",
        json.dumps({"output_dir": str(tmp_path / "b")}),
        **shop,
    )
    assert second.returncode == 0, second.stdout[-3000:]
    assert len(secret_sandbox.customers()) == 6
    posts = secret_sandbox.journal("/api/v1/customers", "POST")
    assert [json.loads(p["body"])["Email"] for p in posts].count("nina.brandt@example.de") == 1
    assert len(posts) == 6


def test_import_runs_with_the_forms_defaults_into_a_folder_of_its_own(
    run_airflow: Callable[..., Any], airflow_home: Path
) -> None:
    """No conf at all, as the trigger form's defaults: the output folder is new for the run."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "billbee_import_customers.py")).dags[
        "billbee_import_customers"
    ]
    dag.params.validate()  # every default passes its own schema: nothing the form must fill in
    assert dag.params["output_dir"] is None

    runs = airflow_home / "billbee-imports" / "billbee_import_customers"
    before = set(runs.glob("*/summary.json"))  # other tests of this session may have left runs
    done = run_airflow("dags", "test", "billbee_import_customers", "-c", json.dumps({"dry_run": True}))
    assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
    (summary,) = set(runs.glob("*/summary.json")) - before
    assert summary.parent.name.startswith("manual__")  # the run's id, not "None" or a shared folder
    assert json.loads(summary.read_text(encoding="utf-8"))["counts"]["would_create"] == 30
