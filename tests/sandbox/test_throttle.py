"""Billbee's throttle: 2/s per endpoint, 10/s per user, 429 with or without Retry-After."""

from __future__ import annotations

import time

from tests.sandbox_client import USER, MakeSandbox, Sandbox

QUOTA_MESSAGE = "API calls quota exceeded! maximum admitted 2 per 1s."


def test_third_quick_create_is_429_with_retry_after(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    statuses = [api.call("POST", "/customers", json={"Name": f"C{i}"}) for i in range(3)]
    assert [a.status_code for a in statuses] == [200, 200, 429]
    refused = statuses[2]
    assert refused.json() == {"Message": QUOTA_MESSAGE}
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.stats()["customers"] == 2


def test_after_a_second_the_endpoint_admits_again(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    for _ in range(2):
        assert api.call("GET", "/customers").status_code == 200
    assert api.call("GET", "/customers").status_code == 429
    time.sleep(1.05)
    # The refused request took no slot, so two more fit into the new second.
    assert [api.call("GET", "/customers").status_code for _ in range(3)] == [200, 200, 429]


def test_no_retry_after_switch_omits_the_header(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    api.set_faults(retry_after=False)
    answers = [api.call("GET", "/customers") for _ in range(3)]
    assert answers[2].status_code == 429
    assert "Retry-After" not in answers[2].headers


def test_user_limit_spans_endpoints(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    customer_id = api.create(Name="Max", Address={"City": "Köln"})["Id"]  # POST /customers: 1
    address_id = api.call("GET", f"/customers/{customer_id}/addresses").json()["Data"][0]["Id"]  # 2
    calls = [
        ("GET", f"/customers/{customer_id}/addresses", None),  # 3
        ("GET", "/customers", None),  # 4
        ("GET", "/customers", None),  # 5
        ("GET", f"/customers/{customer_id}", None),  # 6
        ("GET", f"/customers/{customer_id}", None),  # 7
        ("GET", f"/customers/addresses/{address_id}", None),  # 8
        ("GET", f"/customers/addresses/{address_id}", None),  # 9
        ("POST", "/search", {"Type": ["customer"], "Term": "max"}),  # 10
        ("POST", "/search", {"Type": ["customer"], "Term": "max"}),  # 11: over 10/s
    ]
    statuses = [api.call(method, path, json=body).status_code for method, path, body in calls]
    assert statuses == [200] * 8 + [429]
    assert {e["endpoint"] for e in api.journal() if e["status"] == 429} == {"POST /api/v1/search"}


def test_refused_credentials_take_no_slot(make_sandbox: MakeSandbox) -> None:
    api = make_sandbox()
    for _ in range(3):
        assert api.call("GET", "/customers", auth=(USER, "wrong")).status_code == 401
    assert [api.call("GET", "/customers").status_code for _ in range(2)] == [200, 200]


def test_limits_are_configurable(make_sandbox: MakeSandbox) -> None:
    api: Sandbox = make_sandbox(endpoint_limit=4)
    assert [api.call("GET", "/customers").status_code for _ in range(5)] == [200] * 4 + [429]
