"""The single-customer DAG in real Airflow: the rendered body as stored, Billbee's answer as XCom.

``airflow dags test`` runs ``billbee_create_customer`` on an SQLite metadata DB; the test
then reads what the UI shows from that DB: the row of ``rendered_task_instance_fields``
(the Rendered Templates tab) and the XCom ``billbee_response`` of the create task, which
a failing task pushes before it fails.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.operators.customers import RESPONSE_XCOM_KEY
from tests.conftest import Sandbox

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "billbee_create_customer"
CUSTOMER = {
    "Name": "Jürgen Weiß-Größer",
    "Email": "juergen.groesser@example.de",
    "Type": 1,
    "PriceGroupId": 9223372036854775807,
    "Address": {"Street": "Königsallee", "City": "Düsseldorf", "CountryCode": "DE", "AddressType": 1},
}


def _stored(airflow_home: Path, logical_date: str, task_id: str) -> tuple[Any, Any]:
    """``(rendered fields, XCom billbee_response or None)`` of ``task_id`` in the run at ``logical_date``."""

    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND logical_date LIKE ?",
            (DAG_ID, logical_date[:19].replace("T", " ") + "%"),
        ).fetchone()
        (fields,) = db.execute(
            "SELECT rendered_fields FROM rendered_task_instance_fields"
            " WHERE dag_id = ? AND run_id = ? AND task_id = ?",
            (DAG_ID, run_id, task_id),
        ).fetchone()
        xcom = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
            (DAG_ID, run_id, task_id, RESPONSE_XCOM_KEY),
        ).fetchone()
    return loaded(fields), None if xcom is None else loaded(xcom[0])


def test_rendered_body_is_indented_json_and_created_is_pushed(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, airflow_home: Path
) -> None:
    logical_date = "2031-02-03T04:05:06+00:00"
    done = run_airflow("dags", "test", DAG_ID, logical_date, "-c", json.dumps({"customer": CUSTOMER}))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (post,) = secret_sandbox.journal("/api/v1/customers", "POST")
    assert json.loads(post["body"]) == CUSTOMER  # the same values reached Billbee
    for task_id in ("validate", "create"):
        fields, _ = _stored(airflow_home, logical_date, task_id)
        rendered = fields["customer"]
        # What the Rendered Templates tab shows: indented, umlauts as they are (tojson sorts keys).
        assert rendered == json.dumps(CUSTOMER, indent=2, ensure_ascii=False, sort_keys=True), rendered
        assert '"Name": "Jürgen Weiß-Größer"' in rendered and "\\u00" not in rendered
        assert json.loads(rendered) == CUSTOMER
    _, response = _stored(airflow_home, logical_date, "create")
    (stored,) = secret_sandbox.customers()
    assert response == {
        "outcome": "created",
        "status": 200,
        "Id": stored["Id"],
        "Number": stored["Number"],
        "elapsed_ms": response["elapsed_ms"],
        "error_code": None,
        "error_name": None,
        "message": None,
        "problems": [],
    }
    assert isinstance(response["elapsed_ms"], float) and response["elapsed_ms"] > 0


def test_billbee_refusing_the_body_leaves_its_answer_in_xcom(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, airflow_home: Path
) -> None:
    # Type 1.0 passes the schema (an integer to JSON Schema) and the validate task, and the
    # rendered text keeps it 1.0; Billbee's binder refuses it (400 ModelState).
    logical_date = "2031-02-03T05:06:07+00:00"
    customer = {**CUSTOMER, "Type": 1.0}
    done = run_airflow("dags", "test", DAG_ID, logical_date, "-c", json.dumps({"customer": customer}))
    output = done.stdout + done.stderr
    assert "state=failed" in output, output[-3000:]
    fields, response = _stored(airflow_home, logical_date, "create")
    assert fields["customer"].endswith('\n  "Type": 1.0\n}')
    assert response["outcome"] == "failed" and response["status"] == 400
    assert (response["error_code"], response["error_name"], response["Id"]) == (None, None, None)
    (problem,) = response["problems"]
    assert problem.startswith("model.Type: Input string '1.0' is not a valid integer.")
    assert "model.Type" in response["message"]
    assert secret_sandbox.customers() == []
    for value in ("Jürgen", "Größer", "juergen.groesser@example.de", "Königsallee", "Düsseldorf"):
        assert value not in json.dumps(response, ensure_ascii=False)
