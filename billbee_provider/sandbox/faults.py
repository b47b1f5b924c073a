"""Fault switches of the sandbox and the seeded decisions they drive.

Real Billbee sometimes answers slowly, fails with 5xx, loses the answer to a create
that did happen, answers ``ErrorCode`` 8, or throttles in bursts. :class:`Faults` says
how often the sandbox imitates each of these; :class:`FaultInjector` makes the
decisions with its own seeded :class:`random.Random`, so a test that fixes the seed
sees the same sequence of faults on every run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

#: Longest accepted ``latency``: more than this is a typo, not a slow server.
MAX_LATENCY = 300.0


@dataclass(frozen=True)
class Burst:
    """Throttle bursts: every request gets 429 for ``length`` of every ``every`` seconds.

    The burst is the first ``length`` seconds of each period; periods are counted from
    the moment the setting took effect.

    :param every: period in seconds (> 0).
    :param length: burst length in seconds (0 < length <= every).
    """

    every: float
    length: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.every) and self.every > 0):
            raise ValueError(f"burst period must be > 0 seconds, got {self.every}")
        if not (math.isfinite(self.length) and 0 < self.length <= self.every):
            raise ValueError(f"burst length must be > 0 and <= {self.every:g} seconds, got {self.length}")

    @classmethod
    def parse(cls, text: str) -> Burst:
        """Parse ``"EVERY:LENGTH"``, e.g. ``"10:2"``.

        :raises ValueError: for any other form.
        """
        every, sep, length = text.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(float(every), float(length))
        except ValueError as exc:
            detail = f": {exc}" if str(exc) else ""
            raise ValueError(
                f"burst_429 must look like EVERY:LENGTH (e.g. 10:2), got {text!r}{detail}"
            ) from None

    def remaining(self, elapsed: float) -> float:
        """Seconds left in the burst ``elapsed`` seconds after the origin; 0 outside a burst."""
        phase = elapsed % self.every
        return self.length - phase if phase < self.length else 0.0

    def __str__(self) -> str:
        return f"{self.every:g}:{self.length:g}"


@dataclass(frozen=True)
class Faults:
    """How the sandbox misbehaves; all off by default.

    :param latency: seconds added to every API answer, after the work is done.
    :param fail_rate: fraction (0..1) of API requests answered 503 before any work.
    :param drop_rate: fraction of customer creates that commit and then drop the
        connection without any answer.
    :param error_rate: fraction of customer creates answered ``ErrorCode`` 8
        InternalError, creating nothing.
    :param burst_429: periodic bursts of 429 for every API request, or ``None``;
        a string ``"EVERY:LENGTH"`` is parsed.
    :param retry_after: whether 429 answers carry ``Retry-After`` (real Billbee
        sometimes omits it, php-sdk issue #82).
    :param api_not_activated: answer every API request with ``ErrorCode`` 1.
    """

    latency: float = 0.0
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    error_rate: float = 0.0
    burst_429: Burst | None = None
    retry_after: bool = True
    api_not_activated: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.burst_429, str):
            # Frozen dataclass: the parsed value has to be set behind its back.
            object.__setattr__(self, "burst_429", Burst.parse(self.burst_429))
        if not (math.isfinite(self.latency) and 0 <= self.latency <= MAX_LATENCY):
            raise ValueError(f"latency must be between 0 and {MAX_LATENCY:g} seconds, got {self.latency}")
        for name in ("fail_rate", "drop_rate", "error_rate"):
            rate = getattr(self, name)
            if not (math.isfinite(rate) and 0 <= rate <= 1):
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")

    def to_dict(self) -> dict[str, Any]:
        """The switches as JSON-ready values (``burst_429`` as ``"EVERY:LENGTH"`` or ``None``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["burst_429"] = None if self.burst_429 is None else str(self.burst_429)
        return values

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """Return a copy with ``changes`` (names as in :meth:`to_dict`) applied.

        :raises ValueError: for an unknown name or a value of the wrong type or range.
        """
        values: dict[str, Any] = {}
        for name, value in changes.items():
            check = _CHECKS.get(name)
            if check is None:
                raise ValueError(f"unknown fault switch {name!r}; known: {', '.join(sorted(_CHECKS))}")
            values[name] = check(name, value)
        return replace(self, **values)


def _number(name: str, value: Any) -> float:
    # bool is an int in Python, but "latency": true is a mistake worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _burst(name: str, value: Any) -> Burst | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string EVERY:LENGTH or null, got {value!r}")
    return Burst.parse(value)


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "latency": _number,
    "fail_rate": _number,
    "drop_rate": _number,
    "error_rate": _number,
    "burst_429": _burst,
    "retry_after": _flag,
    "api_not_activated": _flag,
}


class FaultInjector:
    """Thread-safe fault decisions over the current :class:`Faults`.

    Each ``*_now`` method draws from the random generator only when its rate is
    strictly between 0 and 1, so rates of 0 and 1 are exact and a fixed seed gives
    a reproducible sequence for a fixed sequence of requests.

    :param faults: the initial switches.
    :param seed: seed of the random generator; ``None`` seeds from the OS.
    :param clock: monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self, faults: Faults, seed: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._faults = faults
        # Not for security: fault injection only needs a reproducible sequence.
        self._random = random.Random(seed)  # noqa: S311
        self._burst_origin = clock()

    @property
    def faults(self) -> Faults:
        """The switches in force."""
        return self._faults

    def set(self, faults: Faults, seed: int | None = None) -> None:
        """Replace the switches; re-seed the generator when ``seed`` is given.

        A changed ``burst_429`` starts its first period now.
        """
        with self._lock:
            if faults.burst_429 != self._faults.burst_429:
                self._burst_origin = self._clock()
            self._faults = faults
            if seed is not None:
                self._random.seed(seed)

    def fail_now(self) -> bool:
        """Whether this API request is answered 503 (``fail_rate``)."""
        return self._draw(self._faults.fail_rate)

    def drop_now(self) -> bool:
        """Whether this committed create loses its answer (``drop_rate``)."""
        return self._draw(self._faults.drop_rate)

    def error_now(self) -> bool:
        """Whether this create is answered ``ErrorCode`` 8 (``error_rate``)."""
        return self._draw(self._faults.error_rate)

    def burst_wait(self) -> float:
        """Seconds left in the current 429 burst; 0 when there is none."""
        with self._lock:
            burst = self._faults.burst_429
            if burst is None:
                return 0.0
            return burst.remaining(self._clock() - self._burst_origin)

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self._random.random() < rate
