"""Shared fixtures: an isolated AIRFLOW_HOME and Billbee sandboxes on loopback."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent

# Before anything imports Airflow: never touch the developer's own AIRFLOW_HOME.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="billbee-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from billbee_provider.config import BillbeeConfig  # noqa: E402
from billbee_provider.sandbox import SandboxConfig  # noqa: E402
from billbee_provider.sandbox.server import SandboxServer  # noqa: E402


class Sandbox:
    """A running sandbox plus the calls tests make to its admin endpoints."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.base_url: str = server.base_url
        self.config: SandboxConfig = server.config

    def journal(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = requests.get(f"{self.base_url}/_sandbox/requests", timeout=10).json()
        return [
            e
            for e in entries
            if (path is None or e["path"] == path) and (method is None or e["method"] == method)
        ]

    def set_faults(self, **faults: Any) -> None:
        requests.put(f"{self.base_url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()

    def customers(self) -> list[dict[str, Any]]:
        """Every stored customer, read through the API itself (pages of 250)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            response = requests.get(
                f"{self.base_url}/api/v1/customers",
                params={"page": page, "pageSize": 250},
                headers={"X-Billbee-Api-Key": self.config.api_key},
                auth=(self.config.user, self.config.api_password),
                timeout=10,
            )
            response.raise_for_status()
            answer = response.json()
            out.extend(answer["Data"])
            if page >= answer["Paging"]["TotalPages"]:
                return out
            page += 1

    def client_config(self, **overrides: Any) -> BillbeeConfig:
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
        import json

        return json.dumps(
            {
                "conn_type": "billbee",
                "host": self.base_url,
                "login": self.config.user,
                "password": self.config.api_password,
                "extra": {"api_key": self.config.api_key, **extra},
            }
        )


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes with given settings; all are stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**settings: Any) -> Sandbox:
        settings.setdefault("db_path", tmp_path / f"sandbox-{len(servers)}.sqlite")
        settings.setdefault("seed", 7)
        server = SandboxServer(SandboxConfig(port=0, **settings))
        server.start()
        servers.append(server)
        return Sandbox(server)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox with Billbee's real limits and no faults."""
    return make_sandbox()
