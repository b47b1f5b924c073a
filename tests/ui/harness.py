"""The machinery behind the UI tests: chromium, free ports, and Airflow's four parts in a temp home.

No pytest fixtures here (they are in ``conftest.py``); :class:`AirflowUI` can also be used
from a plain script to explore the UI by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")

#: ``BILLBEE_UI_TESTS=required`` (set by ``.ci/run``): a missing chromium or playwright fails
#: the UI tests instead of skipping them.
REQUIRED_VAR = "BILLBEE_UI_TESTS"
#: The chromium binary (Debian's package); point it elsewhere to simulate a machine without it.
CHROMIUM_VAR = "BILLBEE_UI_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: Without the background-networking flags chromium keeps calling home, and this machine's
#: closed network refuses it in ways that stall the browser.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: The DAGs the UI tests use; the fixture waits until the DAG processor has parsed them.
DAG_IDS = ("billbee_create_customer", "billbee_import_customers")
#: Parts of ``airflow standalone``, each started as its own process group.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_STATES = {"success", "failed"}


def ui_tests_required() -> bool:
    return os.environ.get(REQUIRED_VAR, "").strip().lower() in {"required", "1", "true", "yes"}


def chromium_path() -> str:
    return os.environ.get(CHROMIUM_VAR) or DEFAULT_CHROMIUM


def browser_problem() -> str | None:
    """Why no browser test can run here (``None``: chromium and playwright are there)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed ({exc}); `make install` installs it (the test extra)"
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return (
            f"no chromium at {path} (`apt-get install -y chromium`; {CHROMIUM_VAR} names another binary); "
            f"{REQUIRED_VAR}=required makes this a failure"
        )
    return None


def need_playwright() -> None:
    """Call at the top of a UI test module, before importing playwright: without it the module
    is skipped with the reason (or, with ``BILLBEE_UI_TESTS=required``, fails)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        import pytest

        reason = f"UI tests need playwright ({exc}); `make install` installs it (the test extra)"
        if ui_tests_required():
            pytest.fail(f"UI tests are required here but cannot run: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class AirflowError(AssertionError):
    """Airflow did not come up, or a part of it died; the message carries the logs' tails."""


