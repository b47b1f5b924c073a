"""BillbeeHook: Airflow connection in, validated config and masked secrets out; one request path."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from billbee_provider.api.errors import (
    BillbeeConfigError,
    BillbeeInDoubtError,
    BillbeeNotFoundError,
    BillbeeTransientError,
)
from billbee_provider.hooks.billbee import BillbeeHook
from tests.conftest import Sandbox

KEY = "KEY-hook-5b1c9e"
PASSWORD = "PW-hook-77d3a0"


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def conn(host: str, login: str, password: str, **extra: str) -> str:
    return json.dumps(
        {"conn_type": "billbee", "host": host, "login": login, "password": password, "extra": extra}
    )


def test_env_var_connection_is_read_and_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    use_connection(monkeypatch, "billbee_t1", sandbox.conn_json(read_timeout=7))
    hook = BillbeeHook(billbee_conn_id="billbee_t1")
    cfg = hook.billbee_config
    assert cfg.base_url == sandbox.base_url and cfg.read_timeout == 7.0
    assert redact(f"key={cfg.api_key} pw={cfg.password}") == "key=*** pw=***"
    assert hook.get_conn().headers["X-Billbee-Api-Key"] == cfg.api_key
    assert hook.get_conn().headers["Accept"] == "application/json"


def test_missing_api_key_is_named_before_any_request(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    use_connection(monkeypatch, "billbee_t2", conn(sandbox.base_url, "a@b.de", PASSWORD))
    hook = BillbeeHook(billbee_conn_id="billbee_t2")
    with pytest.raises(
        BillbeeConfigError, match=r"'billbee_t2' is missing the API key \(extra field 'api_key'\)"
    ):
        hook.create_customer({"Name": "x"})
    assert sandbox.journal() == []


def test_plain_http_to_a_remote_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "billbee_t3", conn("http://app.billbee.io", "a@b.de", PASSWORD, api_key=KEY))
    ok, message = BillbeeHook(billbee_conn_id="billbee_t3").test_connection()
    assert not ok and "plain http" in message and KEY not in message and PASSWORD not in message


def test_test_connection_success(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    use_connection(monkeypatch, "billbee_t4", sandbox.conn_json())
    ok, message = BillbeeHook(billbee_conn_id="billbee_t4").test_connection()
    assert ok, message
    assert message == f"Connected to Billbee at {sandbox.base_url} as {sandbox.config.user}."
    (entry,) = sandbox.journal()
    assert (entry["method"], entry["path"], entry["query"]) == (
        "GET",
        "/api/v1/customers",
        "page=1&pageSize=1",
    )


def test_test_connection_tells_wrong_key_from_wrong_password(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    good = sandbox.config
    use_connection(
        monkeypatch, "billbee_t5", conn(sandbox.base_url, good.user, good.api_password, api_key=KEY)
    )
    use_connection(
        monkeypatch, "billbee_t6", conn(sandbox.base_url, good.user, PASSWORD, api_key=good.api_key)
    )
    ok_key, wrong_key = BillbeeHook(billbee_conn_id="billbee_t5").test_connection()
    ok_pw, wrong_password = BillbeeHook(billbee_conn_id="billbee_t6").test_connection()
    assert not ok_key and wrong_key.startswith("Billbee rejected the API key")
    assert not ok_pw and wrong_password.startswith("Billbee rejected the user name or API password")
    for text in (wrong_key, wrong_password):
        assert KEY not in text and PASSWORD not in text


def test_test_connection_api_not_activated(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    sandbox.set_faults(api_not_activated=True)
    use_connection(monkeypatch, "billbee_t7", sandbox.conn_json())
    ok, message = BillbeeHook(billbee_conn_id="billbee_t7").test_connection()
    assert not ok and message.startswith("The Billbee API is not activated")


def test_test_connection_unreachable(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    sandbox.server.stop()
    use_connection(monkeypatch, "billbee_t8", sandbox.conn_json())
    ok, message = BillbeeHook(billbee_conn_id="billbee_t8").test_connection()
    assert not ok and message.startswith("Billbee is unreachable")


# -- HttpHook's request path goes through the client --------------------------------

LIST = "/api/v1/customers"


def body(n: int) -> dict[str, Any]:
    return {"Name": f"Jürgen Müßig {n}", "Email": f"jm{n}@example.de", "Type": 0}


def sandbox_hook(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, method: str = "GET", **extra: Any
) -> BillbeeHook:
    use_connection(monkeypatch, "billbee_run", sandbox.conn_json(**extra))
    return BillbeeHook(billbee_conn_id="billbee_run", method=method)


def test_run_shares_the_typed_methods_throttle_and_answers_like_them(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    hook = sandbox_hook(monkeypatch, sandbox)
    ids = [hook.create_customer(body(n))["Id"] for n in range(3)]
    started = time.monotonic()
    answers = [hook.run(LIST), hook.run("api/v1/customers")]
    typed, paging = hook.client.list_customers()
    answers += [hook.run(LIST, data={"page": 1, "pageSize": 50}), hook.run(f"{LIST}?page=1&pageSize=50")]
    elapsed = time.monotonic() - started
    # Five requests to one endpoint at 2/s, typed and run() in one window: 0, 0, 1.05, 1.05, 2.1.
    assert elapsed >= 2.0
    assert [e["status"] for e in sandbox.journal(LIST, "GET")] == [200] * 5  # never a 429
    for response in answers:
        assert isinstance(response, requests.Response) and response.status_code == 200
        answer = response.json()
        assert answer["ErrorCode"] == 0 and answer["Data"] == typed
        assert answer["Paging"]["TotalRows"] == paging.total_rows == 3  # type: ignore[union-attr]
    assert [c["Id"] for c in hook.iter_customers()] == [c["Id"] for c in typed] == ids
    one = hook.run(f"{LIST}/{ids[1]}").json()["Data"]
    assert one == hook.get_customer(ids[1])


def test_run_post_to_customers_follows_the_create_rule(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    hook = sandbox_hook(monkeypatch, sandbox, method="POST")
    created = hook.run(LIST, data=body(1)).json()["Data"]
    assert created["Id"] and created["Name"] == "Jürgen Müßig 1"
    (post,) = sandbox.journal(LIST, "POST")
    assert json.loads(post["body"]) == body(1) and "Müßig" in post["body"]  # as the typed create sends it
    sandbox.set_faults(drop_rate=1.0)
    with pytest.raises(BillbeeInDoubtError):
        hook.run(LIST, json=body(2))
    assert len(sandbox.journal(LIST, "POST")) == 2  # the lost one was sent once, never again
    sandbox.set_faults()
    assert len(sandbox.customers()) == 2  # it was committed: a resend would have duplicated it


def test_run_retries_a_read_but_not_a_create_after_a_read_timeout(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    sandbox.set_faults(latency=1.0)
    hook = sandbox_hook(monkeypatch, sandbox, read_timeout=0.3, max_retries=1)
    with pytest.raises(BillbeeTransientError, match="gave up after 2 attempt"):
        hook.run(f"{LIST}/1")
    hook.method = "POST"
    with pytest.raises(BillbeeInDoubtError):
        hook.run(LIST, data=json.dumps(body(1)))
    assert len(sandbox.journal(f"{LIST}/1", "GET")) == 2
    assert len(sandbox.journal(LIST, "POST")) == 1


def test_run_raises_as_the_typed_method_unless_check_response_is_off(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    hook = sandbox_hook(monkeypatch, sandbox)
    with pytest.raises(BillbeeNotFoundError, match=r"GET /api/v1/customers/\{id\}: HTTP 404"):
        hook.run(f"{LIST}/999")
    response = hook.run(f"{LIST}/999", extra_options={"check_response": False})
    assert response.status_code == 404


def test_inherited_request_paths_refuse_and_nothing_is_changed_or_sent(
    monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    hook = sandbox_hook(monkeypatch, sandbox)
    session = hook.get_conn()
    before = dict(session.headers)
    assert hook.base_url == ""  # building the client sets nothing on the hook
    for call in (
        lambda: hook.run_and_check(session, requests.Request("GET", sandbox.base_url).prepare(), {}),
        lambda: hook.check_response(requests.Response()),
        lambda: hook.run_with_advanced_retry({}, endpoint=LIST),
    ):
        with pytest.raises(NotImplementedError, match="create_customer, get_customer, iter_customers"):
            call()
    with pytest.raises(ValueError, match="takes no headers"):
        hook.get_conn(headers={"X-Billbee-Api-Key": "other"})
    with pytest.raises(ValueError, match="takes no headers"):
        hook.run(LIST, headers={"Accept": "text/html"})
    with pytest.raises(ValueError, match=r"extra_options \['timeout'\] are not supported"):
        hook.run(LIST, extra_options={"timeout": 3})
    with pytest.raises(ValueError, match="must be a path"):
        hook.run("@evil.example/api/v1/customers")
    with pytest.raises(ValueError, match="needs an endpoint"):
        hook.run()
    assert dict(hook.get_conn().headers) == before and hook.get_conn() is session
    assert hook.url_from_endpoint("api/v1/customers") == f"{sandbox.base_url}/api/v1/customers"
    assert sandbox.journal() == []
