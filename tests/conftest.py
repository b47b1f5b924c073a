"""Shared fixtures: an isolated AIRFLOW_HOME and Billbee sandboxes on loopback."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# Before anything imports Airflow: never touch the developer's own AIRFLOW_HOME.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="billbee-tests-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # leave nothing in /tmp
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"

from tests.sandbox_client import MakeSandbox, Sandbox, sandbox_factory  # noqa: E402

# Property-based tests: bounded and repeatable in CI (the default), long in `make soak`.
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("soak", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """Start sandboxes with given settings (seed 7 unless given); all are stopped after the test."""
    with sandbox_factory(tmp_path, seed=7) as start:
        yield start


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
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
    """Environment of an Airflow CLI process using ``sandbox`` as ``billbee_default``.

    ``TMPDIR`` is a directory in ``airflow_home``: the create task's account lock file
    (``import_customers``' default ``lock_dir`` is the temporary directory) and anything
    else a run puts there stay out of /tmp and are searched by the leak check too.
    """
    tmp = airflow_home / "tmp"
    tmp.mkdir(exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW_CONN_BILLBEE_DEFAULT": sandbox.conn_json(),
        "TMPDIR": str(tmp),
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
