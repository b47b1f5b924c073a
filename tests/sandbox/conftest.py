"""Fixtures of the sandbox's own tests: real servers on loopback, reached with requests.

``make_sandbox`` (tests/conftest.py) starts a sandbox of a test's own; ``api`` is the
one unthrottled sandbox of the session, emptied before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billbee_provider.sandbox import Faults, SandboxConfig, SandboxServer
from tests.sandbox_client import UNTHROTTLED, Sandbox


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """One unthrottled sandbox for the whole session (reset before each test by ``api``)."""
    db = tmp_path_factory.mktemp("sandbox") / "shared.sqlite"
    with SandboxServer(SandboxConfig(port=0, db_path=db, **UNTHROTTLED)) as server:
        yield server


@pytest.fixture
def api(shared_server: SandboxServer) -> Sandbox:
    """The shared sandbox, emptied, with all faults off."""
    client = Sandbox(shared_server)
    client.reset()
    client.set_faults(**Faults().to_dict(), seed=0)
    return client
