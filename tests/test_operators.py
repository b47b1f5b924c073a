"""The customer operators, executed directly against the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.operators.customers import (
    BillbeeCreateCustomerOperator,
    BillbeeValidateCustomerOperator,
    as_bool,
    field_paths,
)
from tests.conftest import Sandbox

pytestmark = pytest.mark.airflow  # the operators' execute, with Airflow's connections

BODY: dict[str, Any] = {
    "Name": "Renée Größer",
    "Email": "renee.groesser@example.de",
    "Type": 1,
    "VatId": "DE123456789",
    "Address": {"Company": "Größer & Söhne GmbH", "City": "München", "CountryCode": "DE", "AddressType": 1},
}
INVALID: dict[str, Any] = {
    "Name": "X",
    "Type": 7,
    "Emial": "x@example.de",
    "Address": {"CountryCode": "Deutschland"},
}


@pytest.fixture
def billbee_default(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Sandbox:
    monkeypatch.setenv("AIRFLOW_CONN_BILLBEE_DEFAULT", sandbox.conn_json())
    return sandbox


def test_create_returns_id_and_number_only(billbee_default: Sandbox) -> None:
    result = BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={})  # type: ignore[arg-type]
    assert set(result) == {"Id", "Number"} and result["Id"] > 0
    (post,) = billbee_default.journal("/api/v1/customers", "POST")
    assert json.loads(post["body"]) == BODY


def test_invalid_body_fails_with_every_problem_and_sends_nothing(billbee_default: Sandbox) -> None:
    op = BillbeeCreateCustomerOperator(task_id="create", customer=INVALID)
    with pytest.raises(AirflowFailException) as err:
        op.execute(context={})  # type: ignore[arg-type]
    text = str(err.value)
    assert "3 problem(s); nothing was sent" in text
    assert "Type: 7 is not one of the allowed values" in text
    assert "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code" in text
    assert "Emial: unknown field" in text
    assert billbee_default.journal() == []


def test_dry_run_sends_nothing(billbee_default: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY, dry_run="true")
    assert op.execute(context={}) == {"dry_run": True, "Id": None, "Number": None}  # type: ignore[arg-type]
    assert billbee_default.journal() == []


def test_validate_operator(billbee_default: Sandbox) -> None:
    assert BillbeeValidateCustomerOperator(task_id="v", customer=json.dumps(BODY)).execute(context={}) == {  # type: ignore[arg-type]
        "valid": True,
        "fields": 5,
    }
    with pytest.raises(
        AirflowFailException,
        match="not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2",
    ):
        BillbeeValidateCustomerOperator(task_id="v", customer="{{ oops").execute(context={})  # type: ignore[arg-type]


def test_customer_dict_is_rendered_as_template() -> None:
    op = BillbeeValidateCustomerOperator(
        task_id="v", customer={"Name": "{{ params.name }}", "Address": {"City": "{{ params.city | upper }}"}}
    )
    op.render_template_fields(context={"params": {"name": "Jörg", "city": "Düsseldorf"}})  # type: ignore[arg-type]
    assert op.customer == {"Name": "Jörg", "Address": {"City": "DÜSSELDORF"}}


def test_in_doubt_create_fails_without_task_retry(billbee_default: Sandbox) -> None:
    billbee_default.set_faults(drop_rate=1.0)
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY, retries=3)
    with pytest.raises(AirflowFailException, match="Check in Billbee whether the customer exists"):
        op.execute(context={})  # type: ignore[arg-type]
    assert len(billbee_default.journal("/api/v1/customers", "POST")) == 1


def test_as_bool_and_field_paths() -> None:
    assert as_bool("True", "x") is True and as_bool("false", "x") is False and as_bool(False, "x") is False
    with pytest.raises(AirflowFailException, match="dry_run must be true or false"):
        as_bool("maybe", "dry_run")
    # One rule with the connection's flags: an empty render or "None" is a mistake, not False.
    for blank in ("", " ", "None", None):
        with pytest.raises(AirflowFailException, match="dry_run must be true or false, got"):
            as_bool(blank, "dry_run")
    assert field_paths(BODY)[-2:] == ["Address.CountryCode", "Address.AddressType"]
