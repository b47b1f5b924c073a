"""Make the connections list's "Test connection" action work for Billbee connections.

Airflow 3.3.2's list action posts ``"port": 0`` for a connection stored without a port
(``Number(null)`` in the UI). The API's ``POST /api/v2/connections/test`` then sees a port
that differs from the stored one and answers 400 "The host or port to test differs from
the stored connection", before the hook is reached. Every Billbee connection is stored
without a port: the form hides the field. A Billbee connection can never mean port 0, so
:class:`ConnectionTestPortFix`, a root middleware of the provider's plugin, drops that
``port`` from such test requests and nothing else: the API's own checks (permissions,
the stored credentials reused only for the stored host) run unchanged. This module does
not import Airflow.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The API route of Airflow's connection test.
TEST_PATH_SUFFIX = "/api/v2/connections/test"
#: Bodies larger than this are passed on untouched (a connection test body is a few hundred bytes).
MAX_BODY_BYTES = 64 * 1024


def without_port_zero(raw: bytes) -> bytes | None:
    """The test body without ``"port": 0`` if it tests a Billbee connection; else ``None``.

    :param raw: the request body as posted.
    :return: the new body, or ``None`` when it is to be passed on as it is.
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("conn_type") != "billbee" or "port" not in body:
        return None
    if body["port"] not in (0, "0"):
        return None
    del body["port"]
    return json.dumps(body).encode("utf-8")


class ConnectionTestPortFix:
    """ASGI middleware: :func:`without_port_zero` on ``POST .../api/v2/connections/test``.

    :param app: the ASGI app it wraps (the API server).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_connection_test(scope):
            await self.app(scope, receive, send)
            return
        messages, raw = await _read_body(receive)
        fixed = without_port_zero(raw) if raw is not None else None
        if fixed is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope["headers"].append((b"content-length", str(len(fixed)).encode("ascii")))
        body_message = {"type": "http.request", "body": fixed, "more_body": False}
        await self.app(scope, _replay([body_message], receive), send)


def _is_connection_test(scope: Scope) -> bool:
    return (
        scope.get("type") == "http"
        and scope.get("method") == "POST"
        and str(scope.get("path", "")).endswith(TEST_PATH_SUFFIX)
    )


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Read the request's messages; the whole body, or ``None`` when it is too large to look at."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message.get("type") != "http.request":
            return messages, None  # e.g. a disconnect: pass everything on as it came
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever the client sends next."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
