"""BillbeeClient against the sandbox over real HTTP on loopback."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.errors import (
    BillbeeAuthError,
    BillbeeInDoubtError,
    BillbeeInvalidDataError,
    BillbeeNotFoundError,
    BillbeeTransientError,
)
from billbee_provider.api.retry import parse_retry_after
from tests.conftest import Sandbox

CREATE = "/api/v1/customers"


def customer(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "Name": f"Jürgen Müßig {n}",
        "Email": f"juergen.muessig{n}@example.de",
        "Type": 0,
        "Address": {"City": "Köln", "Street": "Straße des 17. Juni", "CountryCode": "DE", "AddressType": 1},
        **extra,
    }


def fast_client(sandbox: Sandbox, **overrides: Any) -> BillbeeClient:
    """A client whose backoff waits are short (jitter factor 0.05)."""
    return BillbeeClient(sandbox.client_config(**overrides), rng=lambda: 0.05)


def test_create_sends_exact_body_and_headers_once(sandbox: Sandbox) -> None:
    with fast_client(sandbox) as client:
        created = client.create_customer(customer())
    assert created["Id"] > 2**31  # int64 ids
    posts = sandbox.journal(CREATE, "POST")
    assert len(posts) == 1
    entry = posts[0]
    assert json.loads(entry["body"]) == customer()
    assert "Jürgen Müßig 1" in entry["body"]  # raw UTF-8, no \u escapes
    assert entry["api_key_ok"] and entry["auth_ok"]
    assert entry["user_agent"].startswith("airflow-provider-billbee/")
    assert entry["accept"] == "application/json"
    assert entry["content_type"].startswith("application/json")
    stored = sandbox.customers()
    assert [c["Name"] for c in stored] == ["Jürgen Müßig 1"]


def test_get_iterate_search_and_address(sandbox: Sandbox) -> None:
    with fast_client(sandbox, endpoint_rate_limit=50, account_rate_limit=50) as client:
        sandbox.set_faults()  # none
        ids = [client.create_customer(customer(n))["Id"] for n in range(1, 4)]
        assert client.get_customer(ids[1])["Email"] == "juergen.muessig2@example.de"
        assert [c["Id"] for c in client.iter_customers(page_size=2)] == ids
        hits = client.search_customers("Müßig 3")
        assert [h["Id"] for h in hits] == [ids[2]]
        address = client.add_customer_address(
            ids[0], {"AddressType": 2, "City": "Bonn", "CountryCode": "DE", "Street": "Am Hof"}
        )
        assert address["CustomerId"] == ids[0] and address["City"] == "Bonn"
        with pytest.raises(BillbeeNotFoundError):
            client.get_customer(999)


@pytest.mark.slow
def test_paces_creates_to_two_per_second_without_429(sandbox: Sandbox) -> None:
    with fast_client(sandbox) as client:
        started = time.monotonic()
        for n in range(5):
            client.create_customer(customer(n))
        elapsed = time.monotonic() - started
    assert elapsed >= 2.0  # 5 creates at 2/s: starts at 0, 0, ~1.05, ~1.05, ~2.1
    assert [e["status"] for e in sandbox.journal(CREATE, "POST")] == [200] * 5
    assert client.stats.throttled == 0


@pytest.mark.slow
@pytest.mark.parametrize("retry_after", [True, False])
def test_429_is_waited_out_and_nothing_duplicated(
    make_sandbox: Callable[..., Sandbox], retry_after: bool
) -> None:
    sandbox = make_sandbox(faults=_faults(retry_after=retry_after))
    # A client that believes in a higher limit than the server: it will meet 429s.
    with fast_client(sandbox, endpoint_rate_limit=20, account_rate_limit=20, max_retries=8) as client:
        ids = [client.create_customer(customer(n))["Id"] for n in range(6)]
    assert len(set(ids)) == 6
    assert client.stats.throttled >= 1
    statuses = [e["status"] for e in sandbox.journal(CREATE, "POST")]
    assert statuses.count(200) == 6 and set(statuses) == {200, 429}
    assert len(sandbox.customers()) == 6


@pytest.mark.slow
def test_503_is_retried_for_creates(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(faults=_faults(fail_rate=0.5))
    with fast_client(sandbox, max_retries=10, endpoint_rate_limit=50, account_rate_limit=50) as client:
        for n in range(6):
            client.create_customer(customer(n))
    assert 503 in [e["status"] for e in sandbox.journal(CREATE, "POST")]
    sandbox.set_faults(fail_rate=0.0)
    assert sorted(c["Email"] for c in sandbox.customers()) == sorted(customer(n)["Email"] for n in range(6))


def test_dropped_answer_makes_a_create_in_doubt_and_it_is_not_resent(sandbox: Sandbox) -> None:
    sandbox.set_faults(drop_rate=1.0)
    with fast_client(sandbox) as client, pytest.raises(BillbeeInDoubtError) as err:
        client.create_customer(customer())
    assert len(sandbox.journal(CREATE, "POST")) == 1
    assert len(sandbox.customers()) == 1  # it was committed: a resend would duplicate it
    assert "Jürgen" not in str(err.value)


def test_read_timeout_makes_a_create_in_doubt_but_a_read_is_retried(sandbox: Sandbox) -> None:
    sandbox.set_faults(latency=1.0)
    with fast_client(sandbox, read_timeout=0.3, max_retries=2) as client:
        with pytest.raises(BillbeeInDoubtError):
            client.create_customer(customer())
        with pytest.raises(BillbeeTransientError, match="gave up after 3 attempt"):
            client.get_customer(1)
    assert len(sandbox.journal(CREATE, "POST")) == 1
    assert len(sandbox.journal(method="GET")) == 3


def test_internal_error_envelope_is_retried_then_reported(sandbox: Sandbox) -> None:
    sandbox.set_faults(error_rate=1.0)
    with (
        fast_client(sandbox, max_retries=2) as client,
        pytest.raises(BillbeeTransientError, match="8 InternalError"),
    ):
        client.create_customer(customer())
    assert len(sandbox.journal(CREATE, "POST")) == 3
    sandbox.set_faults()
    assert sandbox.customers() == []


def test_connection_refused_is_retried_even_for_a_create(sandbox: Sandbox) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = sandbox.client_config(base_url=f"http://127.0.0.1:{port}", max_retries=2)
    with BillbeeClient(config, rng=lambda: 0.01) as client:
        with pytest.raises(BillbeeTransientError, match="gave up after 3 attempt"):
            client.create_customer(customer())
        assert client.stats.retries == 2


def test_wrong_credentials_are_not_retried(sandbox: Sandbox) -> None:
    with fast_client(sandbox, password="wrong-password") as client, pytest.raises(BillbeeAuthError):
        client.create_customer(customer())
    assert len(sandbox.journal(CREATE, "POST")) == 1


def test_model_state_400_carries_field_errors(sandbox: Sandbox) -> None:
    with fast_client(sandbox) as client, pytest.raises(BillbeeInvalidDataError) as err:
        client.create_customer({"Name": "X", "Type": "abc"})
    assert any("Type" in key for key in err.value.field_errors)


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 25 Nov 2026 10:00:05 GMT", now=1795600800.0) == pytest.approx(5.0)
    assert parse_retry_after("99999") == 300.0
    assert parse_retry_after("nan") is None  # time.sleep(nan) would raise


def _faults(**switches: Any) -> Any:
    from billbee_provider.sandbox import Faults

    return Faults(**switches)


@pytest.mark.slow
def test_backoff_restarts_for_every_request(sandbox: Sandbox) -> None:
    """Backoff grows with the attempts of one request, not with the client's lifetime."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits: list[float] = []
    config = sandbox.client_config(base_url=f"http://127.0.0.1:{port}", max_retries=3)
    with BillbeeClient(config, rng=lambda: 1.0, sleep=waits.append) as client:
        for _ in range(2):
            with pytest.raises(BillbeeTransientError):
                client.get_customer(1)
    assert waits == [1.0, 2.0, 4.0, 1.0, 2.0, 4.0]


