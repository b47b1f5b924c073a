"""Every import task pushes the XCom ``billbee_files`` when it starts: where the run's files are."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.imports.progress import read_progress
from billbee_provider.operators.create import BillbeeCreateCustomersOperator
from billbee_provider.operators.extract import (
    BillbeeExtractCustomersOperator,
    BillbeeExtractCustomersSqlOperator,
)
from billbee_provider.operators.report import BillbeeReportImportOperator
from billbee_provider.operators.run_files import FILES_XCOM_KEY, run_files
from billbee_provider.operators.validate import BillbeeValidateCustomersOperator
from tests.sandbox_client import Sandbox

pytestmark = pytest.mark.airflow  # the operators' execute, with Airflow's connections

CSV = "Name;Email;Type\r\nJürgen Weiß;juergen.weiss@example.de;0\r\nAnna;anna(at)example.de;0\r\n"


class RecordingTI:
    """A task instance that keeps what is pushed, and what was pushed before ``execute`` failed."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON
        self.xcoms[key] = value


def context_of(ti: RecordingTI) -> Any:
    """A task context with only the task instance (``Any``: not the whole ``Context``)."""
    return {"ti": ti}


def expected(out: Path, **overrides: str) -> dict[str, str]:
    return {
        "output_dir": str(out),
        "progress": f"{out}/progress.json",
        "summary": f"{out}/summary.json",
        "results": f"{out}/results.csv",
        "rejects": f"{out}/rejects.csv",
        "ledger": f"{out}/ledger.jsonl",
        **overrides,
    }


def test_run_files_names_the_folders_files_and_keeps_overrides() -> None:
    assert run_files("/data/run") == expected(Path("/data/run"))
    assert run_files("s3://bucket/run", rejects="s3://bucket/r.csv", ledger="s3://b/l.jsonl") == {
        "output_dir": "s3://bucket/run",
        "progress": "s3://bucket/run/progress.json",
        "summary": "s3://bucket/run/summary.json",
        "results": "s3://bucket/run/results.csv",
        "rejects": "s3://bucket/r.csv",
        "ledger": "s3://b/l.jsonl",
    }
    # No clash with the keys the tasks push through multiple_outputs.
    assert FILES_XCOM_KEY == "billbee_files"


def test_extract_validate_create_report_push_billbee_files(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BILLBEE_DEFAULT", sandbox.conn_json())
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the account lock's folder
    source = tmp_path / "customers.csv"
    source.write_text(CSV, encoding="utf-8")
    out = tmp_path / "run"
    keys: dict[str, set[str]] = {}

    ti = RecordingTI()
    extracted = BillbeeExtractCustomersOperator(task_id="extract", source=str(source), output_dir=str(out))
    extracted_result = extracted.execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out)}
    keys["extract"] = set(extracted_result)

    ti = RecordingTI()
    validate = BillbeeValidateCustomersOperator(
        task_id="validate", source=extracted_result["path"], output_dir=str(out)
    )
    validated = validate.execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out)}
    keys["validate"] = set(validated)

    ti = RecordingTI()
    rejects, ledger = tmp_path / "elsewhere" / "rejects.csv", tmp_path / "ledgers" / "l.jsonl"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "rejects.csv").write_bytes((out / "rejects.csv").read_bytes())
    create = BillbeeCreateCustomersOperator(
        task_id="create",
        staging=validated["staging"],
        rejects=str(rejects),
        ledger=str(ledger),
        output_dir=str(out),
    )
    created = create.execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out, rejects=str(rejects), ledger=str(ledger))}
    keys["create"] = set(created)
    progress = read_progress(out / "progress.json")
    assert progress is not None and progress["state"] == "done" and progress["created"] == 1

    ti = RecordingTI()
    report = BillbeeReportImportOperator(
        task_id="report", validated=validated, created=created, output_dir=str(out)
    )
    report.execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out, rejects=str(rejects), ledger=str(ledger))}

    # The tasks with multiple_outputs push each key of their result: none is billbee_files.
    assert not [task for task, names in keys.items() if FILES_XCOM_KEY in names]


def test_the_xcom_is_there_before_the_work_fails(tmp_path: Path) -> None:
    out = tmp_path / "run"
    ti = RecordingTI()
    with pytest.raises(AirflowFailException, match="no such file"):
        BillbeeValidateCustomersOperator(
            task_id="validate", source=str(tmp_path / "missing.csv"), output_dir=str(out)
        ).execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out)}

    ti = RecordingTI()
    with pytest.raises(AirflowFailException, match=r"x\.xlsx"):
        BillbeeExtractCustomersOperator(
            task_id="extract", source=str(tmp_path / "x.xlsx"), output_dir=str(out)
        ).execute(context_of(ti))
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out)}


def test_the_sql_extract_pushes_billbee_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE c (email TEXT)")
        conn.execute("INSERT INTO c VALUES ('a@example.de')")
    conn.close()
    monkeypatch.setenv("AIRFLOW_CONN_SHOP", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    out = tmp_path / "run"
    ti = RecordingTI()
    result = BillbeeExtractCustomersSqlOperator(
        task_id="extract", conn_id="shop", sql="SELECT email FROM c", output_dir=str(out)
    ).execute(context_of(ti))
    assert result["rows"] == 1
    assert ti.xcoms == {FILES_XCOM_KEY: expected(out)}