class AirflowUI:
    """Airflow's API server (UI), scheduler, DAG processor and triggerer in a temp ``AIRFLOW_HOME``.

    What ``airflow standalone`` runs, as four process groups whose logs are separate files in
    ``logs_dir``. ``users`` maps user name to password (the simple auth manager's generated
    file); ``api()`` calls the REST API as one of them.
    """

    def __init__(
        self,
        home: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        startup_timeout: float = 150.0,
    ) -> None:
        self.home = home
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.logs_dir = home / "server-logs"
        self.startup_timeout = startup_timeout
        #: user name -> role of the simple auth manager
        self.roles: dict[str, str] = dict(users or {"admin": "admin", "viewer": "viewer"})
        self.users: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        tmp = home / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
        self.env: dict[str, str] = {
            **os.environ,
            # standalone's parts (and the task runners) start a bare `airflow`
            "PATH": path,
            "AIRFLOW_HOME": str(home),
            # the execution API URL follows from it: must match the port, or tasks fail with an empty log
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in self.roles.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor starts `parallelism` worker processes: 32 by default, on 2 cores
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # a triggered run of a paused DAG would stay queued
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # the Billbee panel's test requests (the plugin's option; harmless without it)
            "AIRFLOW__BILLBEE__ALLOW_TEST_REQUESTS": "True",
            # the log servers' default ports (8793, 8794) may be taken by another Airflow here
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # locks and anything else a task puts in the temp directory stay in this home
            "TMPDIR": str(tmp),
            "NO_COLOR": "1",
            **(extra_env or {}),
        }
        # never a developer's own airflow.cfg
        self.env.pop("AIRFLOW_CONFIG", None)

    # -- start / stop -------------------------------------------------------------------

    def start(self) -> AirflowUI:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        migrate = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.home,
        )
        (self.logs_dir / "db-migrate.log").write_text(migrate.stdout + migrate.stderr)
        if migrate.returncode:
            raise AirflowError(f"airflow db migrate failed:\n{tail(self.logs_dir / 'db-migrate.log')}")
        for name in COMPONENTS:
            log = (self.logs_dir / f"{name}.log").open("wb")
            self._procs[name] = subprocess.Popen(
                [AIRFLOW, name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.home,
                start_new_session=True,  # one process group each: stop() ends its children too
            )
            log.close()
        deadline = started + self.startup_timeout
        self._wait_healthy(deadline)
        self.users = self._read_passwords()
        self._wait_for_dags(deadline)
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every part's process group, SIGKILL what is left after ``grace`` seconds."""
        for proc in self._procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self._procs.values():  # the scheduler may ignore SIGTERM; workers may linger
            _signal_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._procs.clear()

    def __enter__(self) -> AirflowUI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- diagnostics ----------------------------------------------------------------------

    @property
    def log_paths(self) -> dict[str, Path]:
        """The log file of each part (and of ``db migrate``)."""
        return {p.stem: p for p in sorted(self.logs_dir.glob("*.log"))}

    def logs_tail(self, lines: int = 30) -> str:
        parts = []
        for name, path in self.log_paths.items():
            parts.append(f"----- {name} ({path}), last {lines} lines -----\n{tail(path, lines)}")
        return "\n".join(parts)

    def dead_components(self) -> list[str]:
        return [f"{n} (exit {p.returncode})" for n, p in self._procs.items() if p.poll() is not None]

    def check_alive(self) -> None:
        """Fail with the logs' tails when a part of Airflow has exited."""
        dead = self.dead_components()
        if dead:
            raise AirflowError(f"Airflow parts exited: {', '.join(dead)}\n{self.logs_tail()}")

    # -- REST API -------------------------------------------------------------------------

    def token(self, user: str = "admin") -> str:
        """A JWT of ``user`` from ``POST /auth/token`` (cached)."""
        if user not in self._tokens:
            answer = requests.post(
                f"{self.base_url}/auth/token",
                json={"username": user, "password": self.users[user]},
                timeout=30,
            )
            assert answer.status_code in (200, 201), (
                f"POST /auth/token as {user}: {answer.status_code} {answer.text}"
            )
            self._tokens[user] = answer.json()["access_token"]
        return self._tokens[user]

    def api(
        self, method: str, path: str, json: Any = None, user: str = "admin", **kwargs: Any
    ) -> requests.Response:
        """One REST request as ``user``; ``path`` is from the root (``/api/v2/...``)."""
        kwargs.setdefault("timeout", 30)
        headers = {"Authorization": f"Bearer {self.token(user)}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", json=json, headers=headers, **kwargs)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        answer = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}")
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()
        return run

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id -> state`` of a run's task instances."""
        answer = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_quote(run_id)}/taskInstances")
        assert answer.status_code == 200, answer.text
        return {ti["task_id"]: ti["state"] for ti in answer.json()["task_instances"]}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> str:
        """Wait until the run is finished; return its final state (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_STATES:
                return str(state)
            self.check_alive()
            time.sleep(1.0)
        raise AirflowError(
            f"{dag_id} run {run_id} still {state} after {timeout:.0f} s; tasks: "
            f"{self.task_states(dag_id, run_id)}\n{self.logs_tail()}"
        )

    def plugin_names(self) -> dict[str, dict[str, Any]]:
        """The plugins the API server loaded, by name."""
        answer = self.api("GET", "/api/v2/plugins")
        assert answer.status_code == 200, answer.text
        return {p["name"]: p for p in answer.json()["plugins"]}

    def add_pool(self, name: str, slots: int, description: str = "") -> None:
        answer = self.api(
            "POST", "/api/v2/pools", json={"name": name, "slots": slots, "description": description}
        )
        assert answer.status_code in (200, 201), answer.text

    # -- start-up internals -------------------------------------------------------------

    def _wait_healthy(self, deadline: float) -> None:
        last: object = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                answer = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                last = answer.text
                if answer.status_code == 200:
                    health = answer.json()
                    if all(
                        health.get(part, {}).get("status") == "healthy"
                        for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    ):
                        return
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.5)
        raise AirflowError(f"Airflow not healthy in time (last: {last})\n{self.logs_tail()}")

    def _read_passwords(self) -> dict[str, str]:
        # written by the API server's auth manager at start-up (only once: it locks the file)
        path = self.home / "simple_auth_manager_passwords.json.generated"
        for _ in range(100):
            try:
                passwords: dict[str, str] = json.loads(path.read_text())
                if all(user in passwords for user in self.roles):
                    return passwords
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise AirflowError(f"no passwords for {sorted(self.roles)} in {path}")

    def _wait_for_dags(self, deadline: float) -> None:
        seen: set[str] = set()
        while time.monotonic() < deadline:
            self.check_alive()
            answer = self.api("GET", "/api/v2/dags", params={"limit": 100})
            if answer.status_code == 200:
                seen = {d["dag_id"] for d in answer.json()["dags"]}
                if set(DAG_IDS) <= seen:
                    return
            time.sleep(1.0)
        errors = self.api("GET", "/api/v2/importErrors").text
        raise AirflowError(
            f"DAGs {sorted(set(DAG_IDS) - seen)} not parsed in time; import errors: {errors}\n"
            + self.logs_tail()
        )


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # its own group (start_new_session): the part and its children
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
