"""Reading Billbee's answers: the ``ApiResult`` envelope and its exceptions.

Billbee answers in three shapes (API-FACTS "Response envelope"):

* ``ApiResult``: ``{"ErrorCode": 0, "ErrorMessage": ..., "Data": ..., "Paging": ...}``;
  success is ``ErrorCode == 0`` and ``ErrorMessage`` may be absent;
* ASP.NET model-binding failures, not enveloped: 400 ``{"Message", "ModelState"}``;
* the search answer, bare: ``{"Products": [...], "Orders": [...], "Customers": [...]}``.

:func:`unwrap` turns a status + decoded JSON into the payload or the fitting
:class:`~billbee_provider.api.errors.BillbeeError`. Error texts carry Billbee's messages but
never the request body. This module does not import Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from billbee_provider.api.errors import (
    ACCOUNT_ERROR_CODES,
    BillbeeApiError,
    BillbeeAuthError,
    BillbeeError,
    BillbeeInvalidDataError,
    BillbeeNotFoundError,
    BillbeeTransientError,
    ErrorCode,
    describe_error_code,
    listed_problems,
    shorten,
)

#: ErrorCodes that mean "the data you sent is not acceptable".
_DATA_ERROR_CODES = frozenset(
    {ErrorCode.InvalidData, ErrorCode.CreateUser_DuplicateEmail, ErrorCode.CreateUser_InvalidEmail}
)
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Paging:
    """Billbee's ``Paging`` block of a paged list."""

    page: int
    total_pages: int
    total_rows: int
    page_size: int


@dataclass(frozen=True)
class ApiResult:
    """A successful answer: the ``Data`` and, for paged lists, the ``Paging``."""

    data: Any
    paging: Paging | None = None


def unwrap(status: int, payload: Any, *, what: str) -> ApiResult:
    """Return the data of a successful ``ApiResult`` answer or raise its error.

    :param status: the HTTP status code.
    :param payload: the decoded JSON body (``None`` if it was empty or not JSON).
    :param what: a short description of the request for error texts, e.g.
        ``"POST /api/v1/customers"``.
    :raises BillbeeError: a subclass saying what went wrong.
    """
    if status >= 300:
        raise error_for_status(status, payload, what=what)
    if not isinstance(payload, Mapping) or "ErrorCode" not in payload:
        raise BillbeeApiError(f"{what}: HTTP {status} answer is not a Billbee ApiResult", status=status)
    code = json_int(payload.get("ErrorCode"))
    if code != 0:
        raise error_for_code(code, payload, status=status, what=what)
    return ApiResult(data=payload.get("Data"), paging=_paging(payload.get("Paging")))


def unwrap_bare(status: int, payload: Any, *, what: str) -> dict[str, Any]:
    """Return a bare (not enveloped) JSON object, as ``POST /api/v1/search`` answers.

    Tolerates an envelope too, in case Billbee ever aligns the answer with its Swagger.
    """
    if status >= 300:
        raise error_for_status(status, payload, what=what)
    if isinstance(payload, Mapping) and "ErrorCode" in payload:
        data = unwrap(status, payload, what=what).data
        return dict(data) if isinstance(data, Mapping) else {}
    if not isinstance(payload, Mapping):
        raise BillbeeApiError(f"{what}: HTTP {status} answer is not a JSON object", status=status)
    return dict(payload)


def check_answer(status: int, payload: Any, *, what: str) -> None:
    """Raise the error an answer of any shape carries; return if it is a success.

    For callers that keep the answer whole (``BillbeeHook.run``): a non-2xx status, or an
    ``ErrorCode`` other than 0, raises as :func:`unwrap` would. Anything else (an
    ``ApiResult`` with ``ErrorCode`` 0, a bare object, no JSON at all) passes.

    :raises BillbeeError: a subclass saying what went wrong.
    """
    if status >= 300:
        raise error_for_status(status, payload, what=what)
    if isinstance(payload, Mapping) and "ErrorCode" in payload:
        code = json_int(payload.get("ErrorCode"))
        if code != 0:
            raise error_for_code(code, payload, status=status, what=what)


def error_for_status(status: int, payload: Any, *, what: str) -> BillbeeError:
    """Map a non-2xx answer to an exception (without raising it)."""
    if isinstance(payload, Mapping) and isinstance(payload.get("ModelState"), Mapping):
        return _model_state_error(status, payload, what=what)
    if isinstance(payload, Mapping) and json_int(payload.get("ErrorCode")) not in (None, 0):
        return error_for_code(json_int(payload.get("ErrorCode")), payload, status=status, what=what)
    detail = _message(payload)
    text = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return BillbeeAuthError(text, status=status)
    if status == 404:
        return BillbeeNotFoundError(text, status=status)
    if status == 400 or status == 413 or status == 422:
        return BillbeeInvalidDataError(text, status=status)
    if status >= 500:
        return BillbeeTransientError(text, status=status)
    return BillbeeApiError(text, status=status)


def error_for_code(code: int | None, payload: Mapping[str, Any], *, status: int, what: str) -> BillbeeError:
    """Map an ``ApiResult`` with ``ErrorCode != 0`` to an exception (without raising it)."""
    label = describe_error_code(code) if code is not None else "unknown ErrorCode"
    detail = _message(payload)
    text = f"{what}: Billbee ErrorCode {label}" + (f": {detail}" if detail else "")
    if code in ACCOUNT_ERROR_CODES:
        return BillbeeAuthError(text, status=status, error_code=code)
    if code in _DATA_ERROR_CODES:
        return BillbeeInvalidDataError(text, status=status, error_code=code)
    if code == ErrorCode.InternalError:
        return BillbeeTransientError(text, status=status, error_code=code)
    if status == 404:
        return BillbeeNotFoundError(text, status=status, error_code=code)
    return BillbeeApiError(text, status=status, error_code=code)


def _model_state_error(status: int, payload: Mapping[str, Any], *, what: str) -> BillbeeInvalidDataError:
    fields = {
        str(key): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        for key, msgs in payload["ModelState"].items()
    }
    # Listed and cut like the schema's own problems: a body with thousands of bad fields
    # must not make a megabyte exception text (field_errors keeps them all).
    lines = [shorten(f"{key}: {'; '.join(msgs)}", _MAX_MESSAGE) for key, msgs in sorted(fields.items())]
    head = f"{what}: HTTP {status} Billbee refused the body ({_message(payload) or 'invalid request'})"
    return BillbeeInvalidDataError(
        "\n  - ".join([head, *listed_problems(lines)]), status=status, field_errors=fields
    )


def _paging(raw: Any) -> Paging | None:
    if not isinstance(raw, Mapping):
        return None
    return Paging(
        page=json_int(raw.get("Page")) or 0,
        total_pages=json_int(raw.get("TotalPages")) or 0,
        total_rows=json_int(raw.get("TotalRows")) or 0,
        page_size=json_int(raw.get("PageSize")) or 0,
    )


def _message(payload: Any) -> str:
    """Billbee's own explanation, shortened; empty when there is none."""
    if not isinstance(payload, Mapping):
        return ""
    parts = [payload.get("ErrorMessage"), payload.get("Message"), payload.get("ErrorDescription")]
    text = " ".join(str(p).strip() for p in parts if p not in (None, "", 0))
    return shorten(text, _MAX_MESSAGE)


def json_int(value: object) -> int | None:
    """An integer as Billbee's JSON (or a ledger line) carries it: ``12`` or ``"12"``.

    ``None`` for anything else: ``null``, booleans, fractions, other text. This is the one
    way Ids and ``ErrorCode`` values are read from JSON.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,19}\s*", value):
        return int(value)
    return None
