"""The sandbox's own endpoints under ``/_sandbox``: not Billbee's, no auth, no throttle.

They let a test or a curious user look inside (journal, stats, stored request
bodies) and steer the sandbox (reset, fault switches) while it runs.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from billbee_provider.sandbox.context import context_of
from billbee_provider.sandbox.responses import bare

ADMIN_PREFIX = "/_sandbox"
MAX_JOURNAL_PAGE = 10000

router = APIRouter(prefix=ADMIN_PREFIX)


@router.get("/health")
async def health() -> Response:
    """Liveness: ``{"status": "ok"}``."""
    return bare({"status": "ok"})


@router.post("/reset")
async def reset(request: Request) -> Response:
    """Delete all customers, addresses and the journal; forget throttle history."""
    context_of(request).reset()
    return bare({"status": "reset"})


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    """The fault switches in force."""
    return bare(context_of(request).faults.faults.to_dict())


@router.put("/faults")
async def put_faults(request: Request) -> Response:
    """Change the switches named in the JSON object body; the others stay.

    ``seed`` (an integer) re-seeds the fault decisions. Answers the switches in force,
    or 400 ``{"error": ...}`` and changes nothing.
    """
    injector = context_of(request).faults
    try:
        changes = json.loads(await request.body() or b"{}")
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object")
        seed = changes.pop("seed", None)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        faults = injector.faults.updated(changes)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        return bare({"error": str(exc)}, status=400)
    injector.set(faults, seed=seed)
    return bare(faults.to_dict())


@router.get("/requests")
async def requests_journal(request: Request) -> Response:
    """The journal of API requests, oldest first: ``?since=<seq>&limit=<n>``.

    Each entry: seq, time, method, path, query, status (``null`` when the answer was
    dropped), endpoint, user_agent, accept, content_type, api_key_ok, auth_ok, body
    (the raw body as UTF-8 text, or ``null``), dropped, created_id. Never a secret.
    """
    since = _int_query(request, "since", 0)
    limit = min(max(_int_query(request, "limit", 1000), 1), MAX_JOURNAL_PAGE)
    return bare(context_of(request).store.journal(since=since, limit=limit))


@router.get("/stats")
async def stats(request: Request) -> Response:
    """Counts: requests, by_status, throttled (429), drops, creates, customers, addresses."""
    return bare(context_of(request).store.stats())


@router.get("/customers/{id:int}/raw-body")
async def raw_body(request: Request) -> Response:
    """The create request's body of a customer, byte for byte as it was received."""
    customer_id = int(request.path_params["id"])
    body = context_of(request).store.raw_body(customer_id) if customer_id < 2**63 else None
    if body is None:
        return bare({"error": "no such customer"}, status=404)
    return Response(body, media_type="application/json")


def _int_query(request: Request, name: str, default: int) -> int:
    value: Any = request.query_params.get(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default
