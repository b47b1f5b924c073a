"""The customer operators, executed directly against the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.customers.outcome import billbee_response, failed_response, field_paths, redacted
from billbee_provider.operators.customers import (
    RESPONSE_XCOM_KEY,
    BillbeeCreateCustomerOperator,
    BillbeeValidateCustomerOperator,
    as_bool,
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


# -- the rendered body: JSON text indented, umlauts as they are -------------------------

#: Values whose text a re-write could change: umlauts, an integer beyond int64, floats.
ODD_VALUES: dict[str, Any] = {
    "Name": "Jürgen Weiß",
    "Big": 123456789012345678901234567890,
    "One": 1.0,
    "Small": 1e-7,
    "Nested": {"City": "Köln", "List": [1, "ä", None, True]},
}


def test_json_text_is_rendered_indented_with_real_umlauts() -> None:
    op = BillbeeValidateCustomerOperator(task_id="v", customer="{{ params.customer | tojson }}")
    op.render_template_fields(context={"params": {"customer": ODD_VALUES}})  # type: ignore[arg-type]
    assert isinstance(op.customer, str)
    # tojson sorts the keys; the rendering keeps the order it gets
    assert op.customer == json.dumps(ODD_VALUES, indent=2, ensure_ascii=False, sort_keys=True)
    assert '"Name": "Jürgen Weiß"' in op.customer and "\\u" not in op.customer
    assert op.customer.startswith('{\n  "Big": 123456789012345678901234567890,\n')
    assert '"One": 1.0,' in op.customer  # a float stays a float
    parsed = json.loads(op.customer)
    assert parsed == ODD_VALUES and isinstance(parsed["One"], float) and isinstance(parsed["Big"], int)
    again = op.customer
    op.render_template_fields(context={"params": {}})  # type: ignore[arg-type]
    assert op.customer == again  # indenting is idempotent


def test_a_valid_body_from_json_text_sends_the_same_values(billbee_default: Sandbox) -> None:
    body = {**BODY, "Name": "Jürgen Weiß", "PriceGroupId": 9223372036854775807}
    op = BillbeeCreateCustomerOperator(task_id="create", customer="{{ params.c | tojson }}")
    op.render_template_fields(context={"params": {"c": body}})  # type: ignore[arg-type]
    assert "\n  " in op.customer and "Jürgen Weiß" in op.customer
    op.execute(context={})  # type: ignore[arg-type]
    (post,) = billbee_default.journal("/api/v1/customers", "POST")
    assert json.loads(post["body"]) == body


def test_a_dict_template_stays_a_dict() -> None:
    op = BillbeeValidateCustomerOperator(task_id="v", customer={"Name": "{{ params.name }}", "Type": 1})
    op.render_template_fields(context={"params": {"name": "Jörg"}})  # type: ignore[arg-type]
    assert op.customer == {"Name": "Jörg", "Type": 1}


@pytest.mark.parametrize(
    "text",
    [
        "{oops",  # not JSON: execute reports it
        '{"Email": "a@example.de", "Email": "b@example.de"}',  # a key twice
        '{"Type": 1e400}',  # a float Python reads as inf: re-written it would not be JSON
        '{"Name": "\\ud800"}',  # a lone surrogate: UTF-8 cannot store it unescaped
        '"just a string"',
        "42",
        "",
    ],
)
def test_text_that_is_no_json_object_is_left_as_rendered(text: str) -> None:
    op = BillbeeValidateCustomerOperator(task_id="v", customer="{{ params.text }}")
    op.render_template_fields(context={"params": {"text": text}})  # type: ignore[arg-type]
    assert op.customer == text


def test_not_json_still_fails_execute_as_before() -> None:
    op = BillbeeValidateCustomerOperator(task_id="v", customer="{{ params.text }}")
    op.render_template_fields(context={"params": {"text": "{oops"}})  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="customer: not valid JSON: Expecting property name"):
        op.execute(context={})  # type: ignore[arg-type]


def test_a_json_template_file_is_rendered_indented(tmp_path: Any) -> None:
    from airflow.sdk import DAG

    (tmp_path / "customer.json").write_text(
        '{"Name": "{{ params.name }}", "Type": 1, "Address": {"City": "Düsseldorf"}}', encoding="utf-8"
    )
    with DAG("d", schedule=None, template_searchpath=[str(tmp_path)]):
        op = BillbeeValidateCustomerOperator(task_id="v", customer="customer.json")
    op.render_template_fields(context={"params": {"name": "Jörg"}})  # type: ignore[arg-type]
    assert op.customer == (
        '{\n  "Name": "Jörg",\n  "Type": 1,\n  "Address": {\n    "City": "Düsseldorf"\n  }\n}'
    )
    assert op.execute(context={}) == {"valid": True, "fields": 3}  # type: ignore[arg-type]


# -- Billbee's answer as the XCom billbee_response, in every outcome ---------------------


class _RecordingTI(_TI):
    """A task instance that keeps what is pushed."""

    def __init__(self, try_number: int = 1) -> None:
        super().__init__(try_number)
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _response(ti: _RecordingTI) -> dict[str, Any]:
    response: dict[str, Any] = ti.xcoms[RESPONSE_XCOM_KEY]
    assert set(response) == {
        "outcome", "status", "Id", "Number", "elapsed_ms", "error_code", "error_name", "message", "problems"
    }  # fmt: skip
    assert isinstance(response["elapsed_ms"], float) and response["elapsed_ms"] >= 0
    text = json.dumps(response)  # JSON as it is stored, and without any customer value
    for value in ("Renée", "Größer", "renee.groesser@example.de", "München", "DE123456789"):
        assert value not in text and value.encode("unicode_escape").decode() not in text
    return response


def test_created_is_pushed_with_status_id_and_number(billbee_default: Sandbox) -> None:
    ti = _RecordingTI()
    result = BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response == {
        "outcome": "created",
        "status": 200,
        "Id": result["Id"],
        "Number": result["Number"],
        "elapsed_ms": response["elapsed_ms"],
        "error_code": None,
        "error_name": None,
        "message": None,
        "problems": [],
    }
    assert response["elapsed_ms"] > 0 and isinstance(result["Number"], int)
    assert set(result) == {"Id", "Number"}  # the return value is unchanged


def test_an_invalid_body_pushes_its_problems_and_sends_nothing(billbee_default: Sandbox) -> None:
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException, match="3 problem"):
        BillbeeCreateCustomerOperator(task_id="create", customer=INVALID).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "invalid" and response["status"] is None and response["Id"] is None
    assert response["problems"] == [
        "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code",
        "Emial: unknown field (not in the Billbee customer model); did you mean 'Email'?",
        "Type: 7 is not one of the allowed values 0 (end customer), 1 (business customer)",
    ]
    assert response["message"].startswith("The customer body has 3 problem(s); nothing was sent")
    assert billbee_default.journal() == []


def test_text_that_is_not_json_pushes_invalid() -> None:
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException):
        BillbeeCreateCustomerOperator(task_id="create", customer="{oops").execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "invalid"
    assert response["problems"] == [
        "customer: not valid JSON: Expecting property name enclosed in double quotes at line 1, column 2"
    ]


def test_many_problems_are_capped_like_the_failure_text() -> None:
    ti = _RecordingTI()
    body = {"Name": "X", **{f"Unknown{i}": i for i in range(100)}}
    with pytest.raises(AirflowFailException):
        BillbeeCreateCustomerOperator(task_id="create", customer=body).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    problems = _response(ti)["problems"]
    assert len(problems) == 21 and problems[-1] == "... and 80 more problem(s)"


def test_billbee_refusing_the_body_pushes_its_field_errors_before_failing(billbee_default: Sandbox) -> None:
    # 1.0 is an integer to JSON Schema, not to Billbee's binder: the schema lets it through
    # and Billbee refuses it with 400 ModelState.
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException, match=r"model\.Type") as raised:
        BillbeeCreateCustomerOperator(task_id="create", customer={**BODY, "Type": 1.0}).execute(
            context={"ti": ti}  # type: ignore[typeddict-item]
        )
    response = _response(ti)
    assert response["outcome"] == "failed" and response["status"] == 400 and response["Id"] is None
    assert response["error_code"] is None and response["error_name"] is None
    assert response["message"] == str(raised.value)
    (problem,) = response["problems"]
    assert problem.startswith("model.Type: Input string '1.0' is not a valid integer.")
    assert response["elapsed_ms"] > 0
    assert len(billbee_default.journal("/api/v1/customers", "POST")) == 1
    assert billbee_default.customers() == []


def test_an_error_code_is_pushed_with_its_name(billbee_default: Sandbox) -> None:
    billbee_default.set_faults(api_not_activated=True)
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException) as raised:
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "failed" and response["status"] == 403
    assert (response["error_code"], response["error_name"]) == (1, "ApiNotActivated")
    assert response["message"] == str(raised.value) and response["problems"] == []


def test_a_transient_failure_is_pushed_and_left_to_the_task_retries(
    billbee_default: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billbee_provider.api.errors import BillbeeTransientError

    monkeypatch.setenv("AIRFLOW_CONN_BILLBEE_DEFAULT", billbee_default.conn_json(max_retries=0))
    billbee_default.set_faults(error_rate=1.0)  # ErrorCode 8 InternalError, retried by the client
    ti = _RecordingTI()
    with pytest.raises(BillbeeTransientError) as raised:  # not an AirflowFailException
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "failed" and response["status"] == 200
    # The client's "gave up" error keeps the status, not the ErrorCode: it is named in the text.
    assert response["error_code"] is None and "ErrorCode 8 InternalError" in response["message"]
    assert response["message"] == str(raised.value) and response["problems"] == []


def test_refused_credentials_are_pushed_before_failing(
    billbee_default: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(billbee_default.conn_json())
    conn["password"] = "not-the-api-password"
    monkeypatch.setenv("AIRFLOW_CONN_BILLBEE_DEFAULT", json.dumps(conn))
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException) as raised:
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "failed" and response["status"] == 401
    assert response["message"] == str(raised.value) and response["problems"] == []
    assert "not-the-api-password" not in json.dumps(response)


def test_an_in_doubt_create_is_pushed_without_a_status(billbee_default: Sandbox) -> None:
    billbee_default.set_faults(drop_rate=1.0)
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException, match="Check in Billbee whether the customer exists"):
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti})  # type: ignore[typeddict-item]
    response = _response(ti)
    assert response["outcome"] == "failed" and response["status"] is None
    assert "Check in Billbee whether the customer exists" in response["message"]


def test_dry_run_is_pushed_and_sends_nothing(billbee_default: Sandbox) -> None:
    ti = _RecordingTI()
    op = BillbeeCreateCustomerOperator(task_id="create", customer=BODY, dry_run=True)
    assert op.execute(context={"ti": ti}) == {"dry_run": True, "Id": None, "Number": None}  # type: ignore[typeddict-item]
    assert _response(ti) == {
        "outcome": "dry_run",
        "status": None,
        "Id": None,
        "Number": None,
        "elapsed_ms": 0.0,
        "error_code": None,
        "error_name": None,
        "message": None,
        "problems": [],
    }
    assert billbee_default.journal() == []


def test_a_bad_setting_is_pushed_as_invalid() -> None:
    ti = _RecordingTI()
    with pytest.raises(AirflowFailException):
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="maybe").execute(
            context={"ti": ti}  # type: ignore[typeddict-item]
        )
    response = _response(ti)
    assert response["outcome"] == "invalid"
    assert response["problems"] == ["if_exists must be one of skip, fail, create, got 'maybe'"]


def test_the_existing_customer_of_a_later_try_is_pushed(billbee_default: Sandbox) -> None:
    first = BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context=_try(1))
    ti = _RecordingTI(try_number=2)
    assert BillbeeCreateCustomerOperator(task_id="create", customer=BODY).execute(context={"ti": ti}) == first  # type: ignore[typeddict-item]
    response = _response(ti)
    assert (response["outcome"], response["Id"], response["Number"]) == (
        "existing",
        first["Id"],
        first["Number"],
    )
    assert response["status"] is None and response["elapsed_ms"] > 0
    ti = _RecordingTI(try_number=3)
    with pytest.raises(AirflowFailException, match="if_exists=fail"):
        BillbeeCreateCustomerOperator(task_id="create", customer=BODY, if_exists="fail").execute(
            context={"ti": ti}  # type: ignore[typeddict-item]
        )
    response = _response(ti)
    assert response["outcome"] == "failed" and f"Id={first['Id']}" in response["message"]


def test_a_failing_push_does_not_hide_the_outcome(billbee_default: Sandbox) -> None:
    class BrokenTI(_TI):
        def xcom_push(self, key: str, value: Any) -> None:
            raise RuntimeError("the XCom backend is down")

    op = BillbeeCreateCustomerOperator(task_id="create", customer=INVALID)
    with pytest.raises(AirflowFailException, match="3 problem"):
        op.execute(context={"ti": BrokenTI(1)})  # type: ignore[typeddict-item]


def test_values_quoted_by_billbee_are_replaced() -> None:
    from billbee_provider.api.errors import BillbeeInvalidDataError

    body = {"Email": "anna@example.de", "Name": "Annabel", "Address": {"City": "Köln", "Zip": "51"}}
    exc = BillbeeInvalidDataError(
        "ErrorCode 13 CreateUser_InvalidEmail: 'anna@example.de' of Annabel in Köln, 51",
        status=200,
        error_code=13,
        field_errors={"model.Email": ["'anna@example.de' is taken"]},
    )
    response = failed_response(exc, str(exc), 12.5, body)
    assert (
        response["message"] == "ErrorCode 13 CreateUser_InvalidEmail: '<value>' of <value> in <value>, 51"
    )  # 51: too short
    assert response["problems"] == ["model.Email: '<value>' is taken"]
    assert response["error_name"] == "CreateUser_InvalidEmail" and response["elapsed_ms"] == 12.5
    assert redacted("Anna and Annabel", {"a": "Anna", "b": "Annabel"}) == "<value> and <value>"
    assert billbee_response("failed", error_code=99)["error_name"] is None
