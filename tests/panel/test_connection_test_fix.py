"""The middleware that lets the connections list test a Billbee connection stored without a port."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from billbee_provider.ui.connection_test import MAX_BODY_BYTES, ConnectionTestPortFix, without_port_zero

LIST_ACTION_BODY = {
    "connection_id": "billbee_shop",
    "conn_type": "billbee",
    "host": "https://app.billbee.io",
    "login": "shop@example.com",
    "password": "***",
    "port": 0,
    "extra": "{}",
}


def test_port_zero_of_a_billbee_test_is_dropped_and_nothing_else_changes() -> None:
    fixed = json.loads(without_port_zero(json.dumps(LIST_ACTION_BODY).encode()) or b"null")
    assert fixed == {k: v for k, v in LIST_ACTION_BODY.items() if k != "port"}


@pytest.mark.parametrize(
    "body",
    [
        {**LIST_ACTION_BODY, "conn_type": "http"},  # other connection types are Airflow's business
        {**LIST_ACTION_BODY, "port": 8765},  # a real port stays
        {k: v for k, v in LIST_ACTION_BODY.items() if k != "port"},
        [1, 2],
    ],
)
def test_other_bodies_pass_unchanged(body: object) -> None:
    assert without_port_zero(json.dumps(body).encode()) is None


def test_text_that_is_not_json_passes_unchanged() -> None:
    assert without_port_zero(b"\xff{not json") is None


class Recorder:
    """An ASGI app that keeps what it was given."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.body = b""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break


def call(path: str, body: bytes, method: str = "POST", chunks: int = 1) -> Recorder:
    app = Recorder()
    size = max(1, len(body) // chunks + 1)
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-length", b"%d" % len(body))],
    }
    asyncio.run(ConnectionTestPortFix(app)(scope, receive, lambda message: asyncio.sleep(0)))
    return app


def test_the_middleware_rewrites_a_chunked_test_request_and_its_content_length() -> None:
    raw = json.dumps(LIST_ACTION_BODY).encode()
    app = call("/api/v2/connections/test", raw, chunks=3)
    assert "port" not in json.loads(app.body)
    assert dict(app.scope["headers"])[b"content-length"] == str(len(app.body)).encode()


@pytest.mark.parametrize(
    ("path", "method"),
    [("/api/v2/connections", "POST"), ("/api/v2/connections/test", "GET"), ("/billbee/api/task", "POST")],
)
def test_other_requests_are_not_touched(path: str, method: str) -> None:
    raw = json.dumps(LIST_ACTION_BODY).encode()
    assert call(path, raw, method=method).body == raw


def test_a_large_body_is_passed_on_whole_without_being_read_as_json() -> None:
    raw = json.dumps({**LIST_ACTION_BODY, "extra": "x" * (MAX_BODY_BYTES + 10)}).encode()
    assert call("/api/v2/connections/test", raw, chunks=4).body == raw
