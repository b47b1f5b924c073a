"""Which failed requests may be sent again, and how long to wait before doing so.

The rules (the reason for each is in ``docs/hook-and-operator.md``):

* 429 and 503: retried for every request; Billbee did not process it. ``Retry-After``
  is obeyed when present, otherwise exponential backoff with full jitter (after a 429
  at least one throttle window).
* ``ErrorCode`` 8 InternalError in a 200 envelope: retried; Billbee said it failed.
* Connection failures before the request was sent (refused, connect timeout, TLS
  handshake): retried for every request.
* Anything after the request may have reached Billbee (read timeout, connection
  dropped, 500/502/504): retried for idempotent requests only. Any other request raises
  :class:`~billbee_provider.api.errors.BillbeeInDoubtError`, since sending it again could
  create the customer twice (the API has no idempotency key).

:class:`~billbee_provider.api.client.BillbeeClient` applies these to every attempt.
This module does not import Airflow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from billbee_provider.api.endpoints import Endpoint
from billbee_provider.api.errors import (
    BillbeeConfigError,
    BillbeeInDoubtError,
    BillbeeRetryableError,
    BillbeeThrottledError,
    BillbeeTransientError,
    ErrorCode,
)

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
#: The longest ``Retry-After`` obeyed, in seconds.
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class RetryableFailure:
    """A failed attempt that may be retried (after ``retry_after`` seconds if Billbee said so)."""

    reason: str
    status: int | None = None
    retry_after: float | None = None

    def error(self, attempts: int) -> BillbeeRetryableError:
        """The exception to raise when no attempt is left."""
        text = f"{self.reason}; gave up after {attempts} attempt(s)"
        if self.status == 429:
            return BillbeeThrottledError(text, retry_after=self.retry_after)
        return BillbeeTransientError(text, status=self.status)


def judge_response(endpoint: Endpoint, response: requests.Response) -> RetryableFailure | None:
    """Tell whether an answer calls for another attempt.

    :return: ``None`` when the answer is final (a success or an error retrying cannot fix).
    :raises BillbeeInDoubtError: a 500/502/504 to a request that must not be sent twice.
    """
    status = response.status_code
    if status == 429:
        return _failure(f"HTTP 429 from {endpoint.key}", response)
    if status == 503:
        return _failure(f"HTTP 503 from {endpoint.key}", response)
    if status >= 500:
        if not endpoint.idempotent:
            raise BillbeeInDoubtError(
                f"{endpoint.key}: HTTP {status} after the request was sent; Billbee may or may "
                "not have created it. Not retried to avoid a duplicate",
                status=status,
            )
        return _failure(f"HTTP {status} from {endpoint.key}", response)
    payload = json_or_none(response)
    if isinstance(payload, Mapping) and payload.get("ErrorCode") == ErrorCode.InternalError:
        return _failure(f"Billbee ErrorCode 8 InternalError from {endpoint.key}", response)
    return None


def judge_network_failure(
    endpoint: Endpoint, exc: requests.RequestException, base_url: str
) -> RetryableFailure:
    """Tell whether a request that got no answer may be sent again.

    :raises BillbeeConfigError: the URL itself is unusable.
    :raises BillbeeInDoubtError: it may have reached Billbee and must not be sent twice.
    """
    kind = network_error_kind(exc)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        raise BillbeeConfigError(f"{endpoint.key}: invalid Billbee URL ({kind})") from None
    if not request_never_sent(exc) and not endpoint.idempotent:
        raise BillbeeInDoubtError(
            f"{endpoint.key}: {kind} after the request was sent; Billbee may or may not have "
            "created it. Not retried to avoid a duplicate"
        ) from exc
    return RetryableFailure(f"{kind} talking to {base_url}")


def retry_delay(
    failure: RetryableFailure, attempt: int, rng: Callable[[], float], *, min_after_429: float
) -> float:
    """``Retry-After`` if given; else backoff, at least ``min_after_429`` after a 429.

    Billbee counts requests per second: a 429 retried sooner than a window later
    (full jitter can draw 0.05 s) meets the same full window and wastes an attempt.

    :param attempt: the number of the attempt that just failed, from 1.
    :param rng: random source in [0, 1) for the jitter.
    :param min_after_429: the client's throttle window, in seconds.
    """
    if failure.retry_after is not None:
        return failure.retry_after
    wait = backoff(attempt, rng)
    return max(wait, min_after_429) if failure.status == 429 else wait


def backoff(attempt: int, rng: Callable[[], float]) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's 'Full Jitter').

    :param attempt: the number of the attempt that just failed, from 1.
    :param rng: random source in [0, 1).
    """
    step = min(attempt - 1, 10)
    ceiling: float = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**step)
    return max(0.05, ceiling * rng())


def request_never_sent(exc: BaseException) -> bool:
    """True if ``exc`` proves the request never reached the server (safe to resend)."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, NameResolutionError, ConnectTimeoutError))


def network_error_kind(exc: BaseException) -> str:
    """The exception's name with its low-level cause, e.g. ``ConnectionError (ConnectionResetError)``.

    Names only, never texts (which may hold the URL): enough to tell a refused connection
    (``NewConnectionError``, retried) from a reset or a timeout after sending (in doubt).
    """
    kind = type(exc).__name__
    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    inner = reason.args[-1] if isinstance(reason, BaseException) and reason.args else None
    if isinstance(inner, BaseException):  # urllib3 ProtocolError("Connection aborted.", cause)
        reason = inner
    cause = type(reason).__name__ if isinstance(reason, BaseException) else kind
    return kind if cause == kind else f"{kind} ({cause})"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    :return: ``None`` when absent or unreadable; never negative; capped at 5 minutes.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        if math.isnan(seconds):
            return None
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def json_or_none(response: requests.Response) -> Any:
    """The decoded JSON body, or ``None`` if it is empty or not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _failure(reason: str, response: requests.Response) -> RetryableFailure:
    hint = parse_retry_after(response.headers.get("Retry-After"))
    return RetryableFailure(reason, status=response.status_code, retry_after=hint)
