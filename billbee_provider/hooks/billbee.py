"""``BillbeeHook``: the Airflow side of a Billbee connection.

The hook reads the Airflow connection once, validates it into a
:class:`~billbee_provider.api.config.BillbeeConfig`, registers the API key and API password
with Airflow's secret masker, and hands every request to a
:class:`~billbee_provider.api.client.BillbeeClient`, where throttling, retries and the
``ApiResult`` envelope are handled without Airflow.

``HttpHook``'s own request path is not used: :meth:`BillbeeHook.run` goes through the
client as the typed methods do, and the inherited ``run_and_check``, ``check_response``
and ``run_with_advanced_retry`` refuse, since each would send (or resend) a request
without Billbee's throttling, its create rule or a validated connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any, NoReturn

import requests
from airflow.providers.http.hooks.http import HttpHook

from billbee_provider.api.client import MAX_PAGE_SIZE, BillbeeClient, encode_body
from billbee_provider.api.config import DEFAULT_HOST, BillbeeConfig, parse_flag
from billbee_provider.api.endpoints import CREATE_CUSTOMER, endpoint_for
from billbee_provider.api.envelope import check_answer, unwrap
from billbee_provider.api.errors import (
    BillbeeAuthError,
    BillbeeConfigError,
    BillbeeError,
    BillbeeRetryableError,
    ErrorCode,
)
from billbee_provider.api.retry import json_or_none

#: Methods :meth:`BillbeeHook.run` sends; ``data`` is the query of the first two.
_QUERY_METHODS = frozenset({"GET", "HEAD"})
_METHODS = _QUERY_METHODS | {"POST", "PUT", "PATCH", "DELETE"}
_TYPED_METHODS = (
    "create_customer, get_customer, iter_customers, search_customers, add_customer_address "
    "or run(endpoint, data)"
)


class BillbeeHook(HttpHook):
    """Interact with the Billbee API v1 (customers).

    Connection fields: Host (default ``https://app.billbee.io``), Login (Billbee user
    name or e-mail), Password (the account's API password) and the extras ``api_key``
    (required), ``connect_timeout``, ``read_timeout``, ``endpoint_rate_limit``,
    ``account_rate_limit`` and ``max_retries``.

    :param billbee_conn_id: the Airflow connection id of the Billbee account.
    :param method: the HTTP method :meth:`run` sends (``HttpHook``'s ``method``).
    """

    conn_name_attr = "billbee_conn_id"
    default_conn_name = "billbee_default"
    conn_type = "billbee"
    hook_name = "Billbee"
    default_host = DEFAULT_HOST

    def __init__(self, billbee_conn_id: str = default_conn_name, method: str = "GET", **kwargs: Any) -> None:
        super().__init__(method=method, http_conn_id=billbee_conn_id, **kwargs)
        self.billbee_conn_id = billbee_conn_id

    @cached_property
    def billbee_config(self) -> BillbeeConfig:
        """The connection, validated once; its secrets are masked from here on.

        :raises BillbeeConfigError: naming the missing or wrong field, before any request.
        """
        conn = self.get_connection(self.billbee_conn_id)
        extra = conn.extra_dejson
        # Mask first, so that not even a validation error can print them unmasked.
        # The key needs it explicitly: Airflow masks extras by name only, and the
        # header name ``X-Billbee-Api-Key`` is not one it recognises.
        api_key = extra.get("api_key") if isinstance(extra, dict) else None
        for secret in (api_key, conn.password):
            if secret:
                _mask_secret(str(secret))
        return config_from_connection(conn, self.billbee_conn_id)

    @cached_property
    def client(self) -> BillbeeClient:
        """The Billbee client of this connection (one session, one rate limiter)."""
        return BillbeeClient(self.billbee_config, logger=self.log)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the client's ``requests`` session (auth and Billbee headers set).

        The session is shared by every request of this hook and is not changed here:
        ``headers`` and ``extra_options`` are refused rather than applied to it. Unlike
        ``HttpHook.get_conn``, connection extras are never sent as headers: the extras
        hold the API key under its own name and numeric settings. Requests sent on the
        session directly bypass the throttle and the retry rules: use :meth:`run` or the
        typed methods.

        :raises ValueError: if ``headers`` or ``extra_options`` are given.
        """
        if headers or extra_options:
            raise ValueError(
                "BillbeeHook.get_conn() takes no headers or extra_options: the session is shared "
                "and sends Billbee's headers itself; timeouts come from the connection's extras"
            )
        return self.client.session

    def url_from_endpoint(self, endpoint: str | None) -> str:
        """The URL of ``endpoint`` under the connection's validated base URL."""
        return self.billbee_config.base_url + "/" + (endpoint or "").lstrip("/")

    # -- HttpHook's request path, through the client -------------------------------

    def run(
        self,
        endpoint: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
        **request_kwargs: Any,
    ) -> requests.Response:
        """Send ``self.method`` to ``endpoint`` as the typed methods send their requests.

        The request shares the typed methods' throttle windows (``run("/api/v1/customers")``
        and :meth:`iter_customers` count against the same 2/s), their retries, and the
        create rule: a POST that may have reached Billbee is never resent
        (:class:`~billbee_provider.api.errors.BillbeeInDoubtError`).

        Returns the ``requests.Response``, as ``HttpHook.run`` does; its ``json()`` is
        Billbee's whole answer (the ``ApiResult`` envelope with ``Data`` and ``Paging``),
        the raw answer of the typed method of the same endpoint. A failed answer raises
        the same :class:`~billbee_provider.api.errors.BillbeeError` the typed method would
        raise (not ``AirflowException``, and nothing is logged from the body); with
        ``extra_options={"check_response": False}`` a final 4xx or ``ErrorCode`` answer is
        returned instead. Retries (429, 503, network) happen either way.

        :param endpoint: the path after the base URL, e.g. ``/api/v1/customers/42`` or
            ``api/v1/customers?page=2&pageSize=10``.
        :param data: for GET/HEAD the query parameters; otherwise the body, a dict (sent
            as UTF-8 JSON, as the typed methods send it) or JSON text.
        :param headers: not supported: the client sends Billbee's headers itself.
        :param extra_options: only ``check_response`` (bool) is supported.
        :param request_kwargs: only ``json`` (the body, instead of ``data``) is supported.
        :raises ValueError: for an unsupported argument or method, or a bad endpoint.
        :raises BillbeeError: as the typed methods raise.
        """
        check = _check_response_option(extra_options)
        if headers:
            raise ValueError(
                "BillbeeHook.run() takes no headers: the client sends X-Billbee-Api-Key, "
                "Basic auth, Accept and Content-Type itself"
            )
        body: object = data
        if request_kwargs:
            if set(request_kwargs) != {"json"} or data is not None:
                raise ValueError(
                    "BillbeeHook.run() takes the body as data or json, not both, and no other "
                    f"request options (got {sorted(request_kwargs)})"
                )
            body = request_kwargs["json"]
        method = self.method.upper()
        if method not in _METHODS:
            raise ValueError(f"BillbeeHook.run(): method must be one of {sorted(_METHODS)}, got {method!r}")
        if not endpoint:
            raise ValueError("BillbeeHook.run() needs an endpoint, e.g. /api/v1/customers")
        path = "/" + endpoint.lstrip("/")
        params, payload = _params_and_payload(method, body)
        response = self.client.request(method, path, params=params, data=payload)
        if check:
            what = endpoint_for(method, path.partition("?")[0]).key
            check_answer(response.status_code, json_or_none(response), what=what)
        return response

    def run_and_check(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: it would send a prepared request without throttling or the create rule."""
        _refuse("run_and_check", "sends a prepared request past the throttle and retry rules")

    def check_response(self, response: requests.Response) -> NoReturn:
        """Refused: ``run`` already raises a :class:`BillbeeError` for a failed answer."""
        _refuse("check_response", "logs the answer's body (personal data); run() checks answers itself")

    def run_with_advanced_retry(self, _retry_args: dict[Any, Any], *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: retries on top of the client's could send a create twice."""
        _refuse("run_with_advanced_retry", "retries on top of the client's own could send a create twice")

    # -- typed request methods ------------------------------------------------------

    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a customer and return it (Billbee's ``Data``), with its new ``Id``.

        :raises BillbeeInDoubtError: the answer was lost; do not blindly retry.
        """
        return self.client.create_customer(body)

    def create_customer_with_status(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Like :meth:`create_customer`, and also return the HTTP status of Billbee's answer.

        The same request through the same client (throttle, create rule, errors); only
        the status, which :meth:`create_customer` drops, is kept.

        :return: ``(status, customer)``; the customer is Billbee's ``Data`` with its ``Id``.
        :raises BillbeeInDoubtError: the answer was lost; do not blindly retry.
        """
        status, payload = self.client.send(CREATE_CUSTOMER, body=body)
        data = unwrap(status, payload, what=CREATE_CUSTOMER.key).data
        return status, dict(data) if isinstance(data, Mapping) else {}

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        """Return one customer by its Billbee ``Id``."""
        return self.client.get_customer(customer_id)

    def iter_customers(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Yield every customer of the account, page by page."""
        return self.client.iter_customers(page_size)

    def search_customers(self, term: str) -> list[dict[str, Any]]:
        """Search customers; hits carry ``Id``, ``Name``, ``Addresses``, ``Number`` only."""
        return self.client.search_customers(term)

    def add_customer_address(self, customer_id: int, address: Mapping[str, Any]) -> dict[str, Any]:
        """Add an address (e.g. a shipping address) to an existing customer."""
        return self.client.add_customer_address(customer_id, address)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap read-only GET; returns ``(ok, message)`` a person can act on."""
        try:
            client = self.client  # validates the connection
        except BillbeeError as exc:
            return False, explain_failure(exc)
        return check_connection(client)


def config_from_connection(conn: Any, conn_id: str) -> BillbeeConfig:
    """Validate an Airflow connection (Task SDK's or the metadata DB's) into a :class:`BillbeeConfig`.

    :param conn: the connection: ``host``, ``port``, ``login``, ``password``, ``extra_dejson``.
    :param conn_id: its id, for the messages.
    :raises BillbeeConfigError: naming the missing or wrong field, before any request.
    """
    return BillbeeConfig.from_connection(
        _host_with_port(conn.host, conn.port), conn.login, conn.password, conn.extra_dejson, conn_id=conn_id
    )


def check_connection(client: BillbeeClient) -> tuple[bool, str]:
    """One cheap read-only GET through ``client``; ``(ok, message)`` a person can act on."""
    try:
        client.check_access()
    except BillbeeError as exc:
        return False, explain_failure(exc)
    cfg = client.config
    return True, f"Connected to Billbee at {cfg.base_url} as {cfg.user}."


def _check_response_option(extra_options: Mapping[str, Any] | None) -> bool:
    options = dict(extra_options or {})
    unknown = sorted(set(options) - {"check_response"})
    if unknown:
        raise ValueError(
            f"BillbeeHook.run(): extra_options {unknown} are not supported; only check_response is "
            "(timeouts come from the connection's extras connect_timeout and read_timeout)"
        )
    try:
        return parse_flag(options.get("check_response", True))
    except ValueError as exc:
        raise ValueError(f"BillbeeHook.run(): extra_options 'check_response' {exc}") from None


def _params_and_payload(method: str, body: object) -> tuple[Mapping[str, Any] | None, bytes | None]:
    """Split ``run``'s ``data`` into query parameters or an encoded body."""
    if body is None:
        return None, None
    if method in _QUERY_METHODS:
        if not isinstance(body, Mapping):
            raise ValueError(f"BillbeeHook.run(): data of a {method} are query parameters, a dict")
        return body, None
    if isinstance(body, str):
        return None, body.encode("utf-8")
    if isinstance(body, bytes):
        return None, body
    return None, encode_body(body)


def _refuse(name: str, why: str) -> NoReturn:
    raise NotImplementedError(f"BillbeeHook.{name}() is not supported: it {why}. Use {_TYPED_METHODS}.")


def explain_failure(exc: BillbeeError) -> str:
    """Turn a failed access check into advice (no secrets in it)."""
    if isinstance(exc, BillbeeConfigError):
        return str(exc)
    if isinstance(exc, BillbeeAuthError):
        return _explain_auth(exc)
    if isinstance(exc, BillbeeRetryableError) and exc.status is None:
        return f"Billbee is unreachable: {exc}. Check the Host and this machine's network/proxy."
    return f"Billbee answered with an error: {exc}"


def _explain_auth(exc: BillbeeAuthError) -> str:
    text = str(exc)
    if exc.error_code == ErrorCode.ApiNotActivated:
        return (
            "The Billbee API is not activated for this account: enable it in Billbee under "
            f"Settings > API. ({text})"
        )
    if exc.error_code is not None:
        return f"Billbee refuses API access for this account: {text}"
    if "api-key" in text.lower() or "api key" in text.lower():
        return f"Billbee rejected the API key (extra field 'api_key'). ({text})"
    return (
        "Billbee rejected the user name or API password. Use the account's API password "
        f"(set in Billbee under Settings > API), not the login password. ({text})"
    )


def _host_with_port(host: str | None, port: int | None) -> str | None:
    """The Host field, with the Port field added when the Host names no port itself.

    The form hides Port, but a connection URI (``billbee://...@127.0.0.1:8765``) sets it.
    """
    if not port or not host or not host.strip():
        return host
    text = host.strip().rstrip("/")
    authority = text.split("://", 1)[-1].split("/", 1)[0]
    if authority.rsplit("]", 1)[-1].count(":"):
        return host  # the Host already has a port
    scheme, sep, rest = text.partition("://")
    if not sep:
        return f"{text}:{port}"
    name, slash, path = rest.partition("/")
    return f"{scheme}://{name}:{port}{slash}{path}"


def _mask_secret(value: str) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret(value)
