"""Bad Billbee connections: a clear BillbeeConfigError before any request, never a late crash.

Properties over any Host, number extras and credentials: either the connection is
refused with a message naming the connection (and never a secret), or every value is one
``requests`` can send. Then the same cases through :class:`BillbeeHook` and an
``AIRFLOW_CONN_*`` variable, against a sandbox whose request journal stays empty.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from billbee_provider.api.config import (
    DEFAULT_HOST,
    NUMERIC_EXTRAS,
    BillbeeConfig,
    is_loopback,
    normalize_base_url,
)
from billbee_provider.api.errors import BillbeeConfigError
from billbee_provider.hooks.billbee import BillbeeHook
from tests.conftest import Sandbox

from .strategies import PROPERTY_TIMEOUT, json_values, texts

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

CONN_ID = "billbee_fuzz"
KEY = "KEY-fuzz-4c7e1a"
PASSWORD = "PW-fuzz-9d2b6f"
USER = "shop@example.com"

hosts = st.one_of(
    texts(max_size=30),
    st.from_regex(r"(https?://|ftp://|//)?[a-zA-Z0-9.:\[\]@%/?#\\ _-]{0,30}", fullmatch=True),
    st.sampled_from(["", " ", "localhost", "127.0.0.1:8765", "[::1]:1", "https://[::1", "http://0x7f.1"]),
)


def build(**fields: Any) -> BillbeeConfig:
    """``BillbeeConfig.from_connection`` with good defaults for the fields not given."""
    given_fields: dict[str, Any] = {
        "host": "https://app.billbee.io",
        "login": USER,
        "password": PASSWORD,
        "extra": {"api_key": KEY},
        **fields,
    }
    return BillbeeConfig.from_connection(**given_fields, conn_id=CONN_ID)


def assert_refusal(error: BillbeeConfigError, *secrets: str) -> None:
    """The message names the connection and shows no secret."""
    message = str(error)
    assert f"'{CONN_ID}'" in message, message
    for secret in (KEY, PASSWORD, *secrets):
        assert secret not in message, message


@given(host=hosts)
def test_any_host_gives_a_sendable_base_url_or_a_config_error(host: str) -> None:
    try:
        url = normalize_base_url(host, conn_id=CONN_ID)
    except BillbeeConfigError as error:
        assert_refusal(error)
        return
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname
    assert (parts.path, parts.query, parts.fragment, parts.username) == ("", "", "", None)
    assert parts.port is None or 0 < parts.port < 65536
    assert parts.scheme == "https" or is_loopback(parts.hostname)
    assert normalize_base_url(url) == url
    requests.Request("GET", f"{url}/api/v1/customers").prepare()  # no InvalidURL


@given(
    key=st.sampled_from(sorted(NUMERIC_EXTRAS)), value=st.one_of(json_values(max_leaves=3), texts(max_size=8))
)
def test_any_numeric_extra_is_a_number_in_range_or_a_config_error(key: str, value: Any) -> None:
    try:
        config = build(extra={"api_key": KEY, key: value})
    except BillbeeConfigError as error:
        assert_refusal(error)
        return
    number = getattr(config, key)
    assert type(number) is NUMERIC_EXTRAS[key] and math.isfinite(number)
    assert number > 0 if "timeout" in key else number >= (0 if key == "max_retries" else 1)


@given(login=texts(max_size=10), password=texts(max_size=10), key=texts(max_size=10))
def test_any_credentials_can_be_sent_or_are_a_config_error(login: str, password: str, key: str) -> None:
    secret_password, secret_key = f"PW{password}", f"KEY{key}"
    try:
        config = build(login=login, password=secret_password, extra={"api_key": secret_key})
    except BillbeeConfigError as error:
        assert_refusal(error, secret_password, secret_key)
        return
    prepared = requests.Request(
        "GET", f"{config.base_url}/api/v1/customers", headers={"X-Billbee-Api-Key": config.api_key}
    ).prepare()
    prepared.prepare_auth((config.user, config.password))
    for value in prepared.headers.values():
        value.encode("latin-1")  # what http.client sends
    basic = prepared.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(basic).decode("latin-1") == f"{config.user}:{config.password}"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"host": 8765}, "Host must be text"),
        ({"host": "https://app.billbee.io:99999"}, "must look like https://app.billbee.io"),
        ({"host": "https://app billbee.io"}, "must look like https://app.billbee.io"),
        ({"host": "https://[::1"}, "must look like https://app.billbee.io"),
        ({"extra": ["api_key", KEY]}, "Extra must be a JSON object"),
        ({"extra": {"api_key": {"value": KEY}}}, "extra 'api_key' must be text"),
        ({"extra": {"api_key": f"{KEY}\r\nX-Injected: 1"}}, "only visible ASCII characters"),
        ({"login": "shop:owner@example.com"}, "Login must not contain ':'"),
        ({"password": f"{PASSWORD}€"}, "Password has a character HTTP Basic auth cannot carry"),
        ({"extra": {"api_key": KEY, "read_timeout": True}}, "'read_timeout' must be a float, got True"),
        ({"extra": {"api_key": KEY, "read_timeout": "NaN"}}, "'read_timeout' must be a float"),
        ({"extra": {"api_key": KEY, "connect_timeout": "inf"}}, "'connect_timeout' must be a float"),
        ({"extra": {"api_key": KEY, "max_retries": 2.5}}, "'max_retries' must be a int, got 2.5"),
        ({"extra": {"api_key": KEY, "max_retries": "9" * 5000}}, "'max_retries' must be a int, got '999"),
        ({"extra": {"api_key": KEY, "endpoint_rate_limit": [2]}}, "'endpoint_rate_limit' must be a int"),
    ],
)
def test_wrong_types_and_unsendable_values_are_refused(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(BillbeeConfigError) as raised:
        build(**fields)
    assert reason in str(raised.value)
    assert len(str(raised.value)) < 400
    assert_refusal(raised.value)


# --- through the hook and an AIRFLOW_CONN_ variable: refused before any request -------------


def conn_json(sandbox: Sandbox, **changes: Any) -> str:
    """The sandbox as a connection, with ``changes`` to its fields or extras."""
    extra = {"api_key": KEY, **changes.pop("extra", {})}
    fields = {
        "conn_type": "billbee",
        "host": sandbox.base_url,
        "login": USER,
        "password": PASSWORD,
        "extra": extra,
    }
    return json.dumps({**fields, **changes})


BAD_CONNECTIONS: dict[str, tuple[Callable[[Sandbox], str], str]] = {
    "host with a path": (
        lambda s: conn_json(s, host=f"{s.base_url}/api/v1/customers"),
        "must not contain a path",
    ),
    "http to a remote host": (lambda s: conn_json(s, host="http://billbee.example.com"), "plain http"),
    "bad port": (lambda s: conn_json(s, host="http://127.0.0.1:99999"), "must look like"),
    "missing api_key": (lambda s: conn_json(s, extra={"api_key": None}), "missing the API key"),
    "blank api_key": (lambda s: conn_json(s, extra={"api_key": "  "}), "missing the API key"),
    "missing password": (lambda s: conn_json(s, password=None), "missing the API password"),
    "api_key with a line break": (
        lambda s: conn_json(s, extra={"api_key": f"{KEY}\r\nX-Injected: 1"}),
        "visible ASCII",
    ),
    "timeout as text": (
        lambda s: conn_json(s, extra={"read_timeout": "soon"}),
        "'read_timeout' must be a float",
    ),
    "timeout as true": (
        lambda s: conn_json(s, extra={"read_timeout": True}),
        "'read_timeout' must be a float",
    ),
    "retries as 2.5": (lambda s: conn_json(s, extra={"max_retries": 2.5}), "'max_retries' must be a int"),
    "rate limit 0": (
        lambda s: conn_json(s, extra={"endpoint_rate_limit": 0}),
        "endpoint_rate_limit must be >= 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONNECTIONS))
def test_bad_connection_is_refused_before_any_request(
    case: str, monkeypatch: pytest.MonkeyPatch, make_sandbox: Callable[..., Sandbox]
) -> None:
    sandbox = make_sandbox(api_key=KEY, api_password=PASSWORD, user=USER)
    make_conn, reason = BAD_CONNECTIONS[case]
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", make_conn(sandbox))
    with pytest.raises(BillbeeConfigError) as raised:
        BillbeeHook(billbee_conn_id=CONN_ID).create_customer({"Name": "Max"})
    assert reason in str(raised.value)
    assert_refusal(raised.value)
    ok, message = BillbeeHook(billbee_conn_id=CONN_ID).test_connection()
    assert not ok and reason in message and KEY not in message and PASSWORD not in message
    assert sandbox.journal() == []


def test_empty_host_means_billbee_itself_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for host in (None, "", "   "):
        value = {
            "conn_type": "billbee",
            "host": host,
            "login": USER,
            "password": PASSWORD,
            "extra": {"api_key": KEY},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(value))
        assert BillbeeHook(billbee_conn_id=CONN_ID).billbee_config.base_url == DEFAULT_HOST


def test_extra_that_is_a_json_list_is_refused_through_the_hook(
    monkeypatch: pytest.MonkeyPatch, make_sandbox: Callable[..., Sandbox]
) -> None:
    sandbox = make_sandbox()
    value = {
        "conn_type": "billbee",
        "host": sandbox.base_url,
        "login": USER,
        "password": PASSWORD,
        "extra": [KEY],
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(value))
    with pytest.raises(BillbeeConfigError, match="Extra must be a JSON object"):
        BillbeeHook(billbee_conn_id=CONN_ID).create_customer({"Name": "Max"})
    assert sandbox.journal() == []


def test_port_field_of_the_connection_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"billbee://shop%40example.com:{PASSWORD}@127.0.0.1:8765/?api_key={KEY}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", uri)
    assert BillbeeHook(billbee_conn_id=CONN_ID).billbee_config.base_url.endswith(":8765")
