"""Connection validation: every bad config is named before any request."""

from __future__ import annotations

import pytest

from billbee_provider.api.config import BillbeeConfig, is_loopback, normalize_base_url
from billbee_provider.api.errors import BillbeeConfigError

GOOD = {"host": "https://app.billbee.io", "login": "shop@example.com", "password": "pw-123456"}


def build(**overrides: object) -> BillbeeConfig:
    fields: dict[str, object] = {**GOOD, "extra": {"api_key": "key-123456"}, **overrides}
    return BillbeeConfig.from_connection(
        fields["host"],
        fields["login"],
        fields["password"],
        fields["extra"],
        conn_id="my_billbee",  # type: ignore[arg-type]
    )


def test_good_connection() -> None:
    cfg = build()
    assert cfg.base_url == "https://app.billbee.io"
    assert (cfg.api_key, cfg.user, cfg.password) == ("key-123456", "shop@example.com", "pw-123456")
    assert (cfg.endpoint_rate_limit, cfg.account_rate_limit) == (2, 10)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"extra": {}}, "API key (extra field 'api_key')"),
        ({"extra": {"api_key": "  "}}, "API key"),
        ({"login": None}, "user name / e-mail (Login)"),
        ({"password": ""}, "API password (Password)"),
    ],
)
def test_missing_field_is_named(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(BillbeeConfigError, match="my_billbee") as err:
        build(**overrides)
    assert named in str(err.value)


def test_all_missing_fields_named_at_once() -> None:
    with pytest.raises(BillbeeConfigError) as err:
        build(login="", password=None, extra=None)
    text = str(err.value)
    assert "Login" in text and "Password" in text and "api_key" in text


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, "https://app.billbee.io"),
        ("", "https://app.billbee.io"),
        ("app.billbee.io", "https://app.billbee.io"),
        ("https://api.billbee.io/api/v1/", "https://api.billbee.io"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_host_normalised(host: str | None, expected: str) -> None:
    assert normalize_base_url(host) == expected


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("http://app.billbee.io", "plain http to a non-loopback host"),
        ("http://10.0.0.5:8765", "plain http"),
        ("https://app.billbee.io/some/path", "must not contain a path"),
        ("https://app.billbee.io/?x=1", "must not contain a path or query"),
        ("ftp://app.billbee.io", "must look like"),
        ("https://user:secret-pw@app.billbee.io", "not in Host"),
    ],
)
def test_bad_host_refused(host: str, reason: str) -> None:
    with pytest.raises(BillbeeConfigError, match=reason) as err:
        normalize_base_url(host)
    assert "secret-pw" not in str(err.value)


def test_numeric_extras_and_legacy_prefix() -> None:
    cfg = build(extra={"extra__billbee__api_key": "k-123456", "read_timeout": "5", "endpoint_rate_limit": 4})
    assert (cfg.api_key, cfg.read_timeout, cfg.endpoint_rate_limit) == ("k-123456", 5.0, 4)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"read_timeout": "soon"}, "'read_timeout' must be a float"),
        ({"read_timeout": 0}, "read_timeout must be > 0"),
        ({"endpoint_rate_limit": 0}, "endpoint_rate_limit must be >= 1"),
        ({"max_retries": -1}, "max_retries must be >= 0"),
    ],
)
def test_bad_numbers_refused(extra: dict[str, object], reason: str) -> None:
    with pytest.raises(BillbeeConfigError, match=reason):
        build(extra={"api_key": "key-123456", **extra})


def test_repr_hides_secrets() -> None:
    text = repr(build())
    assert "key-123456" not in text and "pw-123456" not in text


def test_loopback() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("192.168.1.1") and not is_loopback("billbee.io")


def test_tls_verification_is_on_unless_switched_off_explicitly() -> None:
    assert build().verify_tls is True and build().ca_bundle is None
    off = build(extra={"api_key": "key-123456", "verify_tls": "false", "ca_bundle": " /etc/ca.pem "})
    assert off.verify_tls is False and off.ca_bundle == "/etc/ca.pem"
    assert build(extra={"api_key": "key-123456", "verify_tls": True}).verify_tls is True


@pytest.mark.parametrize("key", ["verify", "verify_ssl"])
def test_http_hook_tls_keys_are_refused(key: str) -> None:
    with pytest.raises(BillbeeConfigError, match="set 'verify_tls': false"):
        build(extra={"api_key": "key-123456", key: False})


