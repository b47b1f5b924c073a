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


# -- a try after the first (a retry, or Clear in the UI) looks before it creates ----------


class _TI:
    def __init__(self, try_number: int) -> None:
        self.try_number = try_number


def _try(number: int) -> Any:
    return {"ti": _TI(number)}


def test_first_try_is_one_request(billbee_default: Sandbox) -> None:
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY)
    op.execute(context=_try(1))
    assert [(e["method"], e["path"]) for e in billbee_default.journal()] == [("POST", "/api/v1/customers")]


def test_second_try_returns_the_customer_the_first_created(billbee_default: Sandbox) -> None:
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY)
    first = op.execute(context=_try(1))
    again = BillbeeCreateCustomerOperator(
        task_id="create", customer={**BODY, "Email": "RENEE.Groesser@example.de"}
    )
    assert again.execute(context=_try(2)) == first  # same Id and Number, e-mail matched without case
    assert len(billbee_default.customers()) == 1
    assert len(billbee_default.journal("/api/v1/customers", "POST")) == 1


def test_second_try_creates_when_nothing_exists_and_create_skips_the_lookup(billbee_default: Sandbox) -> None:
    created = BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context=_try(2))
    assert created["Id"] > 0
    # The second try: one scan, then the create.
    assert [e["method"] for e in billbee_default.journal("/api/v1/customers")] == ["GET", "POST"]
    again = BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="create")
    assert again.execute(context=_try(3))["Id"] != created["Id"]  # asked for: a second customer
    # The third try (if_exists=create) did not look.
    assert [e["method"] for e in billbee_default.journal("/api/v1/customers")] == ["GET", "POST", "POST"]


def test_second_try_fails_on_fail_and_on_two_matches(billbee_default: Sandbox) -> None:
    first = BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context=_try(1))
    with pytest.raises(
        AirflowFailException, match=rf"already exists in Billbee \(Id={first['Id']}\).*if_exists=fail"
    ):
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="FAIL").execute(
            context=_try(2)
        )
    # A second customer whose own DefaultMailAddress is the e-mail: now two match.
    other = {"Name": "Andere", "Type": 0, "DefaultMailAddress": {"TypeId": 1, "Value": BODY["Email"]}}
    BillbeeCreateCustomerOperator(task_id="create", customer=other).execute(context=_try(1))
    with pytest.raises(
        AirflowFailException, match="2 customers in Billbee have this customer's e-mail"
    ) as err:
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context=_try(2))
    assert BODY["Email"] not in str(err.value)  # names Ids, never the e-mail
    assert len(billbee_default.customers()) == 2


def test_second_try_without_an_email_cannot_check(billbee_default: Sandbox) -> None:
    body = {k: v for k, v in BODY.items() if k != "Email"}
    with pytest.raises(AirflowFailException, match=r"has no e-mail .* to look it up by; nothing was sent"):
        BillbeeCreateCustomerOperator(task_id="create", customer=body).execute(context=_try(2))
    assert billbee_default.journal() == []
    op = BillbeeCreateCustomerOperator(task_id="create", customer=body, if_exists="create")
    assert op.execute(context=_try(2))["Id"] > 0


def test_if_exists_is_templated_and_checked() -> None:
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="{{ params.x }}")
    op.render_template_fields(context={"params": {"x": "fail"}})  # type: ignore[arg-type]
    assert op.if_exists == "fail"
    with pytest.raises(
        AirflowFailException, match="if_exists must be one of skip, fail, create, got 'maybe'"
    ):
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="maybe").execute(context={})  # type: ignore[arg-type]


def test_import_create_task_outside_a_billbee_pool_is_warned_of(monkeypatch: pytest.MonkeyPatch) -> None:
    from billbee_provider.operators.create import BillbeeCreateCustomersOperator

    said: list[tuple[str, str]] = []

    class Log:
        def warning(self, msg: str, *args: Any) -> None:
            said.append(("warning", msg % args))

        def info(self, msg: str, *args: Any) -> None:
            said.append(("info", msg % args))

    monkeypatch.setattr(BillbeeCreateCustomersOperator, "log", property(lambda self: Log()))
    BillbeeCreateCustomersOperator(task_id="c", staging="s.jsonl")._check_pool()
    BillbeeCreateCustomersOperator(task_id="c", staging="s.jsonl", pool="default_pool")._check_pool()
    (level, reminder), (warned, warning) = said
    assert level == "info" and "pool 'billbee_api' must have exactly 1 slot per Billbee account" in reminder
    assert warned == "warning" and "runs in 'default_pool'" in warning


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"Name": "A", "Email": "a@example.de", "Email": "b@example.de"}',
            "customer: the key 'Email' appears twice in one object",
        ),
        ('{"Address": {"City": "Köln", "City": "Bonn"}}', "customer: the key 'Address.City' appears twice"),
        ('{"Name": ' * 100_000 + '"x"' + "}" * 100_000, "customer: not valid JSON: nested too deeply"),
        ('{"Type": ' + "1" * 5_000 + "}", "customer: not valid JSON: a number has too many digits"),
    ],
)
def test_refused_json_text_fails_in_one_line_without_values(text: str, message: str) -> None:
    op = BillbeeValidateCustomerOperator(task_id="v", customer=text)
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context={})  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    for value in ("a@example.de", "b@example.de", "Köln", "Bonn"):
        assert value not in str(raised.value)


def test_ten_thousand_unknown_fields_make_a_short_failure() -> None:
    body = {"Name": "X", **{f"Unknown{i}": i for i in range(10_000)}}
    op = BillbeeValidateCustomerOperator(task_id="v", customer=body)
    with pytest.raises(AirflowFailException) as raised:
        op.execute(context={})  # type: ignore[arg-type]
    text = str(raised.value)
    print(f"10,000 unknown fields: failure text of {len(text.encode())} bytes")
    assert len(text.encode()) < 4_000
    assert text.startswith("The customer body has 10000 problem(s); nothing was sent to Billbee:")
    assert text.endswith("  - ... and 9980 more problem(s)")
