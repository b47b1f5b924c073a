"""HTTP client for the customer part of the Billbee API v1.

One :class:`BillbeeClient` holds one ``requests`` session for one Billbee account and
does, for every request: the auth headers, client-side throttling (so that a
well-behaved run never sees a 429), retries with backoff where they are safe, and the
mapping of answers to data or :mod:`billbee_provider.api.errors` exceptions.

Retry rules (the reason for each is in ``docs/hook-and-operator.md``):

* 429 and 503: retried for every request; Billbee did not process it. ``Retry-After``
  is obeyed when present, otherwise exponential backoff with full jitter (after a 429
  at least one throttle window, :data:`WINDOW_SECONDS`).
* ``ErrorCode`` 8 InternalError in a 200 envelope: retried; Billbee said it failed.
* Connection failures before the request was sent (refused, connect timeout, TLS
  handshake): retried for every request.
* Anything after the request may have reached Billbee (read timeout, connection
  dropped, 500/502/504): retried for reads only. A create raises
  :class:`~billbee_provider.api.errors.BillbeeInDoubtError`, since sending it again could
  create the customer twice (the API has no idempotency key).

This module does not import Airflow.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from billbee_provider import DISTRIBUTION, __version__
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.api.envelope import ApiResult, Paging, unwrap, unwrap_bare
from billbee_provider.api.errors import (
    BillbeeConfigError,
    BillbeeInDoubtError,
    BillbeeRetryableError,
    BillbeeThrottledError,
    BillbeeTransientError,
    ErrorCode,
)
from billbee_provider.api.throttle import RateLimiter, Window

MAX_PAGE_SIZE = 250
#: Reuse a pooled connection for a create only if it was used this recently: an idle
#: keep-alive connection the server has just closed would otherwise turn a create that
#: never left this machine into a false "in doubt" (uvicorn closes idle ones after 5 s).
_CREATE_MAX_IDLE_SECONDS = 4.0
#: The client's window is a little longer than Billbee's 1 s so that network jitter
#: cannot make two of our requests land in the same server-side second.
WINDOW_SECONDS = 1.05
_BACKOFF_BASE = 1.0
_BACKOFF_CAP = 30.0


class Logger(Protocol):
    """The logging calls the client makes (stdlib and Airflow loggers both fit)."""

    def debug(self, msg: Any, /, *args: Any) -> Any: ...
    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class Endpoint:
    """One Billbee endpoint, as the throttle counts it.

    :param method: HTTP method.
    :param template: path template, e.g. ``/api/v1/customers/{id}``.
    :param idempotent: whether sending it twice is harmless (reads, PUT, PATCH, search).
    """

    method: str
    template: str
    idempotent: bool

    @property
    def key(self) -> str:
        """The throttle key, e.g. ``POST /api/v1/customers``."""
        return f"{self.method} {self.template}"


LIST_CUSTOMERS = Endpoint("GET", "/api/v1/customers", idempotent=True)
CREATE_CUSTOMER = Endpoint("POST", "/api/v1/customers", idempotent=False)
GET_CUSTOMER = Endpoint("GET", "/api/v1/customers/{id}", idempotent=True)
ADD_CUSTOMER_ADDRESS = Endpoint("POST", "/api/v1/customers/{id}/addresses", idempotent=False)
SEARCH = Endpoint("POST", "/api/v1/search", idempotent=True)


@dataclass
class ClientStats:
    """Counters of one client's traffic, for progress logs and summaries."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    throttle_wait_seconds: float = 0.0


