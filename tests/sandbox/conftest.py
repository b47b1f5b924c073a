"""Fixtures of the sandbox's own tests: real servers on loopback, reached with requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests

from billbee_provider.sandbox import Faults, SandboxConfig, SandboxServer

API_KEY = "sandbox-api-key"
USER = "sandbox@example.com"
PASSWORD = "sandbox-api-password"
#: Limits high enough that tests which are not about throttling never meet them.
UNTHROTTLED: dict[str, Any] = {"endpoint_limit": 10_000, "user_limit": 10_000, "key_limit": 10_000}


class Api:
    """A sandbox server seen from a client: Billbee calls with credentials, admin calls."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.base_url = server.base_url

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = API_KEY,
        auth: tuple[str, str] | None = (USER, PASSWORD),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One Billbee API request (``path`` from ``/api/v1``); ``key=None`` sends no key."""
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

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the sandbox's own ``/_sandbox`` endpoints."""
        return requests.request(method, f"{self.base_url}/_sandbox{path}", timeout=10, **kwargs)

    def set_faults(self, **switches: Any) -> dict[str, Any]:
        """Change fault switches at run time (PUT /_sandbox/faults)."""
        answer = self.admin("PUT", "/faults", json=switches)
        assert answer.status_code == 200, answer.text
        faults: dict[str, Any] = answer.json()
        return faults

    def journal(self) -> list[dict[str, Any]]:
        """The request journal."""
        entries: list[dict[str, Any]] = self.admin("GET", "/requests").json()
        return entries

    def stats(self) -> dict[str, Any]:
        """The sandbox's counters."""
        counters: dict[str, Any] = self.admin("GET", "/stats").json()
        return counters


class StartServer(Protocol):
    """Signature of the ``start_server`` fixture."""

    def __call__(self, *, http: str = "auto", **config: Any) -> Api: ...


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One unthrottled sandbox for the whole session (reset before each test by ``api``)."""
    db = tmp_path_factory.mktemp("sandbox") / "shared.sqlite"
    with SandboxServer(SandboxConfig(port=0, db_path=db, **UNTHROTTLED)) as server:
        yield server


@pytest.fixture
def api(shared_server: SandboxServer) -> Api:
    """The shared sandbox, emptied, with all faults off."""
    client = Api(shared_server)
    assert client.admin("POST", "/reset").status_code == 200
    client.set_faults(**Faults().to_dict(), seed=0)
    return client


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start a sandbox of its own with config overrides (default db in ``tmp_path``)."""
    servers: list[SandboxServer] = []

    def start(*, http: str = "auto", **config: Any) -> Api:
        config.setdefault("db_path", tmp_path / f"sandbox-{len(servers)}.sqlite")
        server = SandboxServer(SandboxConfig(port=0, **config), http=http).start()
        servers.append(server)
        return Api(server)

    yield start
    for server in servers:
        server.stop()
