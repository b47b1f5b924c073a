"""A ``moto_server`` per test module (a real S3 endpoint on loopback), skipped when not installed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.storage.moto import MotoServer, moto_server, moto_server_command


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    if moto_server_command() is None:
        pytest.skip("moto_server is not installed (the [s3] and [test] extras)")
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with moto_server(log) as server:
        yield server


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    """A new bucket on the module's server."""
    name = f"billbee-{uuid.uuid4().hex[:10]}"
    moto.create_bucket(name)
    return name