class BillbeeClient:
    """Talks to one Billbee account.

    :param config: validated connection settings.
    :param session: a ``requests`` session to use; one is built from ``config`` if omitted.
    :param limiter: a shared rate limiter; pass the same one to clients of one account.
    :param logger: where retries and throttling are reported (never bodies or secrets).
    :param sleep: sleep function (injectable for tests).
    :param rng: random source in [0, 1) for backoff jitter (injectable for tests).
    """

    def __init__(
        self,
        config: BillbeeConfig,
        *,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
        logger: Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.session = session or make_session(config)
        self.limiter = limiter or RateLimiter()
        self.log: Logger = logger or logging.getLogger(__name__)
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng
        self._last_io = 0.0
        self._lock = threading.Lock()
        if not config.verify_tls and config.base_url.startswith("https://"):
            # Said at every run, on purpose: this must never become a forgotten setting.
            self.log.warning(
                "TLS certificate verification is OFF for %s (connection extra verify_tls=false): "
                "the API key and password can be intercepted. Use 'ca_bundle' for a private CA instead.",
                config.base_url,
            )

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def __enter__(self) -> BillbeeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- customer endpoints ---------------------------------------------------------

    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a customer (``POST /api/v1/customers``) and return it, with its new ``Id``.

        :raises BillbeeInDoubtError: the request may have reached Billbee but no answer came.
        """
        return _as_dict(self.call(CREATE_CUSTOMER, body=body).data)

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        """Return one customer (``GET /api/v1/customers/{id}``)."""
        return _as_dict(self.call(GET_CUSTOMER, ids={"id": customer_id}).data)

    def list_customers(
        self, page: int = 1, page_size: int = 50
    ) -> tuple[list[dict[str, Any]], Paging | None]:
        """Return one page of customers and Billbee's paging information."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        result = self.call(LIST_CUSTOMERS, params={"page": page, "pageSize": page_size})
        return [_as_dict(c) for c in result.data or []], result.paging

    def iter_customers(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Yield every customer of the account, walking all pages in order."""
        page = 1
        while True:
            customers, paging = self.list_customers(page, page_size)
            yield from customers
            last = paging.total_pages if paging else page
            if not customers or page >= last:
                return
            page += 1

    def search_customers(self, term: str, search_mode: int = 0) -> list[dict[str, Any]]:
        """Search customers (``POST /api/v1/search``); hits are ``{Id, Name, Addresses, Number}``."""
        body = {"Type": ["customer"], "Term": term, "SearchMode": search_mode}
        status, payload = self.send(SEARCH, body=body)
        found = unwrap_bare(status, payload, what=SEARCH.key).get("Customers") or []
        return [_as_dict(c) for c in found]

    def add_customer_address(self, customer_id: int, address: Mapping[str, Any]) -> dict[str, Any]:
        """Add an address to a customer (``POST /api/v1/customers/{id}/addresses``)."""
        return _as_dict(self.call(ADD_CUSTOMER_ADDRESS, ids={"id": customer_id}, body=address).data)

    def check_access(self) -> None:
        """One cheap read (``GET /api/v1/customers?page=1&pageSize=1``), no retries.

        :raises BillbeeError: whatever stops the account from being used.
        """
        status, payload = self.send(LIST_CUSTOMERS, params={"page": 1, "pageSize": 1}, retries=0)
        unwrap(status, payload, what=LIST_CUSTOMERS.key)

    # -- engine -----------------------------------------------------------------------

    def call(
        self,
        endpoint: Endpoint,
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> ApiResult:
        """Send a request to an enveloped endpoint and return its ``ApiResult``."""
        status, payload = self.send(endpoint, ids=ids, params=params, body=body)
        return unwrap(status, payload, what=endpoint.key)

    def send(
        self,
        endpoint: Endpoint,
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        retries: int | None = None,
    ) -> tuple[int, Any]:
        """Send one request with throttling and safe retries; return status and JSON.

        :raises BillbeeRetryableError: retries exhausted on 429/5xx/network failures.
        :raises BillbeeInDoubtError: a non-idempotent request may have been processed.
        """
        url = self.config.base_url + endpoint.template.format(**{k: int(v) for k, v in (ids or {}).items()})
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempts = 1 + (self.config.max_retries if retries is None else retries)
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(endpoint, url, params, data)
            if not isinstance(outcome, _Retry):
                return outcome
            if attempt == attempts:
                raise outcome.error(attempts)
            delay = self._delay(outcome, attempt)
            if outcome.status == 429:
                # Hold back every thread using this endpoint, not only this one.
                self.limiter.pause(("endpoint", endpoint.key), delay)
            self._count(retries=1)
            self.log.warning(
                "%s: %s; retrying in %.1f s (attempt %d of %d)",
                endpoint.key,
                outcome.reason,
                delay,
                attempt + 1,
                attempts,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self, endpoint: Endpoint, url: str, params: Mapping[str, Any] | None, data: bytes | None
    ) -> tuple[int, Any] | _Retry:
        self._throttle(endpoint)
        if not endpoint.idempotent:
            self._drop_idle_connections()
        try:
            response = self.session.request(
                endpoint.method,
                url,
                params=params,
                data=data,
                allow_redirects=False,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
                headers={"Content-Type": "application/json; charset=utf-8"} if data is not None else None,
            )
        except requests.RequestException as exc:
            return self._network_failure(endpoint, exc)
        finally:
            self._last_io = time.monotonic()
        self._count(requests=1)
        return self._judge(endpoint, response)

    def _judge(self, endpoint: Endpoint, response: requests.Response) -> tuple[int, Any] | _Retry:
        status = response.status_code
        payload = _json_or_none(response)
        if status == 429:
            return self._throttled(endpoint, response)
        if status == 503:
            return self._retry(f"HTTP 503 from {endpoint.key}", response, status=status)
        if status >= 500:
            if not endpoint.idempotent:
                raise BillbeeInDoubtError(
                    f"{endpoint.key}: HTTP {status} after the request was sent; Billbee may or may "
                    "not have created it. Not retried to avoid a duplicate",
                    status=status,
                )
            return self._retry(f"HTTP {status} from {endpoint.key}", response, status=status)
        if isinstance(payload, Mapping) and payload.get("ErrorCode") == ErrorCode.InternalError:
            return self._retry(
                f"Billbee ErrorCode 8 InternalError from {endpoint.key}", response, status=status
            )
        return status, payload

    def _throttled(self, endpoint: Endpoint, response: requests.Response) -> _Retry:
        self._count(throttled=1)
        return self._retry(f"HTTP 429 from {endpoint.key}", response, status=429)

    def _retry(self, reason: str, response: requests.Response, *, status: int) -> _Retry:
        hint = parse_retry_after(response.headers.get("Retry-After"))
        return _Retry(reason, status=status, retry_after=hint)

    def _network_failure(self, endpoint: Endpoint, exc: requests.RequestException) -> _Retry:
        kind = network_error_kind(exc)
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
            raise BillbeeConfigError(f"{endpoint.key}: invalid Billbee URL ({kind})") from None
        if not request_never_sent(exc) and not endpoint.idempotent:
            raise BillbeeInDoubtError(
                f"{endpoint.key}: {kind} after the request was sent; Billbee may or may not have "
                "created it. Not retried to avoid a duplicate"
            ) from exc
        return _Retry(f"{kind} talking to {self.config.base_url}")

    def _delay(self, outcome: _Retry, attempt: int) -> float:
        """``Retry-After`` if given; else backoff, at least one throttle window after a 429.

        Billbee counts requests per second: a 429 retried sooner than a window later
        (full jitter can draw 0.05 s) meets the same full window and wastes an attempt.
        """
        if outcome.retry_after is not None:
            return outcome.retry_after
        backoff = self._backoff(attempt)
        return max(backoff, WINDOW_SECONDS) if outcome.status == 429 else backoff

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter (AWS architecture blog's 'Full Jitter').

        :param attempt: the number of the attempt that just failed, from 1.
        """
        step = min(attempt - 1, 10)
        ceiling: float = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0**step)
        return max(0.05, ceiling * self._rng())

    def _throttle(self, endpoint: Endpoint) -> None:
        cfg = self.config
        waited = self.limiter.acquire(
            [
                Window(("endpoint", endpoint.key), cfg.endpoint_rate_limit, WINDOW_SECONDS),
                Window(("account",), cfg.account_rate_limit, WINDOW_SECONDS),
            ]
        )
        self._count(throttle_wait_seconds=waited)

    def _count(self, **increments: float) -> None:
        """Add to the stats counters; under the lock, since worker threads share them."""
        with self._lock:
            for name, value in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + value)

    def _drop_idle_connections(self) -> None:
        with self._lock:
            if self._last_io and time.monotonic() - self._last_io > _CREATE_MAX_IDLE_SECONDS:
                for adapter in self.session.adapters.values():
                    adapter.close()


@dataclass(frozen=True)
class _Retry:
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


def make_session(config: BillbeeConfig) -> requests.Session:
    """Build a session sending Billbee's auth headers; TLS verified unless the config says not."""
    session = requests.Session()
    # Room for the importer's concurrent requests (requests' default pool keeps 10).
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.auth = HTTPBasicAuth(config.user, config.password)
    session.verify = config.ca_bundle or config.verify_tls
    session.headers.update(
        {
            "X-Billbee-Api-Key": config.api_key,
            "Accept": "application/json",
            "User-Agent": f"{DISTRIBUTION}/{__version__} python-requests/{requests.__version__}",
        }
    )
    return session


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
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), 300.0)


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
