"""Sliding-window rate limiting, shared by the client and the sandbox.

Billbee throttles per API key (50/s), per API key + user (10/s) and per endpoint for
each API key + user (2/s), and answers HTTP 429 above that. The client paces itself
with :meth:`RateLimiter.acquire` so that a well-behaved run never sees a 429; the
sandbox enforces the same limits with :meth:`RateLimiter.try_acquire`. Both count
requests in a sliding window: at most ``limit`` starts within any ``period`` seconds.

This module does not import Airflow.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One limit: at most ``limit`` requests in any ``period`` seconds for ``key``.

    :param key: what is counted (e.g. ``("endpoint", "POST /api/v1/customers")``).
    :param limit: requests allowed per period; must be at least 1.
    :param period: length of the sliding window in seconds.
    """

    key: Hashable
    limit: int
    period: float = 1.0

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate limit for {self.key!r} must be >= 1, got {self.limit}")
        if self.period <= 0:
            raise ValueError(f"rate period for {self.key!r} must be > 0, got {self.period}")


class RateLimiter:
    """Thread-safe sliding-window limiter over any number of keys.

    A request is admitted only when every window it names has room; it is then
    recorded in all of them at once, so a request never consumes a slot in one
    window while waiting for another.

    :param clock: monotonic clock in seconds (injectable for tests).
    :param sleep: sleep function used by :meth:`acquire` (injectable for tests).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: dict[Hashable, deque[float]] = {}
        self._paused_until: dict[Hashable, float] = {}

    def try_acquire(self, windows: Iterable[Window]) -> float:
        """Admit a request now if all ``windows`` allow it.

        :return: ``0.0`` when admitted (and recorded), otherwise the seconds to wait
            before it could be admitted (nothing is recorded).
        """
        windows = list(windows)
        with self._lock:
            now = self._clock()
            wait = max((self._wait_for(w, now) for w in windows), default=0.0)
            if wait > 0:
                return wait
            for window in windows:
                self._starts.setdefault(window.key, deque()).append(now)
            return 0.0

    def acquire(self, windows: Iterable[Window]) -> float:
        """Block until all ``windows`` admit a request, then record it.

        :return: the total seconds spent waiting.
        """
        windows = list(windows)
        waited = 0.0
        while True:
            wait = self.try_acquire(windows)
            if wait <= 0:
                return waited
            self._sleep(wait)
            waited += wait

    def pause(self, key: Hashable, seconds: float) -> None:
        """Admit nothing for ``key`` during the next ``seconds`` (e.g. after a 429)."""
        with self._lock:
            until = self._clock() + seconds
            self._paused_until[key] = max(until, self._paused_until.get(key, 0.0))

    def _wait_for(self, window: Window, now: float) -> float:
        """Seconds until ``window`` has room at ``now``; 0 when it has room already."""
        paused = self._paused_until.get(window.key, 0.0) - now
        starts = self._starts.get(window.key)
        if starts is None:
            return max(paused, 0.0)
        while starts and starts[0] <= now - window.period:
            starts.popleft()
        excess = len(starts) - window.limit
        full = starts[excess] + window.period - now if excess >= 0 else 0.0
        return max(paused, full, 0.0)
