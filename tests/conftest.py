"""Shared fixtures: an isolated AIRFLOW_HOME and Billbee sandboxes on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# Before anything imports Airflow: never touch the developer's own AIRFLOW_HOME.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="billbee-tests-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from billbee_provider.api.config import BillbeeConfig  # noqa: E402
from billbee_provider.sandbox import SandboxConfig  # noqa: E402
from billbee_provider.sandbox.server import SandboxServer  # noqa: E402

# Property-based tests: bounded and repeatable in CI (the default), long in `make soak`.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("soak", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
            answer = self._get_page(page)
            out.extend(answer["Data"])
            if page >= answer["Paging"]["TotalPages"]:
                return out
            page += 1

    def _get_page(self, page: int) -> dict[str, Any]:
        for _ in range(20):  # the sandbox throttles tests too: wait out a 429
            response = requests.get(
                f"{self.base_url}/api/v1/customers",
                params={"page": page, "pageSize": 250},
                headers={"X-Billbee-Api-Key": self.config.api_key},
                auth=(self.config.user, self.config.api_password),
                timeout=10,
            )
            if response.status_code != 429:
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result
            time.sleep(float(response.headers.get("Retry-After", "0.5")))
        raise AssertionError("the sandbox kept answering 429")

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


# -- the Airflow CLI against a sandbox, with a leak check on everything it leaves -------

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
# Distinctive values, so that a leak anywhere can be found by plain search.
SECRET_KEY = "KEY-leakcheck-3f9a7c21e5"
SECRET_PASSWORD = "PW-leakcheck-8b2d4e6f10"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(
        [AIRFLOW, "pools", "set", "billbee_api", "1", "Billbee API"], env=env, check=True, capture_output=True
    )
    return home


@pytest.fixture
def secret_sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return make_sandbox(api_key=SECRET_KEY, api_password=SECRET_PASSWORD)


def airflow_env(airflow_home: Path, sandbox: Sandbox, **extra_env: str) -> dict[str, str]:
    """Environment of an Airflow CLI process using ``sandbox`` as ``billbee_default``."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_BILLBEE_DEFAULT": sandbox.conn_json(),
        **extra_env,
    }


@pytest.fixture
def run_airflow(
    airflow_home: Path, secret_sandbox: Sandbox, tmp_path: Path
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    outputs: list[subprocess.CompletedProcess[str]] = []

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = airflow_env(airflow_home, secret_sandbox, **extra_env)
        done = subprocess.run(
            [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO
        )
        outputs.append(done)
        return done

    yield run
    # Every Airflow command of every test: neither secret in any output, in any file of
    # AIRFLOW_HOME (logs, the metadata DB with XComs and rendered fields), or in any file
    # the test's runs wrote (results, rejects, ledgers, summaries).
    for done in outputs:
        assert_no_secret(done.stdout + done.stderr, f"output of {done.args[1:]}")
    for path in [*airflow_home.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file():
            assert_no_secret(path.read_bytes().decode("utf-8", "replace"), str(path))


def assert_no_secret(text: str, where: str) -> None:
    for secret in (SECRET_KEY, SECRET_PASSWORD):
        assert secret not in text, f"secret {secret[:6]}... found in {where}"
