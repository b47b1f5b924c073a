"""What became of one customer create, as a record without the customer's values.

:func:`billbee_response` is the create operator's XCom ``billbee_response`` (and what the
UI panel shows as the run's answer): the outcome, HTTP status, ``Id``, ``ErrorCode`` and its
name, the failure's text and Billbee's field problems. Billbee's messages may quote what
was sent; :func:`redacted` replaces the body's values in them. This module does not
import Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from billbee_provider.api.errors import (
    BillbeeError,
    BillbeeInvalidDataError,
    error_code_name,
    listed_problems,
    shorten,
)

#: Longest ``message`` in the record.
MAX_RESPONSE_MESSAGE = 1000
#: Longest ``problems`` line made from one of Billbee's field errors.
_MAX_PROBLEM = 300


def billbee_response(
    outcome: str,
    *,
    status: int | None = None,
    Id: int | None = None,  # Billbee's spelling, as in the return value
    Number: int | None = None,
    elapsed_ms: float = 0.0,
    error_code: int | None = None,
    message: str | None = None,
    problems: Sequence[str] = (),
) -> dict[str, Any]:
    """The record of one create: what happened to the customer, without its values.

    :param outcome: ``created``, ``existing`` (found on a try after the first),
        ``dry_run``, ``invalid`` (nothing sent) or ``failed``.
    :param status: the HTTP status of Billbee's answer, when there was one.
    :param elapsed_ms: milliseconds spent on the Billbee requests of this outcome
        (retries and throttle waits included); 0 when nothing was sent.
    :param error_code: Billbee's ``ErrorCode``; ``error_name`` is its name, if it has one.
    :param message: the failure's text, cut to :data:`MAX_RESPONSE_MESSAGE` characters.
    :param problems: ``<path>: <reason>`` lines, listed as in task failures (first 20).
    """
    return {
        "outcome": outcome,
        "status": status,
        "Id": Id,
        "Number": Number,
        "elapsed_ms": round(elapsed_ms, 3),
        "error_code": error_code,
        "error_name": error_code_name(error_code),
        "message": None if message is None else shorten(message, MAX_RESPONSE_MESSAGE),
        "problems": listed_problems(list(problems)),
    }


def failed_response(
    exc: BillbeeError, message: str, elapsed_ms: float, body: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`billbee_response` of a Billbee error; its field errors become ``problems``.

    :param message: the failure's text.
    :param body: the body sent; its values are replaced in ``message`` and ``problems``.
    """
    fields = exc.field_errors if isinstance(exc, BillbeeInvalidDataError) else {}
    lines = [f"{path}: {'; '.join(why)}" for path, why in sorted(fields.items())]
    problems = [shorten(redacted(line, body), _MAX_PROBLEM) for line in lines]
    return billbee_response(
        "failed",
        status=exc.status,
        elapsed_ms=elapsed_ms,
        error_code=exc.error_code,
        message=redacted(message, body),
        problems=problems,
    )


#: Shorter values of a body are not replaced in messages (they would hit ordinary words).
_MIN_REDACTED = 3


def redacted(text: str, body: Mapping[str, Any]) -> str:
    """``text`` with every string value of ``body`` (3 characters or more) replaced by ``<value>``.

    Billbee's messages may quote what was sent (an e-mail it refuses, say); the task
    failure and the XCom name the field instead.
    """
    values = {v for v in _string_leaves(body) if len(v.strip()) >= _MIN_REDACTED}
    for value in sorted(values, key=len, reverse=True):  # the longest first: "Anna" in "Annabel"
        text = text.replace(value, "<value>")
    return text


def _string_leaves(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _string_leaves(item)]
    if isinstance(value, list):
        return [s for item in value for s in _string_leaves(item)]
    return []


def field_paths(body: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of ``body`` (``Address.City``), for logs without values."""
    paths: list[str] = []
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            paths.extend(field_paths(value, f"{path}."))
        else:
            paths.append(path)
    return paths
