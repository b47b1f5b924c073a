"""BillbeeHook: Airflow connection in, validated config and masked secrets out."""

from __future__ import annotations

import json

import pytest

from billbee_provider.api.errors import BillbeeConfigError
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
