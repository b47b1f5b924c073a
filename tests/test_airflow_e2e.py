"""The provider inside real Airflow: discovery, `airflow dags test`, `airflow tasks test`, secrets.

Each test runs the Airflow CLI in a subprocess on an SQLite metadata DB, against a
sandbox running in this process on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SECRET_KEY, Sandbox, assert_no_secret

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "billbee_create_customer"

CUSTOMER = {
    "Name": "Björn Schäfer-Nußbaum",
    "Email": "bjoern.schaefer@example.de",
    "Type": 0,
    "Address": {
        "FirstName": "Björn",
        "LastName": "Schäfer-Nußbaum",
        "Street": "Königstraße",
        "Housenumber": "7",
        "Zip": "70173",
        "City": "Stuttgart",
        "CountryCode": "DE",
        "AddressType": 1,
    },
}
INVALID = {"Name": "Kaputt", "Type": 7, "Emial": "k@example.de", "Address": {"CountryCode": "Deutschland"}}


def test_leak_check_can_fail() -> None:
    with pytest.raises(AssertionError, match="found in planted"):
        assert_no_secret(f"header X-Billbee-Api-Key: {SECRET_KEY}", "planted")


def test_provider_is_discovered_with_its_fields(run_airflow: Callable[..., Any]) -> None:
    hooks = run_airflow("providers", "hooks", "--output", "json")
    assert hooks.returncode == 0, hooks.stderr
    (billbee,) = [h for h in json.loads(hooks.stdout) if h["connection_type"] == "billbee"]
    assert billbee["class"] == "billbee_provider.hooks.billbee.BillbeeHook"
    assert billbee["package_name"] == "airflow-provider-billbee"
    widgets = run_airflow("providers", "widgets", "--output", "json")
    names = {w["connection_parameter_name"] for w in json.loads(widgets.stdout)}
    assert {"extra__billbee__api_key", "extra__billbee__read_timeout"} <= names


def test_dags_test_creates_the_customer_once_with_exact_body(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox
) -> None:
    done = run_airflow("dags", "test", DAG_ID, "-c", json.dumps({"customer": CUSTOMER}))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (post,) = secret_sandbox.journal("/api/v1/customers", "POST")
    assert json.loads(post["body"]) == CUSTOMER
    assert "Björn Schäfer-Nußbaum" in post["body"]  # umlauts arrive as UTF-8, byte-exact
    assert post["api_key_ok"] and post["auth_ok"] and post["status"] == 200
    assert post["user_agent"].startswith("airflow-provider-billbee/")
    (stored,) = secret_sandbox.customers()
    assert stored["Name"] == CUSTOMER["Name"]
    assert f"Created Billbee customer Id={stored['Id']}" in done.stdout + done.stderr
    # personal data stays out of INFO logs
    assert "bjoern.schaefer@example.de" not in done.stdout + done.stderr


def test_invalid_customer_fails_validate_and_sends_nothing(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox
) -> None:
    done = run_airflow("dags", "test", DAG_ID, "-c", json.dumps({"customer": INVALID}))
    output = done.stdout + done.stderr
    assert "3 problem(s); nothing was sent to Billbee" in output
    assert "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code" in output
    assert "Type: 7 is not one of the allowed values" in output
    assert "Emial: unknown field" in output
    assert "state=failed" in output
    assert secret_sandbox.journal() == []


def test_tasks_test_each_task(run_airflow: Callable[..., Any], secret_sandbox: Sandbox) -> None:
    validate = run_airflow("tasks", "test", DAG_ID, "validate")
    assert validate.returncode == 0, validate.stderr[-3000:]
    assert "Customer body is valid" in validate.stdout + validate.stderr
    dry = run_airflow("tasks", "test", DAG_ID, "create", "-t", json.dumps({"dry_run": True}))
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Dry run: would POST" in dry.stdout + dry.stderr
    assert secret_sandbox.journal() == []
    create = run_airflow("tasks", "test", DAG_ID, "create")
    assert create.returncode == 0, create.stderr[-3000:]
    assert len(secret_sandbox.journal("/api/v1/customers", "POST")) == 1


def test_connections_test_command(run_airflow: Callable[..., Any], secret_sandbox: Sandbox) -> None:
    done = run_airflow("connections", "test", "billbee_default")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connection success!" in done.stdout
    (entry,) = secret_sandbox.journal()
    assert (entry["method"], entry["path"], entry["query"]) == (
        "GET",
        "/api/v1/customers",
        "page=1&pageSize=1",
    )
    wrong_key = json.loads(secret_sandbox.conn_json())
    wrong_key["extra"]["api_key"] = "KEY-not-the-right-one"
    failed = run_airflow(
        "connections", "test", "billbee_default", AIRFLOW_CONN_BILLBEE_DEFAULT=json.dumps(wrong_key)
    )
    assert "Billbee rejected the API key" in failed.stdout + failed.stderr
