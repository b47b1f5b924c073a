"""Billbee's two credentials on every /api/v1 request; routing errors; the 403 switch."""

from __future__ import annotations

from billbee_provider.sandbox.auth import DENIED_MESSAGE, MISSING_KEY_MESSAGE
from tests.sandbox_client import PASSWORD, USER, Sandbox


def test_right_credentials_are_let_in(api: Sandbox) -> None:
    answer = api.call("GET", "/customers")
    assert answer.status_code == 200
    assert answer.json()["ErrorCode"] == 0


def test_missing_api_key_is_refused(api: Sandbox) -> None:
    answer = api.call("GET", "/customers", key=None)
    assert answer.status_code == 401
    assert answer.json() == {"Message": MISSING_KEY_MESSAGE}
    assert "WWW-Authenticate" not in answer.headers


def test_wrong_api_key_is_refused(api: Sandbox) -> None:
    answer = api.call("GET", "/customers", key="not-the-key")
    assert answer.status_code == 401
    assert answer.json() == {"Message": MISSING_KEY_MESSAGE}


def test_wrong_password_is_refused_with_a_basic_challenge(api: Sandbox) -> None:
    answer = api.call("GET", "/customers", auth=(USER, "wrong-password"))
    assert answer.status_code == 401
    assert answer.json() == {"Message": DENIED_MESSAGE}
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Billbee"'


def test_missing_basic_auth_is_refused(api: Sandbox) -> None:
    answer = api.call("GET", "/customers", auth=None)
    assert answer.status_code == 401
    assert answer.json() == {"Message": DENIED_MESSAGE}


def test_wrong_user_is_refused(api: Sandbox) -> None:
    assert api.call("GET", "/customers", auth=("someone@example.com", PASSWORD)).status_code == 401


def test_user_name_is_compared_case_insensitively(api: Sandbox) -> None:
    assert api.call("GET", "/customers", auth=(USER.upper(), PASSWORD)).status_code == 200


def test_password_is_compared_case_sensitively(api: Sandbox) -> None:
    assert api.call("GET", "/customers", auth=(USER, PASSWORD.upper())).status_code == 401


def test_refused_requests_create_nothing(api: Sandbox) -> None:
    answer = api.call("POST", "/customers", auth=(USER, "wrong"), json={"Name": "Max"})
    assert answer.status_code == 401
    assert api.stats()["customers"] == 0


def test_api_not_activated_answers_403_with_error_code_1(api: Sandbox) -> None:
    api.set_faults(api_not_activated=True)
    answer = api.call("POST", "/customers", json={"Name": "Max"})
    assert answer.status_code == 403
    body = answer.json()
    assert body["ErrorCode"] == 1
    assert body["ErrorDescription"] == "ApiNotActivated"
    assert body["ErrorMessage"]
    assert api.stats()["customers"] == 0


def test_admin_endpoints_need_no_credentials(api: Sandbox) -> None:
    answer = api.admin("GET", "/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_unknown_api_path_is_404(api: Sandbox) -> None:
    answer = api.call("GET", "/orders-of-the-moon")
    assert answer.status_code == 404
    assert "No HTTP resource was found" in answer.json()["Message"]


def test_unsupported_method_is_405(api: Sandbox) -> None:
    answer = api.call("DELETE", "/customers")
    assert answer.status_code == 405
    assert "DELETE" in answer.json()["Message"]
