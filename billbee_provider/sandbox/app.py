"""The sandbox's ASGI app: :func:`create_app` wires config, store, faults and routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from billbee_provider.sandbox import admin, routes
from billbee_provider.sandbox.config import SandboxConfig
from billbee_provider.sandbox.context import SandboxContext
from billbee_provider.sandbox.faults import FaultInjector
from billbee_provider.sandbox.middleware import ExchangeMiddleware
from billbee_provider.sandbox.responses import Reject, message
from billbee_provider.sandbox.store import Store


class SandboxApp(FastAPI):
    """A FastAPI app whose outermost layer is :class:`ExchangeMiddleware`.

    ``add_middleware`` would put it inside Starlette's error handler; outside it,
    it also journals the 500 answers and reaches uvicorn's own ``send``.
    """

    def __init__(self, context: SandboxContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.sandbox = context

    @property
    def context(self) -> SandboxContext:
        """The sandbox instance this app serves."""
        context: SandboxContext = self.state.sandbox
        return context

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, wrapped in the exchange middleware."""
        return ExchangeMiddleware(super().build_middleware_stack(), self.context)


def create_app(config: SandboxConfig) -> FastAPI:
    """Build a sandbox app for ``config``: opens (and with ``reset`` wipes) its database.

    The caller owns the database connection: close it with
    ``app.state.sandbox.store.close()`` when the app is no longer served.
    """
    store = Store(config.db_path)
    if config.reset:
        store.reset()
    context = SandboxContext(config=config, store=store, faults=FaultInjector(config.faults, config.seed))
    app = SandboxApp(
        context,
        title="Billbee sandbox",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.include_router(routes.router)
    app.include_router(admin.router)
    app.add_exception_handler(Reject, _rejected)
    app.add_exception_handler(HTTPException, _http_error)
    return app


async def _rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Reject)
    return exc.response


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing errors in ASP.NET Web API's words (the texts are the sandbox's choice)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return message(404, f"No HTTP resource was found that matches the request URI '{request.url}'.")
    if exc.status_code == 405:
        text = f"The requested resource does not support http method '{request.method}'."
        return message(405, text, headers=exc.headers)
    return message(exc.status_code, str(exc.detail))
