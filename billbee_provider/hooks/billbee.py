"""``BillbeeHook``: the Airflow side of a Billbee connection.

The hook reads the Airflow connection once, validates it into a
:class:`~billbee_provider.api.config.BillbeeConfig`, registers the API key and API password
with Airflow's secret masker, and hands every request to a
:class:`~billbee_provider.api.client.BillbeeClient`, where throttling, retries and the
``ApiResult`` envelope are handled without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import DEFAULT_HOST, BillbeeConfig
from billbee_provider.api.errors import (
    BillbeeAuthError,
    BillbeeConfigError,
    BillbeeError,
    BillbeeRetryableError,
    ErrorCode,
)


class BillbeeHook(HttpHook):
    """Interact with the Billbee API v1 (customers).

    Connection fields: Host (default ``https://app.billbee.io``), Login (Billbee user
    name or e-mail), Password (the account's API password) and the extras ``api_key``
    (required), ``connect_timeout``, ``read_timeout``, ``endpoint_rate_limit``,
    ``account_rate_limit`` and ``max_retries``.

    :param billbee_conn_id: the Airflow connection id of the Billbee account.
    """

    conn_name_attr = "billbee_conn_id"
    default_conn_name = "billbee_default"
    conn_type = "billbee"
    hook_name = "Billbee"
    default_host = DEFAULT_HOST

    def __init__(self, billbee_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(method="GET", http_conn_id=billbee_conn_id, **kwargs)
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
        return BillbeeConfig.from_connection(
            _host_with_port(conn.host, conn.port),
            conn.login,
            conn.password,
            extra,
            conn_id=self.billbee_conn_id,
        )

    @cached_property
    def client(self) -> BillbeeClient:
        """The Billbee client of this connection (one session, one rate limiter)."""
        self.base_url = self.billbee_config.base_url
        return BillbeeClient(self.billbee_config, logger=self.log)

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """Return the client's ``requests`` session (auth and Billbee headers set).

        Unlike ``HttpHook.get_conn``, connection extras are never sent as headers: the
        extras hold the API key under its own name and numeric settings.
        """
        session = self.client.session
        if headers:
            session.headers.update(headers)
        return session

    # -- typed request methods ------------------------------------------------------

    def create_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a customer and return it (Billbee's ``Data``), with its new ``Id``.

        :raises BillbeeInDoubtError: the answer was lost; do not blindly retry.
        """
        return self.client.create_customer(body)

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        """Return one customer by its Billbee ``Id``."""
        return self.client.get_customer(customer_id)

    def iter_customers(self, page_size: int = 250) -> Iterator[dict[str, Any]]:
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
            self.client.check_access()
        except BillbeeError as exc:
            return False, explain_failure(exc)
        cfg = self.billbee_config
        return True, f"Connected to Billbee at {cfg.base_url} as {cfg.user}."


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
