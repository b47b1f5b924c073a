"""The sliding-window limiter, on a fake clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from billbee_provider.api.throttle import RateLimiter, Window


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_admits_up_to_limit_then_tells_the_wait(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock)
    windows = [Window("endpoint", 2, 1.0)]
    assert limiter.try_acquire(windows) == 0.0
    clock.now = 0.25
    assert limiter.try_acquire(windows) == 0.0
    clock.now = 0.5
    assert limiter.try_acquire(windows) == pytest.approx(0.5)
    clock.now = 1.0
    assert limiter.try_acquire(windows) == 0.0  # the first start has left the window
    assert limiter.try_acquire(windows) == pytest.approx(0.25)


def test_acquire_paces_to_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(10):
        limiter.acquire([Window("e", 2, 1.0)])
        starts.append(clock.now)
    # any 1 s window holds at most 2 starts
    for i in range(len(starts) - 2):
        assert starts[i + 2] - starts[i] >= 1.0 - 1e-9
    assert starts[-1] == pytest.approx(4.0)


def test_a_request_needs_room_in_every_window_and_is_recorded_in_all(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock)
    account = Window("account", 3, 1.0)
    assert limiter.try_acquire([Window("a", 2, 1.0), account]) == 0.0
    assert limiter.try_acquire([Window("b", 2, 1.0), account]) == 0.0
    assert limiter.try_acquire([Window("c", 2, 1.0), account]) == 0.0
    wait = limiter.try_acquire([Window("d", 2, 1.0), account])
    assert wait == pytest.approx(1.0)
    # the refused request consumed no slot in "d"
    clock.now = 1.0
    assert limiter.try_acquire([Window("d", 1, 1.0)]) == 0.0


def test_pause_holds_a_key_back(clock: FakeClock) -> None:
    limiter = RateLimiter(clock=clock)
    limiter.pause("endpoint", 3.0)
    assert limiter.try_acquire([Window("endpoint", 2, 1.0)]) == pytest.approx(3.0)
    assert limiter.try_acquire([Window("other", 2, 1.0)]) == 0.0
    clock.now = 3.0
    assert limiter.try_acquire([Window("endpoint", 2, 1.0)]) == 0.0


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        Window("x", 0)
    with pytest.raises(ValueError, match="must be > 0"):
        Window("x", 1, 0)


def test_thread_safe_under_contention() -> None:
    limiter = RateLimiter()
    admitted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            if limiter.try_acquire([Window("k", 5, 60.0)]) == 0.0:
                with lock:
                    admitted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 5
