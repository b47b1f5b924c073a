"""The request journal, the stored raw bodies, the stats, and what must never be kept."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from tests.sandbox_client import API_KEY, PASSWORD, USER, MakeSandbox, Sandbox

UMLAUT_BODY = '{"Name": "Jürgen Müßig", "Address": {"City": "Köln"}}'.encode()


def test_journal_keeps_the_raw_body_byte_exact(api: Sandbox) -> None:
    answer = api.call("POST", "/customers", data=UMLAUT_BODY, headers={"Content-Type": "application/json"})
    assert answer.json()["Data"]["Name"] == "Jürgen Müßig"
    [entry] = api.journal()
    assert entry["body"].encode("utf-8") == UMLAUT_BODY
    assert entry["created_id"] == answer.json()["Data"]["Id"]


def test_raw_body_of_a_create_is_stored_as_received(api: Sandbox) -> None:
    created = api.call("POST", "/customers", data=UMLAUT_BODY, headers={"Content-Type": "application/json"})
    raw = api.admin("GET", f"/customers/{created.json()['Data']['Id']}/raw-body")
    assert raw.status_code == 200
    assert raw.content == UMLAUT_BODY
    assert api.admin("GET", "/customers/1/raw-body").status_code == 404


def test_journal_describes_each_request(api: Sandbox) -> None:
    created = api.create(Name="Max")
    api.call(
        "GET", f"/customers/{created['Id']}?x=1", headers={"User-Agent": "ua/1", "Accept": "application/json"}
    )
    api.call("GET", "/customers", key="wrong")
    api.call("GET", "/customers", auth=(USER, "wrong"))
    create, get, bad_key, bad_auth = api.journal()
    assert create["seq"] < get["seq"]
    assert create["content_type"] == "application/json"
    assert get["endpoint"] == "GET /api/v1/customers/{id}"
    assert (get["path"], get["query"], get["status"]) == (f"/api/v1/customers/{created['Id']}", "x=1", 200)
    assert (get["user_agent"], get["accept"], get["body"]) == ("ua/1", "application/json", None)
    assert (bad_key["api_key_ok"], bad_key["status"]) == (False, 401)
    assert (bad_auth["api_key_ok"], bad_auth["auth_ok"]) == (True, False)


def test_journal_and_logs_hold_no_secrets(
    make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    secret_key, secret_password = "key-Zq81-secret", "pw-Xy77-secret"
    api = make_sandbox(api_key=secret_key, api_password=secret_password)
    caplog.set_level(logging.INFO, logger="billbee_provider.sandbox")
    api.call(
        "POST",
        "/customers",
        key=secret_key,
        auth=(USER, secret_password),
        data=UMLAUT_BODY,
        headers={"Content-Type": "application/json"},
    )
    api.call("GET", "/customers", key=secret_key, auth=(USER, "almost-" + secret_password))
    journal = json.dumps(api.journal(), ensure_ascii=False)
    basic = base64.b64encode(f"{USER}:{secret_password}".encode()).decode()
    for secret in (secret_key, secret_password, basic):
        assert secret not in journal
        assert secret not in caplog.text
    assert "Jürgen" not in caplog.text, "log lines carry no bodies"
    assert "POST /api/v1/customers 200" in caplog.text


def test_admin_requests_are_not_journaled(api: Sandbox) -> None:
    api.admin("GET", "/health")
    api.admin("GET", "/stats")
    assert api.journal() == []


def test_journal_can_be_read_from_a_sequence_number(api: Sandbox) -> None:
    for _ in range(3):
        api.call("GET", "/customers")
    entries = api.admin("GET", "/requests?since=1&limit=1").json()
    assert [e["seq"] for e in entries] == [2]


def test_stats_count_statuses_throttling_and_creates(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    for i in range(3):
        api.call("POST", "/customers", json={"Name": f"C{i}"})
    api.call("GET", "/customers", key="wrong")
    stats = api.stats()
    assert stats["by_status"] == {"200": 2, "429": 1, "401": 1}
    assert (stats["throttled"], stats["creates"], stats["drops"], stats["customers"]) == (1, 2, 0, 2)
    assert stats["requests"] == 4


def test_defaults_match_the_documented_credentials() -> None:
    from billbee_provider.sandbox import SandboxConfig

    config = SandboxConfig()
    assert (config.api_key, config.user, config.api_password) == (API_KEY, USER, PASSWORD)
    assert API_KEY not in repr(config) and PASSWORD not in repr(config)
