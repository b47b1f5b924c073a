"""The command line: a real process, options from the environment, SIGTERM, bad options."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from billbee_provider.sandbox.__main__ import build_parser, config_from_args, main
from tests.sandbox_client import PASSWORD, USER

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(base_url: str, process: subprocess.Popen[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if requests.get(f"{base_url}/_sandbox/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail("the sandbox process did not become healthy")


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "BILLBEE_SANDBOX_API_KEY": "key-from-env",
    }
    command = [sys.executable, "-m", "billbee_provider.sandbox", "--port", str(port)]
    command += ["--db", str(tmp_path / "cli.sqlite"), "--reset"]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_cli_serves_and_stops_cleanly_on_sigterm(sandbox_process: tuple[str, subprocess.Popen[str]]) -> None:
    base_url, process = sandbox_process
    answer = requests.post(
        f"{base_url}/api/v1/customers",
        json={"Name": "Jürgen Müßig"},
        headers={"X-Billbee-Api-Key": "key-from-env"},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["Data"]["Id"] > 2**31
    default_key = requests.get(
        f"{base_url}/api/v1/customers",
        headers={"X-Billbee-Api-Key": "sandbox-api-key"},
        auth=(USER, PASSWORD),
    )
    assert default_key.status_code == 401, "BILLBEE_SANDBOX_API_KEY replaced the default key"

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
    assert "POST /api/v1/customers 200" in stderr
    for never_logged in ("key-from-env", PASSWORD, "Jürgen"):
        assert never_logged not in stderr


def test_non_loopback_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--host", "0.0.0.0", "--db", ":memory:"])
    assert stopped.value.code == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--fail-rate", "1.5"], ["--burst-429", "10"], ["--port", "http"], ["--endpoint-limit", "0"]]
)
def test_bad_options_exit_with_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--db", ":memory:"])
    assert stopped.value.code == 2


def test_options_map_onto_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBEE_SANDBOX_LATENCY", "0.25")
    monkeypatch.setenv("BILLBEE_SANDBOX_NO_RETRY_AFTER", "yes")
    argv = [
        "--burst-429",
        "10:2",
        "--seed",
        "3",
        "--fail-rate",
        "0.1",
        "--drop-rate",
        "0.2",
        "--error-rate",
        "0.3",
    ]
    argv += ["--user-limit", "7", "--host", "localhost", "--api-not-activated"]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.faults.to_dict() == {
        "latency": 0.25,
        "fail_rate": 0.1,
        "drop_rate": 0.2,
        "error_rate": 0.3,
        "burst_429": "10:2",
        "retry_after": False,
        "api_not_activated": True,
    }
    assert (config.seed, config.user_limit, config.host, config.port) == (3, 7, "localhost", 8765)
    assert str(config.db_path) == "billbee-sandbox.sqlite"


def test_command_line_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLBEE_SANDBOX_PORT", "9000")
    assert config_from_args(build_parser().parse_args([])).port == 9000
    assert config_from_args(build_parser().parse_args(["--port", "9001"])).port == 9001
