"""The outermost ASGI layer of every Billbee API request.

It reads the body once (refusing more than 1 MiB with 413) and replays it to the
app, writes the journal entry and the log line before the client sees a byte, adds
the ``latency`` fault, and, when the endpoint asked for it, drops the connection
without any answer. Admin requests (``/_sandbox``) pass through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billbee_provider.sandbox.admin import ADMIN_PREFIX
from billbee_provider.sandbox.context import EXCHANGE_KEY, Exchange, SandboxContext
from billbee_provider.sandbox.responses import message

#: Largest accepted request body (the sandbox's choice; Billbee's limit is not documented).
MAX_BODY_BYTES = 1024 * 1024

logger = logging.getLogger("billbee_provider.sandbox")


class ExchangeMiddleware:
    """Wraps the whole app (error handling included), so it sees every answer.

    :param app: the ASGI app to wrap.
    :param context: the sandbox instance (for its config, store and faults).
    """

    def __init__(self, app: ASGIApp, context: SandboxContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        path = scope.get("path", "")
        if scope["type"] != "http" or path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if len(path) > 1 and path.endswith("/"):
            scope["path"] = path.rstrip("/")  # ASP.NET routes ignore a trailing slash
        exchange = Exchange.from_scope(scope, self.context.config)
        scope[EXCHANGE_KEY] = exchange
        answer = _Answer(exchange, send, self.context)
        body = await _read_body(scope, receive)
        if body is None:
            too_large = message(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
            too_large.headers["Connection"] = "close"
            await too_large(scope, receive, answer.send)
            return
        exchange.body = body
        try:
            await self.app(scope, _replay(body, receive), answer.send)
        finally:
            if not answer.recorded:  # the app failed before it started an answer
                answer.record(500)
        if exchange.drop:
            await _drop_connection(send)


class _Answer:
    """The ``send`` the app gets: journals, logs, delays, or swallows the answer."""

    def __init__(self, exchange: Exchange, send: Send, context: SandboxContext) -> None:
        self.exchange = exchange
        self._send = send
        self._context = context
        self.recorded = False

    async def send(self, msg: Message) -> None:
        if msg["type"] == "http.response.start":
            # Journal first: once the client has the answer, the journal already has it.
            self.record(None if self.exchange.drop else int(msg["status"]))
            latency = self._context.faults.faults.latency
            if latency > 0:
                await asyncio.sleep(latency)  # the work is done and committed by now
        if not self.exchange.drop:
            await self._send(msg)

    def record(self, status: int | None) -> None:
        self.recorded = True
        exchange = self.exchange
        self._context.store.append_journal(exchange.journal_entry(status))
        # Method, path and status only: never bodies, queries or credentials.
        logger.info("%s %s %s", exchange.method, exchange.path, "dropped" if status is None else status)


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` when it exceeds :data:`MAX_BODY_BYTES`."""
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.strip().isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":  # client gone: answer what arrived, nobody reads it
            break
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then defers to the server."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _drop_connection(send: Send) -> None:
    """Close the connection without having sent any answer.

    uvicorn passes ``send`` as a bound method of its per-request cycle, which holds
    the transport: aborting it and marking the cycle disconnected makes uvicorn send
    nothing more (no 500; see ``run_asgi`` in uvicorn's ``httptools_impl.py`` and
    ``h11_impl.py``). Other servers get a status line with a body that never comes
    and a connection that closes: still no usable answer.
    """
    cycle = _server_cycle(send)
    if cycle is not None:
        cycle.transport.abort()
        cycle.disconnected = True
        return
    logger.warning("cannot reach the server's transport; dropping by truncating the answer")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"1"), (b"connection", b"close")],
        }
    )


def _server_cycle(send: Any, depth: int = 0) -> Any | None:
    """uvicorn's request cycle behind ``send``, also through a wrapping closure or two."""
    owner = getattr(send, "__self__", None)
    if owner is not None and hasattr(owner, "transport") and hasattr(owner, "disconnected"):
        return owner
    if depth >= 3:
        return None
    for cell in getattr(send, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(inner):
            found = _server_cycle(inner, depth + 1)
            if found is not None:
                return found
    return None
