"""Fault switches: 503, dropped answers, ErrorCode 8, latency, 429 bursts, runtime changes."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import requests

from billbee_provider.sandbox.middleware import _drop_connection
from tests.sandbox_client import MakeSandbox, Sandbox


def test_fail_rate_one_answers_503_and_stores_nothing(api: Sandbox) -> None:
    api.set_faults(fail_rate=1)
    answer = api.call("POST", "/customers", json={"Name": "Max"})
    assert answer.status_code == 503
    api.set_faults(fail_rate=0)
    assert api.call("GET", "/customers").json()["Paging"]["TotalRows"] == 0


def test_fail_rate_comes_before_authentication(api: Sandbox) -> None:
    api.set_faults(fail_rate=1)
    assert api.call("GET", "/customers", key="wrong").status_code == 503


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_drop_rate_one_commits_then_drops_the_connection(make_sandbox: MakeSandbox, http: str) -> None:
    api = make_sandbox(http=http, endpoint_limit=100)
    api.set_faults(drop_rate=1)
    with pytest.raises(requests.ConnectionError):
        api.call("POST", "/customers", json={"Name": "Lost Answer"})
    api.set_faults(drop_rate=0)
    stored = api.call("GET", "/customers").json()["Data"]
    assert [c["Name"] for c in stored] == ["Lost Answer"]
    entry = api.journal()[0]
    assert (entry["status"], entry["dropped"], entry["created_id"]) == (None, True, stored[0]["Id"])
    assert api.stats()["drops"] == 1


def test_drop_without_a_reachable_transport_truncates_the_answer() -> None:
    sent: list[dict[str, Any]] = []

    async def plain_send(message: Any) -> None:  # not a bound method: no transport to abort
        sent.append(message)

    asyncio.run(_drop_connection(plain_send))
    [start] = sent
    assert start["type"] == "http.response.start"
    assert (b"content-length", b"1") in start["headers"], "a body is promised and never sent"


def test_error_rate_one_answers_error_code_8_and_stores_nothing(api: Sandbox) -> None:
    api.set_faults(error_rate=1)
    answer = api.call("POST", "/customers", json={"Name": "Max"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["ErrorCode"], body["ErrorDescription"]) == (8, "InternalError")
    assert "Data" not in body
    assert api.stats()["customers"] == 0


def test_latency_delays_answers_without_blocking_others(api: Sandbox) -> None:
    api.set_faults(latency=0.5)
    durations: list[float] = []

    def timed_get() -> None:
        started = time.monotonic()
        assert api.call("GET", "/customers").status_code == 200
        durations.append(time.monotonic() - started)

    threads = [threading.Thread(target=timed_get) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 0.9, "the two delays overlap"
    assert len(durations) == 2 and min(durations) >= 0.5


def test_latency_comes_after_the_work(api: Sandbox) -> None:
    api.set_faults(latency=1.0)
    with pytest.raises(requests.Timeout):
        api.call("POST", "/customers", json={"Name": "Slow"}, timeout=0.4)
    api.set_faults(latency=0)
    assert api.stats()["customers"] == 1, "the create committed before the delay"


def test_burst_429_refuses_everything_during_the_burst(api: Sandbox) -> None:
    api.set_faults(burst_429="3:1")
    started = time.monotonic()
    refused = api.call("GET", "/customers")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    time.sleep(max(0.0, 1.1 - (time.monotonic() - started)))
    assert api.call("GET", "/customers").status_code == 200


def test_burst_429_honours_the_retry_after_switch(api: Sandbox) -> None:
    api.set_faults(burst_429="10:5", retry_after=False)
    refused = api.call("GET", "/customers")
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers


def test_faults_change_at_runtime_and_read_back(api: Sandbox) -> None:
    assert api.admin("GET", "/faults").json()["fail_rate"] == 0
    assert api.set_faults(fail_rate=1, burst_429="10:2")["burst_429"] == "10:2"
    assert api.admin("GET", "/faults").json()["fail_rate"] == 1
    assert api.call("GET", "/customers").status_code == 503
    api.set_faults(fail_rate=0, burst_429=None)
    assert api.call("GET", "/customers").status_code == 200


@pytest.mark.parametrize(
    "body", [{"fail_rate": 2}, {"latency": "slow"}, {"bogus": 1}, {"burst_429": "2"}, {"seed": "x"}, []]
)
def test_invalid_fault_changes_are_refused_and_change_nothing(api: Sandbox, body: Any) -> None:
    answer = api.admin("PUT", "/faults", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert api.admin("GET", "/faults").json()["fail_rate"] == 0


def test_a_seed_makes_fault_sequences_reproducible(api: Sandbox) -> None:
    def statuses() -> list[int]:
        return [api.call("GET", "/customers").status_code for _ in range(12)]

    api.set_faults(fail_rate=0.5, seed=7)
    first = statuses()
    api.set_faults(seed=7)
    assert statuses() == first
    assert set(first) == {200, 503}
