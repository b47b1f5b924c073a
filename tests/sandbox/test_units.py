"""Pieces of the sandbox without a server: fault settings and decisions, config checks."""

from __future__ import annotations

from typing import Any

import pytest

from billbee_provider.sandbox import Burst, Faults, SandboxConfig
from billbee_provider.sandbox.faults import FaultInjector


@pytest.mark.parametrize(
    "kwargs", [{"fail_rate": -0.1}, {"drop_rate": 1.5}, {"error_rate": float("nan")}, {"latency": -1}]
)
def test_out_of_range_faults_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**kwargs)


def test_burst_is_parsed_and_printed() -> None:
    assert Burst.parse("10:2") == Burst(10, 2)
    assert str(Burst(10, 2)) == "10:2"
    assert Faults(burst_429="4:0.5").burst_429 == Burst(4, 0.5)  # type: ignore[arg-type]
    for bad in ("10", "a:b", "2:3", "0:0", "10:-1"):
        with pytest.raises(ValueError):
            Burst.parse(bad)


def test_burst_is_the_start_of_each_period() -> None:
    burst = Burst(10, 2)
    assert burst.remaining(0) == 2
    assert burst.remaining(1.5) == 0.5
    assert burst.remaining(2) == 0
    assert burst.remaining(9.9) == 0
    assert burst.remaining(10.5) == 1.5


def test_injector_burst_starts_when_set() -> None:
    now = [100.0]
    injector = FaultInjector(Faults(), clock=lambda: now[0])
    assert injector.burst_wait() == 0
    injector.set(Faults(burst_429=Burst(10, 2)))
    now[0] += 1
    assert injector.burst_wait() == 1
    now[0] += 2
    assert injector.burst_wait() == 0


def test_rates_zero_and_one_are_exact_and_seeds_repeat() -> None:
    assert not any(FaultInjector(Faults()).fail_now() for _ in range(100))
    assert all(FaultInjector(Faults(drop_rate=1)).drop_now() for _ in range(100))
    draws = [FaultInjector(Faults(error_rate=0.5), seed=42) for _ in range(2)]
    assert [draws[0].error_now() for _ in range(50)] == [draws[1].error_now() for _ in range(50)]


def test_updated_checks_names_and_types() -> None:
    assert Faults().updated({"latency": 1, "burst_429": "5:1"}) == Faults(latency=1.0, burst_429=Burst(5, 1))
    for bad in ({"latency": True}, {"retry_after": "no"}, {"nope": 1}, {"burst_429": 5}):
        with pytest.raises(ValueError):
            Faults().updated(bad)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.2", "example.com"])
def test_config_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="allow-remote"):
        SandboxConfig(host=host)
    assert SandboxConfig(host=host, allow_remote=True).host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_config_accepts_loopback_hosts(host: str) -> None:
    assert SandboxConfig(host=host).host == host


@pytest.mark.parametrize("kwargs", [{"port": 70000}, {"endpoint_limit": 0}, {"api_key": ""}])
def test_config_refuses_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**kwargs)