def test_verify_tls_must_be_a_flag() -> None:
    with pytest.raises(BillbeeConfigError, match="'verify_tls' must be true or false"):
        build(extra={"api_key": "key-123456", "verify_tls": "maybe"})


# -- one account, however the Host is spelled -------------------------------------------

ONE_ACCOUNT_SPELLINGS = [
    "https://app.billbee.io",
    "https://APP.billbee.io:443/",
    "https://app.billbee.io./api/v1",
    "HTTPS://app.billbee.io/API/V1/",
    "app.billbee.io",
    "https://api.billbee.io/api/v1",  # Billbee's other production name (API-FACTS "Base URL")
]


@pytest.mark.parametrize("host", ONE_ACCOUNT_SPELLINGS)
def test_account_identity_is_one_for_every_spelling_of_billbee(host: str) -> None:
    from billbee_provider.api.config import account_id, account_identity

    assert account_identity(host, " Shop@Example.COM ") == "https://app.billbee.io\nshop@example.com"
    assert account_id(host, "shop@example.com") == account_id("https://app.billbee.io", "SHOP@example.com")


@pytest.mark.parametrize(
    "host",
    ["http://127.0.0.1:8765", "http://localhost:8765/api/v1", "http://LOCALHOST.:8765/", "http://[::1]:8765",
     "http://127.0.0.2:8765", "http://localhost.localdomain:8765"],
)  # fmt: skip
def test_every_loopback_spelling_is_one_host_but_the_port_counts(host: str) -> None:
    from billbee_provider.api.config import account_identity

    assert account_identity(host, "u") == "http://loopback:8765\nu"
    assert account_identity(host.replace("8765", "8766"), "u") != account_identity(host, "u")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://app.billbee.io", "https://app.billbee.io:8443"),  # a port that is not the default
        ("https://app.billbee.io", "https://billbee.example"),
        ("http://127.0.0.1:80", "https://127.0.0.1:80"),  # the scheme counts
        ("https://[2001:db8::1]", "https://[2001:db8::2]"),
    ],
)
def test_different_accounts_stay_different(one: str, other: str) -> None:
    from billbee_provider.api.config import account_id

    assert account_id(one, "u") != account_id(other, "u")
    assert account_id(one, "u") != account_id(one, "v")


def test_default_port_is_dropped_per_scheme() -> None:
    from billbee_provider.api.config import account_identity

    assert account_identity("http://127.0.0.1:80", "u") == account_identity("http://localhost", "u")
    assert account_identity("https://shop.example:443", "u") == "https://shop.example\nu"
    assert account_identity("http://127.0.0.1:443", "u") == "http://loopback:443\nu"


def test_config_account_id_from_two_connection_spellings_and_no_user_in_clear() -> None:
    one = build(host="http://127.0.0.1:8765", login="Sandbox@Example.com")
    other = build(host="http://localhost:8765/api/v1", login="sandbox@example.com ")
    assert one.base_url != other.base_url  # the requests go where each connection says ...
    assert one.account_id == other.account_id  # ... but it is one account
    assert len(one.account_id) == 32 and "example" not in one.account_id


def test_lock_path_and_throttle_windows_follow_the_account() -> None:
    from billbee_provider.api.client import BillbeeClient
    from billbee_provider.api.endpoints import CREATE_CUSTOMER
    from billbee_provider.api.throttle import RateLimiter
    from billbee_provider.imports.account import account_lock_path

    assert account_lock_path("http://127.0.0.1:8765", "Shop@x.de", "/locks") == account_lock_path(
        "http://localhost:8765/api/v1", " shop@x.de", "/locks"
    )
    # Two clients of one account sharing a limiter are paced together: with 1 request/s
    # per endpoint, the second client's first request waits for the first client's.
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(clock=lambda: clock[0], sleep=sleep)
    spelled = [
        build(host=h, extra={"api_key": "key-123456", "endpoint_rate_limit": 1})
        for h in ("http://127.0.0.1:9", "http://LOCALHOST:9/")
    ]
    clients = [BillbeeClient(cfg, limiter=limiter) for cfg in spelled]
    for client in clients:
        client._throttle(CREATE_CUSTOMER)
    assert sum(waits) > 1.0
