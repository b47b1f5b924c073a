"""HTTP client for the customer part of the Billbee API v1.

One :class:`BillbeeClient` holds one ``requests`` session for one Billbee account and
does, for every request: the auth headers, client-side throttling (so that a
well-behaved run never sees a 429), retries with backoff where they are safe (the rules
are in :mod:`billbee_provider.api.retry`), and the mapping of answers to data or
:mod:`billbee_provider.api.errors` exceptions.

Every request goes through one engine, :meth:`BillbeeClient.exchange`: the typed
methods (``create_customer`` ...) and the generic :meth:`BillbeeClient.request` (any
method and path, used by ``BillbeeHook.run``) alike, so a request is paced and retried
the same way whichever door it came through.

This module does not import Airflow.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth

from billbee_provider import DISTRIBUTION, __version__
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.api.endpoints import (
    ADD_CUSTOMER_ADDRESS,
    CREATE_CUSTOMER,
    GET_CUSTOMER,
    LIST_CUSTOMERS,
    SEARCH,
    Endpoint,
    endpoint_for,
)
from billbee_provider.api.envelope import ApiResult, Paging, unwrap, unwrap_bare
from billbee_provider.api.retry import (
    RetryableFailure,
    json_or_none,
    judge_network_failure,
    judge_response,
    parse_retry_after,
    retry_delay,
)
from billbee_provider.api.throttle import RateLimiter, Window

__all__ = [
    "ADD_CUSTOMER_ADDRESS",
    "CREATE_CUSTOMER",
    "GET_CUSTOMER",
    "LIST_CUSTOMERS",
    "MAX_PAGE_SIZE",
    "SEARCH",
    "WINDOW_SECONDS",
    "BillbeeClient",
    "ClientStats",
    "Endpoint",
    "Logger",
    "encode_body",
    "make_session",
    "parse_retry_after",
]

MAX_PAGE_SIZE = 250
#: Reuse a pooled connection for a create only if it was used this recently: an idle
#: keep-alive connection the server has just closed would otherwise turn a create that
#: never left this machine into a false "in doubt" (uvicorn closes idle ones after 5 s).
_CREATE_MAX_IDLE_SECONDS = 4.0
#: The client's window is a little longer than Billbee's 1 s so that network jitter
#: cannot make two of our requests land in the same server-side second.
WINDOW_SECONDS = 1.05
#: What a path given to :meth:`BillbeeClient.request` may not contain: controls, spaces,
#: backslashes, and the ``@`` that could turn the base URL into userinfo of another host.
_BAD_PATH_CHARS = re.compile(r"[\x00-\x20\x7f\\@]")


class Logger(Protocol):
    """The logging calls the client makes (stdlib and Airflow loggers both fit)."""

    def debug(self, msg: Any, /, *args: Any) -> Any: ...
    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...


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
    :param limiter: a rate limiter to share; its windows are keyed by
        :attr:`BillbeeConfig.account_id`, so clients of one account (however their Host
        is spelled) that share it are paced together.
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
        # Derived once: every attempt's throttle windows are keyed by it.
        self._account = config.account_id
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
        path = endpoint.template.format(**{k: int(v) for k, v in (ids or {}).items()})
        data = None if body is None else encode_body(body)
        response = self.exchange(endpoint, path, params=params, data=data, retries=retries)
        return response.status_code, json_or_none(response)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
    ) -> requests.Response:
        """Send any request (method + path) the way the typed methods send theirs.

        The endpoint is found from the path (:func:`~billbee_provider.api.endpoints.endpoint_for`):
        ``GET /api/v1/customers?page=2`` shares the throttle window of
        :meth:`list_customers`, and ``POST /api/v1/customers`` follows the create rule (never
        resent once it may have reached Billbee). The answer is returned whatever its
        status, once retries are over; reading it is the caller's job.

        :param method: HTTP method, any case.
        :param path: the path after the base URL, starting with ``/``; may end in a query.
        :param params: query parameters, added to any query in ``path``.
        :param data: the request body, already encoded (see :func:`encode_body`).
        :raises ValueError: for a path that is not a plain absolute path.
        :raises BillbeeRetryableError: retries exhausted on 429/5xx/network failures.
        :raises BillbeeInDoubtError: a non-idempotent request may have been processed.
        """
        path, _, query = path.partition("#")[0].partition("?")
        if not path.startswith("/") or _BAD_PATH_CHARS.search(path):
            raise ValueError("the endpoint must be a path after the Billbee base URL, e.g. /api/v1/customers")
        endpoint = endpoint_for(method, path)
        target = f"{path}?{query}" if query else path
        return self.exchange(endpoint, target, params=params, data=data)

    def exchange(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        retries: int | None = None,
    ) -> requests.Response:
        """The engine: throttle, send, judge, wait and resend while it is safe.

        :param endpoint: what the throttle counts and the retry rules look at.
        :param path: the concrete path (and query) after the base URL.
        :param retries: retries after the first attempt; the config's ``max_retries`` by default.
        :return: the first answer that is not worth another attempt.
        :raises BillbeeRetryableError: retries exhausted on 429/5xx/network failures.
        :raises BillbeeInDoubtError: a non-idempotent request may have been processed.
        """
        url = self.config.base_url + path
        attempts = 1 + (self.config.max_retries if retries is None else retries)
        for attempt in range(1, attempts + 1):
            outcome = self._attempt(endpoint, url, params, data)
            if not isinstance(outcome, RetryableFailure):
                return outcome
            if attempt == attempts:
                raise outcome.error(attempts)
            delay = retry_delay(outcome, attempt, self._rng, min_after_429=WINDOW_SECONDS)
            if outcome.status == 429:
                # Hold back every thread using this endpoint, not only this one.
                self.limiter.pause(("endpoint", self._account, endpoint.key), delay)
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
    ) -> requests.Response | RetryableFailure:
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
            return judge_network_failure(endpoint, exc, self.config.base_url)
        finally:
            self._last_io = time.monotonic()
        self._count(requests=1)
        failure = judge_response(endpoint, response)
        if failure is None:
            return response
        if failure.status == 429:
            self._count(throttled=1)
        return failure

    def _throttle(self, endpoint: Endpoint) -> None:
        # Keyed by the account's identity, not the Host as spelled: clients of one account
        # that share a limiter share its windows (and clients of two accounts do not).
        cfg, account = self.config, self._account
        waited = self.limiter.acquire(
            [
                Window(("endpoint", account, endpoint.key), cfg.endpoint_rate_limit, WINDOW_SECONDS),
                Window(("account", account), cfg.account_rate_limit, WINDOW_SECONDS),
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


#: Connections the session keeps open: the most requests the importer has in flight.
MAX_CONNECTIONS = 64


def encode_body(body: object) -> bytes:
    """A request body as Billbee gets it: UTF-8 JSON without ``\\u`` escapes."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def make_session(config: BillbeeConfig) -> requests.Session:
    """Build a session sending Billbee's auth headers; TLS verified unless the config says not."""
    session = requests.Session()
    # Room for the importer's concurrent requests (requests' default pool keeps 10; a
    # fuller pool discards connections, with a urllib3 warning for each).
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_CONNECTIONS)
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


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