def test_tls_off_is_warned_at_every_client_and_applied(caplog: pytest.LogCaptureFixture) -> None:
    from billbee_provider.api.config import BillbeeConfig

    config = BillbeeConfig(
        base_url="https://app.billbee.io", api_key="k-123456", user="u", password="p-123456", verify_tls=False
    )
    with caplog.at_level("WARNING"):
        for _ in range(2):
            assert BillbeeClient(config).session.verify is False
    warnings = [r for r in caplog.records if "TLS certificate verification is OFF" in r.getMessage()]
    assert len(warnings) == 2
    bundle = BillbeeConfig(
        base_url="https://app.billbee.io",
        api_key="k-123456",
        user="u",
        password="p-123456",
        ca_bundle="/ca.pem",
    )
    assert BillbeeClient(bundle).session.verify == "/ca.pem"
    assert BillbeeClient(sandbox_free_config()).session.verify is True


def sandbox_free_config() -> Any:
    from billbee_provider.api.config import BillbeeConfig

    return BillbeeConfig(base_url="https://app.billbee.io", api_key="k-123456", user="u", password="p-123456")


def test_any_path_maps_to_the_endpoint_the_typed_methods_use() -> None:
    from billbee_provider.api import endpoints as ep

    assert ep.endpoint_for("get", "/api/v1/customers") is ep.LIST_CUSTOMERS
    assert ep.endpoint_for("POST", "/api/v1/customers") is ep.CREATE_CUSTOMER
    assert ep.endpoint_for("GET", "/api/v1/customers/42") is ep.GET_CUSTOMER
    assert ep.endpoint_for("POST", "/api/v1/customers/42/addresses") is ep.ADD_CUSTOMER_ADDRESS
    assert ep.endpoint_for("POST", "/api/v1/search") is ep.SEARCH
    unknown_post = ep.endpoint_for("POST", "/api/v1/orders/7/shipment")
    assert unknown_post.key == "POST /api/v1/orders/{id}/shipment" and not unknown_post.idempotent
    assert ep.endpoint_for("PATCH", "/api/v1/customers/7").idempotent


def test_request_refuses_what_is_not_a_path_under_the_base_url(sandbox: Sandbox) -> None:
    with fast_client(sandbox) as client:
        for path in ("api/v1/customers", "@evil.example/x", "/a b", "/a\\\\b", "https://evil.example/x"):
            with pytest.raises(ValueError, match="must be a path"):
                client.request("GET", path)
    assert sandbox.journal() == []
