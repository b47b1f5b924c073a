"""What every Billbee API request passes before its endpoint runs.

In order: the ``fail_rate`` fault (503 before any work), the API key and Basic
auth (401), the ``api_not_activated`` switch (403 with ``ErrorCode`` 1), the
``burst_429`` fault, and Billbee's three throttle windows (429). A request refused
here consumes no throttle slot.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billbee_provider.api.errors import ErrorCode
from billbee_provider.api.throttle import Window
from billbee_provider.sandbox.auth import CHALLENGE, DENIED_MESSAGE, MISSING_KEY_MESSAGE
from billbee_provider.sandbox.context import SandboxContext, context_of, exchange_of
from billbee_provider.sandbox.responses import Reject, envelope, message

UNAVAILABLE_MESSAGE = "The service is temporarily unavailable."
NOT_ACTIVATED_MESSAGE = "The API is not activated for this Billbee account (sandbox: --api-not-activated)."


async def gate(request: Request) -> None:
    """FastAPI dependency of every ``/api/v1`` route; raises :class:`Reject` to refuse.

    Also records the endpoint (method and route template) on the request's exchange.
    """
    context = context_of(request)
    exchange = exchange_of(request)
    exchange.endpoint = endpoint_name(request)
    faults = context.faults
    if faults.fail_now():
        raise Reject(message(503, UNAVAILABLE_MESSAGE))
    if not exchange.api_key_ok:
        raise Reject(message(401, MISSING_KEY_MESSAGE))
    if not exchange.auth_ok:
        raise Reject(message(401, DENIED_MESSAGE, headers=CHALLENGE))
    if faults.faults.api_not_activated:
        raise Reject(envelope(None, code=ErrorCode.ApiNotActivated, error=NOT_ACTIVATED_MESSAGE, status=403))
    wait = faults.burst_wait() or throttle_wait(context, exchange.endpoint)
    if wait > 0:
        raise Reject(too_many_requests(context.config.endpoint_limit, wait, faults.faults.retry_after))


def endpoint_name(request: Request) -> str:
    """``"<METHOD> <route template>"``, e.g. ``"GET /api/v1/customers/{id}"``."""
    route = request.scope.get("route")
    template = route.path_format if isinstance(route, Route) else request.url.path
    return f"{request.method} {template}"


def throttle_wait(context: SandboxContext, endpoint: str) -> float:
    """Admit the request in all three windows, or return the seconds to wait (0: admitted).

    The windows are Billbee's (API-FACTS "Throttling"): per endpoint per key + user,
    per key + user, per key. Only one key and user are valid, but the keys are built
    as if there were more, so the windows mean what their names say.
    """
    config = context.config
    user = config.user.casefold()
    windows = [
        Window(("endpoint", config.api_key, user, endpoint), config.endpoint_limit),
        Window(("user", config.api_key, user), config.user_limit),
        Window(("key", config.api_key), config.key_limit),
    ]
    return context.limiter.try_acquire(windows)


def too_many_requests(limit: int, wait: float, with_retry_after: bool) -> Response:
    """The 429 answer; ``Retry-After`` is whole seconds, at least 1, unless switched off.

    The message names ``limit`` (the per-endpoint limit) whichever window was full:
    :meth:`~billbee_provider.api.throttle.RateLimiter.try_acquire` does not say which.
    """
    headers = {"Retry-After": str(max(1, math.ceil(wait)))} if with_retry_after else None
    return message(429, f"API calls quota exceeded! maximum admitted {limit} per 1s.", headers=headers)
