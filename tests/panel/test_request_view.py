"""The panel's request view and test send, without Airflow: against the sandbox over HTTP."""

from __future__ import annotations

import json

import pytest

from billbee_provider.api.client import BillbeeClient
from billbee_provider.ui.request_view import (
    TRUNCATED_PREFIX,
    customer_request,
    describe_answer,
    send_test_request,
)
from tests.sandbox_client import UNTHROTTLED, Sandbox

BODY = {"Name": "Jürgen Weiß", "Email": "juergen@example.de", "Type": 0, "Address": {"City": "Köln"}}


def test_a_json_text_body_is_shown_indented_with_real_umlauts_and_masked_headers() -> None:
    view = customer_request("https://app.billbee.io", json.dumps(BODY))
    assert view.valid
    assert view.method == "POST"
    assert view.url == "https://app.billbee.io/api/v1/customers"
    assert view.body_text == json.dumps(BODY, indent=2, ensure_ascii=False)
    assert "Jürgen Weiß" in view.body_text and "\\u00fc" not in view.body_text
    headers = dict(view.headers)
    assert headers["X-Billbee-Api-Key"] == "***"
    assert headers["Authorization"] == "Basic ***"


def test_a_dict_body_reads_like_its_json_text() -> None:
    assert customer_request(None, BODY).body_text == customer_request(None, json.dumps(BODY)).body_text


def test_without_a_usable_connection_the_url_says_so() -> None:
    assert customer_request(None, BODY).url == "<the connection's Host>/api/v1/customers"


def test_schema_problems_are_listed_by_path() -> None:
    view = customer_request(None, {**BODY, "Type": "Firma", "Address": {"Zip": 12345}})
    assert not view.valid
    paths = [problem.split(":", 1)[0] for problem in view.problems]
    assert "Type" in paths and "Address.Zip" in paths
    assert view.as_dict()["problem_count"] == len(view.problems)


@pytest.mark.parametrize(
    ("rendered", "fragment"),
    [
        ('{"Name": "a", "Name": "b"}', "Name"),
        ("{not json", "not JSON"),
        (TRUNCATED_PREFIX + ' {"Name": ', "max_templated_field_length"),
        (None, "no customer body"),
    ],
)
def test_a_body_that_cannot_be_read_is_one_problem_and_cannot_be_sent(
    rendered: object, fragment: str
) -> None:
    view = customer_request(None, rendered)
    assert not view.valid and view.body is None
    assert len(view.problems) == 1 and fragment in view.problems[0]


def test_a_test_send_creates_the_customer_once_and_reports_id_status_and_time(sandbox: Sandbox) -> None:
    with BillbeeClient(sandbox.client_config()) as client:
        answer = send_test_request(client, BODY)
    assert answer.outcome == "created" and answer.status == 200
    assert answer.error_name == "NoError"
    assert answer.billbee_id == sandbox.customers()[0]["Id"]
    assert answer.envelope["Data"]["Name"] == "Jürgen Weiß"
    assert answer.elapsed_ms > 0
    assert len(sandbox.journal(path="/api/v1/customers", method="POST")) == 1


def test_billbees_refusal_is_described_with_its_field_problems(sandbox: Sandbox) -> None:
    with BillbeeClient(sandbox.client_config()) as client:
        answer = send_test_request(client, {"Type": "not a number"})
    assert answer.outcome == "refused" and answer.status == 400
    assert answer.billbee_id is None
    assert answer.problems and any("Type" in p for p in answer.problems)
    assert sandbox.customers() == []


def test_a_wrong_api_key_is_refused_with_its_status_and_no_secret_in_the_message(make_sandbox) -> None:
    box = make_sandbox(**UNTHROTTLED)
    config = box.client_config(api_key="wrong-key-1234567890")
    with BillbeeClient(config) as client:
        answer = send_test_request(client, BODY)
    assert answer.outcome == "refused" and answer.status == 401
    assert "wrong-key-1234567890" not in json.dumps(answer.as_dict())


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"ErrorCode": 11, "ErrorMessage": "bad", "Data": None}, "InvalidData"),
        ({"ErrorCode": 1, "ErrorMessage": "API not activated", "Data": None}, "ApiNotActivated"),
        ({"ErrorCode": 99, "Data": None}, None),
    ],
)
def test_an_error_code_in_a_200_answer_is_named(payload: dict[str, object], name: str | None) -> None:
    answer = describe_answer(200, payload, 12.5)
    assert answer.outcome == "refused"
    assert answer.error_code == payload["ErrorCode"] and answer.error_name == name
