"""Every example DAG, run with distinctive credentials: no secret anywhere, no personal data at INFO.

The ``run_airflow`` fixture (tests/conftest.py) searches, after the test, every output
of every Airflow command and every file in AIRFLOW_HOME (task logs, the metadata DB
with its XComs and rendered template fields) and in the test's directory (results,
rejects, ledgers, summaries) for the API key and the API password.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Sandbox

pytestmark = pytest.mark.airflow

EXAMPLE_DAGS = {"billbee_create_customer", "billbee_import_customers", "billbee_sync_customers_sql"}
INVALID = {
    "Name": "Kaputt",
    "Type": 7,
    "Email": "geheim(at)example.de",
    "Address": {"CountryCode": "Deutschland"},
}


def example_dag_ids() -> set[str]:
    from airflow.dag_processing.dagbag import DagBag

    return set(DagBag(dag_folder=str(REPO / "dags")).dags)


def personal_data() -> set[str]:
    """E-mails, names and streets of every customer the example DAGs send."""
    from example_shop import SAMPLE_ROWS

    values: set[str] = set()
    with (REPO / "dags" / "data" / "customers_sample.csv").open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            values |= {row["Email"], row["Name"], row["Address.Street"]}
    for shop_row in SAMPLE_ROWS:
        values |= {shop_row[3], shop_row[5]}  # email, street
    values |= {"juergen.weiss@example.de", "Schönhauser Allee", INVALID["Email"]}
    return {v for v in values if v}


def test_every_example_dag_is_covered_here() -> None:
    assert example_dag_ids() == EXAMPLE_DAGS


@pytest.mark.slow
def test_every_example_dag_leaks_no_secret_and_logs_no_personal_data(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    shop = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "shop.sqlite")})
    runs = [
        ("billbee_create_customer", {}, True),
        ("billbee_create_customer", {"customer": INVALID}, False),  # a failure's exception text too
        ("billbee_import_customers", {"output_dir": str(tmp_path / "import")}, True),
        ("billbee_sync_customers_sql", {"output_dir": str(tmp_path / "sql")}, True),
    ]
    outputs = []
    for dag_id, conf, succeeds in runs:
        done = run_airflow(
            "dags", "test", dag_id, "-c", json.dumps(conf), AIRFLOW_CONN_BILLBEE_EXAMPLE_SHOP=shop
        )
        output = done.stdout + done.stderr
        assert ("state=success" in output) is succeeds, output[-3000:]
        outputs.append(output)
    # The credentials were really used (the sandbox accepted them) ...
    assert all(e["api_key_ok"] and e["auth_ok"] for e in secret_sandbox.journal())
    # 1 single create; 29 of the sample (its first row is the single one: existing); 5 from the shop
    assert len(secret_sandbox.journal("/api/v1/customers", "POST")) == 1 + 29 + 5
    # ... and the task logs at INFO name no customer (the fixture checks the secrets).
    leaked = sorted(value for value in personal_data() if any(value in output for output in outputs))
    assert leaked == []
