"""The shapes Billbee answers in, as Starlette responses.

* ``ApiResult`` envelopes (:func:`envelope`, :func:`paged`), with ``null`` fields
  left out as Billbee does (successful answers have no ``ErrorMessage``);
* ASP.NET's own ``{"Message": ...}`` answers (:func:`message`) for 401, 404, 429 ...;
* ``{"Message", "ModelState"}`` for bodies that cannot be bound (:func:`model_state`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

from billbee_provider.api.errors import ErrorCode


class BillbeeJSONResponse(JSONResponse):
    """JSON with non-ASCII characters unescaped, as Json.NET writes it."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        """Serialize ``content`` to compact UTF-8 JSON."""
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Reject(Exception):
    """Stop handling a request and answer ``response`` instead (see ``app.py``).

    :param response: the complete answer.
    """

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def envelope(
    data: Any,
    *,
    code: ErrorCode = ErrorCode.NoError,
    error: str | None = None,
    status: int = 200,
    paging: Mapping[str, int] | None = None,
) -> Response:
    """An ``ApiResult``: ``Paging`` (lists only), ``ErrorMessage`` (errors only),
    ``ErrorCode``, ``ErrorDescription`` (the code's name) and ``Data`` (when not null).
    """
    body: dict[str, Any] = {}
    if paging is not None:
        body["Paging"] = dict(paging)
    if error is not None:
        body["ErrorMessage"] = error
    body["ErrorCode"] = int(code)
    body["ErrorDescription"] = code.name
    if data is not None:
        body["Data"] = data
    return BillbeeJSONResponse(body, status_code=status)


def paged(items: list[Any], page: int, page_size: int, total: int) -> Response:
    """A paged ``ApiResult`` of ``items`` (one page of ``total`` rows)."""
    pages = -(-total // page_size)  # ceiling division
    paging = {"Page": page, "TotalPages": pages, "TotalRows": total, "PageSize": page_size}
    return envelope(items, paging=paging)


def invalid_data(problem: str) -> Response:
    """HTTP 200 with ``ErrorCode`` 11 InvalidData: the body bound, but a value is not allowed."""
    return envelope(None, code=ErrorCode.InvalidData, error=problem)


def not_found(what: str) -> Response:
    """HTTP 404 with an envelope naming what is missing (Billbee has no ErrorCode for it)."""
    return envelope(None, error=f"{what} not found", status=404)


def message(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    """ASP.NET's plain error answer ``{"Message": text}``."""
    return BillbeeJSONResponse({"Message": text}, status_code=status, headers=headers)


def model_state(errors: Mapping[str, list[str]]) -> Response:
    """HTTP 400 for a body that could not be bound, not enveloped (API-FACTS)."""
    body = {"Message": "The request is invalid.", "ModelState": dict(errors)}
    return BillbeeJSONResponse(body, status_code=400)


def bare(content: Any, status: int = 200) -> Response:
    """Any JSON without an envelope (the search answer, the admin endpoints)."""
    return BillbeeJSONResponse(content, status_code=status)
