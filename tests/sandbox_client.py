"""A Billbee sandbox on loopback as the tests see it: Billbee calls, admin calls, client settings.

Shared by ``tests/conftest.py`` (``make_sandbox``, ``sandbox``) and
``tests/sandbox/conftest.py`` (``api``, the one unthrottled sandbox of the session).
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import requests

from billbee_provider.api.config import BillbeeConfig
from billbee_provider.imports.account import account_lock_path
from billbee_provider.sandbox import SandboxConfig, SandboxServer
from billbee_provider.sandbox.config import DEFAULT_API_KEY, DEFAULT_API_PASSWORD, DEFAULT_USER

#: The sandbox's default credentials.
API_KEY = DEFAULT_API_KEY
USER = DEFAULT_USER
PASSWORD = DEFAULT_API_PASSWORD
#: Limits high enough that tests which are not about throttling never meet them.
UNTHROTTLED: dict[str, Any] = {"endpoint_limit": 10_000, "user_limit": 10_000, "key_limit": 10_000}


class _Credentials(enum.Enum):
    """Default of :meth:`Sandbox.call`'s ``key`` and ``auth``: the sandbox's own credentials."""

    OWN = "own"


OWN = _Credentials.OWN


class Sandbox:
    """A running sandbox server seen from a client: Billbee calls with credentials, admin calls."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.base_url: str = server.base_url
        self.config: SandboxConfig = server.config

    # -- Billbee API calls ------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | _Credentials | None = OWN,
        auth: tuple[str, str] | _Credentials | None = OWN,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One Billbee API request (``path`` from ``/api/v1``) with the sandbox's credentials.

        ``key=None`` sends no API key, ``auth=None`` no Basic auth.
        """
        if key is OWN:
            key = self.config.api_key
        if auth is OWN:
            auth = (self.config.user, self.config.api_password)
        sent = {**({"X-Billbee-Api-Key": key} if key is not None else {}), **(headers or {})}
        kwargs.setdefault("timeout", 10)
        return requests.request(method, f"{self.base_url}/api/v1{path}", headers=sent, auth=auth, **kwargs)

    def create(self, **body: Any) -> dict[str, Any]:
        """Create a customer; return its ``Data`` (fails the test unless it worked)."""
        answer = self.call("POST", "/customers", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["ErrorCode"] == 0, answer.text
        data: dict[str, Any] = answer.json()["Data"]
        return data

    def customers(self) -> list[dict[str, Any]]:
        """Every stored customer, read through the API itself (pages of 250, 429s waited out)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self._get_page(page)
            out.extend(answer["Data"])
            if page >= answer["Paging"]["TotalPages"]:
                return out
            page += 1

    def _get_page(self, page: int) -> dict[str, Any]:
        for _ in range(20):  # the sandbox throttles tests too: wait out a 429
            response = self.call("GET", "/customers", params={"page": page, "pageSize": 250})
            if response.status_code != 429:
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result
            time.sleep(float(response.headers.get("Retry-After", "0.5")))
        raise AssertionError("the sandbox kept answering 429")

    # -- the sandbox's own /_sandbox endpoints ---------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the sandbox's own ``/_sandbox`` endpoints (no credentials needed)."""
        kwargs.setdefault("timeout", 10)
        return requests.request(method, f"{self.base_url}/_sandbox{path}", **kwargs)

    def set_faults(self, **switches: Any) -> dict[str, Any]:
        """Change fault switches at run time (PUT /_sandbox/faults); return the switches now."""
        answer = self.admin("PUT", "/faults", json=switches)
        assert answer.status_code == 200, answer.text
        faults: dict[str, Any] = answer.json()
        return faults

    def journal(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """The request journal, optionally only the requests of one path and/or method."""
        entries: list[dict[str, Any]] = self.admin("GET", "/requests").json()
        return [
            e
            for e in entries
            if (path is None or e["path"] == path) and (method is None or e["method"] == method)
        ]

    def stats(self) -> dict[str, Any]:
        """The sandbox's counters."""
        counters: dict[str, Any] = self.admin("GET", "/stats").json()
        return counters

    def reset(self) -> None:
        """Empty the store and the journal (POST /_sandbox/reset)."""
        answer = self.admin("POST", "/reset")
        assert answer.status_code == 200, answer.text

    # -- the sandbox as the provider's client sees it --------------------------------

    def client_config(self, **overrides: Any) -> BillbeeConfig:
        """A :class:`BillbeeConfig` of this sandbox (4 retries, 10 s read timeout), with overrides."""
        fields: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": self.config.api_key,
            "user": self.config.user,
            "password": self.config.api_password,
            "max_retries": 4,
            "read_timeout": 10.0,
        }
        fields.update(overrides)
        return BillbeeConfig(**fields)

    def conn_json(self, **extra: Any) -> str:
        """The sandbox as an ``AIRFLOW_CONN_*`` JSON value."""
        return json.dumps(
            {
                "conn_type": "billbee",
                "host": self.base_url,
                "login": self.config.user,
                "password": self.config.api_password,
                "extra": {"api_key": self.config.api_key, **extra},
            }
        )


class MakeSandbox(Protocol):
    """Signature of the ``make_sandbox`` fixture."""

    def __call__(self, *, http: str = "auto", **config: Any) -> Sandbox: ...


@contextmanager
def sandbox_factory(directory: Path, **defaults: Any) -> Iterator[MakeSandbox]:
    """Start sandboxes (``SandboxConfig`` fields, ``http``) on loopback; stop them all on exit.

    Each gets its own database file in ``directory`` unless ``db_path`` is given;
    ``defaults`` are config fields used when a start does not give them.
    """
    servers: list[SandboxServer] = []
    #: default lock files of the started sandboxes' accounts not there at the start
    lock_paths: list[Path] = []

    def start(*, http: str = "auto", **config: Any) -> Sandbox:
        config = {"db_path": directory / f"sandbox-{len(servers)}.sqlite", **defaults, **config}
        server = SandboxServer(SandboxConfig(port=0, **config), http=http)
        servers.append(server)
        server.start()
        sandbox = Sandbox(server)
        lock_path = account_lock_path(sandbox.base_url, sandbox.config.user)
        if not lock_path.exists():  # one an earlier run left on a port used again is not ours
            lock_paths.append(lock_path)
        return sandbox

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
    # An import of one of these accounts given no lock_dir leaves its lock file in /tmp.
    left = [path for path in lock_paths if path.exists()]
    for path in left:
        path.unlink()
    assert not left, f"an import left its account lock in {left[0].parent}: pass lock_dir (under tmp_path)"
