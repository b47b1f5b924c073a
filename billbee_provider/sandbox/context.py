"""State shared by the sandbox's layers: the per-app context and the per-request exchange."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

from billbee_provider.api.throttle import RateLimiter
from billbee_provider.sandbox.auth import api_key_ok, basic_auth_ok
from billbee_provider.sandbox.config import SandboxConfig
from billbee_provider.sandbox.faults import FaultInjector
from billbee_provider.sandbox.store import Store, utc_now

#: Scope key under which the middleware hands the :class:`Exchange` to the endpoints.
EXCHANGE_KEY = "billbee_sandbox.exchange"


@dataclass
class SandboxContext:
    """One sandbox instance: its settings, database, fault decisions and rate limiter."""

    config: SandboxConfig
    store: Store
    faults: FaultInjector
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def reset(self) -> None:
        """Wipe the data and the journal and forget past requests for throttling."""
        self.store.reset()
        self.limiter = RateLimiter()


@dataclass
class Exchange:
    """One API request as the journal records it, plus what the endpoint decided.

    The endpoint sets ``endpoint``, ``created_id`` and ``drop``; the outermost
    middleware reads them (``drop``: lose the answer after the create committed).
    """

    method: str
    path: str
    query: str
    user_agent: str | None
    accept: str | None
    content_type: str | None
    api_key_ok: bool
    auth_ok: bool
    time: str = field(default_factory=utc_now)
    body: bytes = b""
    endpoint: str | None = None
    created_id: int | None = None
    drop: bool = False

    @classmethod
    def from_scope(cls, scope: Scope, config: SandboxConfig) -> Exchange:
        """Describe the request of ``scope``; credentials are checked, never kept."""
        headers = Headers(scope=scope)
        return cls(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            user_agent=headers.get("user-agent"),
            accept=headers.get("accept"),
            content_type=headers.get("content-type"),
            api_key_ok=api_key_ok(headers, config),
            auth_ok=basic_auth_ok(headers, config),
        )

    def journal_entry(self, status: int | None) -> dict[str, object]:
        """The journal row of this exchange; ``status`` is ``None`` for a dropped answer."""
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": status,
            "endpoint": self.endpoint,
            "user_agent": self.user_agent,
            "accept": self.accept,
            "content_type": self.content_type,
            "api_key_ok": self.api_key_ok,
            "auth_ok": self.auth_ok,
            "body": self.body.decode("utf-8", errors="replace") if self.body else None,
            "dropped": self.drop,
            "created_id": self.created_id,
        }


def context_of(request: Request) -> SandboxContext:
    """The :class:`SandboxContext` of the app serving ``request``."""
    context: SandboxContext = request.app.state.sandbox
    return context


def exchange_of(request: Request) -> Exchange:
    """The :class:`Exchange` of ``request`` (made here if no middleware made one)."""
    exchange = request.scope.get(EXCHANGE_KEY)
    if not isinstance(exchange, Exchange):
        exchange = Exchange.from_scope(request.scope, context_of(request).config)
        request.scope[EXCHANGE_KEY] = exchange
    return exchange
