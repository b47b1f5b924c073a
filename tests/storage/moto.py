"""A real S3 endpoint on loopback: ``moto_server`` in its own process, stopped by PID.

Used by the object-storage tests, the import end-to-end test on S3 and
``tests/benchmarks/ledger_cost.py``. Nothing here mocks a call inside the test
process: s3fs talks HTTP to the server as it would to S3.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

#: Credentials moto accepts (any); set for every client, so no real AWS setting is read.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def moto_server_command() -> str | None:
    """The ``moto_server`` next to this interpreter, or on PATH; ``None`` if not installed."""
    here = Path(sys.executable).with_name("moto_server")
    return str(here) if here.exists() else shutil.which("moto_server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """A running ``moto_server``."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def s3fs(self) -> Any:
        """A fresh s3fs file system on this server (no listing cache shared with others)."""
        import s3fs  # type: ignore[import-untyped, unused-ignore]

        return s3fs.S3FileSystem(
            key="testing",
            secret="testing",
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": "us-east-1"},
            skip_instance_cache=True,
        )

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=name)

    def aws_conn_json(self) -> str:
        """An Airflow ``aws`` connection (``AIRFLOW_CONN_<ID>``) on this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            }
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextlib.contextmanager
def moto_server(log: Path | None = None) -> Iterator[MotoServer]:
    """Start ``moto_server`` on a free loopback port; stop it (by PID) afterwards.

    :param log: where its output goes (default: discarded).
    :raises RuntimeError: if it is not installed or does not answer within 30 s.
    """
    command = moto_server_command()
    if command is None:
        raise RuntimeError("moto_server is not installed: pip install -c constraints.txt -e '.[test,s3]'")
    port = free_port()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FAKE_CREDENTIALS},
        )
        server = MotoServer(port, process)
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"moto_server exited with {process.returncode}")
                try:
                    requests.get(f"{server.endpoint}/moto-api/", timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("moto_server did not answer within 30 s") from None
                    time.sleep(0.1)
            yield server
        finally:
            server.stop()
