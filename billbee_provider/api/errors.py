"""Billbee's error codes and the provider's exception hierarchy.

Every failure the client raises is a :class:`BillbeeError`. The subclasses say what a
caller can do about it: fix the configuration or credentials, fix the data, wait and
try again, or (for :class:`BillbeeInDoubtError`) find out whether a create happened
before sending it again. Exception texts never contain secrets or request bodies.

This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ErrorCode(IntEnum):
    """``ApiResult.ErrorCode`` values, named as in the .NET SDK's ``Model/ApiResult.cs``."""

    NoError = 0
    ApiNotActivated = 1
    OrderNotFound = 2
    InvoiceNotCreated = 3
    CantCreateInvoice = 4
    OrderCanceled = 5
    OrderDeleted = 6
    OrderNotPaid = 7
    InternalError = 8
    OrderExists = 9
    WrongShopId = 10
    InvalidData = 11
    CreateUser_DuplicateEmail = 12
    CreateUser_InvalidEmail = 13
    CreateUser_UserRejected = 14
    CreateUser_TermsNotAccepted = 15
    NoPaidAccount = 16
    APIServiceNotBooked = 17
    CantCreateDeliveryNote = 18


#: Codes meaning the account or API access is not usable, whatever the request.
ACCOUNT_ERROR_CODES = frozenset(
    {ErrorCode.ApiNotActivated, ErrorCode.NoPaidAccount, ErrorCode.APIServiceNotBooked}
)


def error_code_name(code: int | None) -> str | None:
    """The name of ``ErrorCode`` ``code``, e.g. ``"InvalidData"``; ``None`` for no code or an unnamed one."""
    if code is None:
        return None
    try:
        return ErrorCode(code).name
    except ValueError:
        return None


def describe_error_code(code: int) -> str:
    """Return ``"<number> <name>"``, e.g. ``"11 InvalidData"`` or ``"23 (unnamed)"``."""
    return f"{code} {error_code_name(code) or '(unnamed)'}"


class BillbeeError(Exception):
    """Base class of every error raised by this provider's Billbee client.

    :param message: a human explanation, free of secrets and personal data.
    :param status: the HTTP status, when an answer was received.
    :param error_code: ``ApiResult.ErrorCode``, when the answer had one.
    """

    def __init__(self, message: str, *, status: int | None = None, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class BillbeeConfigError(BillbeeError, ValueError):
    """The connection is misconfigured; raised before any request is sent."""


class BillbeeAuthError(BillbeeError):
    """Credentials were refused (401/403) or API access is not active for the account."""


class BillbeeInvalidDataError(BillbeeError):
    """Billbee refused the request body (400 ``ModelState`` or ``ErrorCode`` 11 and kin).

    :param field_errors: Billbee's messages per field path, e.g.
        ``{"model.Type": ["Error converting value ..."]}``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: int | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, status=status, error_code=error_code)
        self.field_errors = field_errors or {}


class BillbeeNotFoundError(BillbeeError):
    """The requested object does not exist (HTTP 404)."""


class BillbeeApiError(BillbeeError):
    """Billbee answered with an ``ErrorCode`` that fits no more specific class."""


class BillbeeRetryableError(BillbeeError):
    """A failure that may pass when tried again later (after retries were exhausted)."""


class BillbeeThrottledError(BillbeeRetryableError):
    """Billbee kept answering 429 after all retries.

    :param retry_after: the last ``Retry-After`` in seconds, if Billbee sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class BillbeeTransientError(BillbeeRetryableError):
    """5xx answers, ``ErrorCode`` 8 InternalError, or network failures, after retries."""


class BillbeeInDoubtError(BillbeeError):
    """A create was sent but its outcome is unknown: the answer was lost.

    The customer may or may not exist in Billbee now. Sending the same body again
    could create a duplicate, so the client never does that by itself; check the
    account (or let the batch importer's ledger resolve it) first.
    """


#: What :func:`shorten` puts where it cut a text.
ELLIPSIS = "..."


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in :data:`ELLIPSIS` where cut.

    Every message that shows a value, a name or Billbee's own text goes through this one
    function, so that all of them are bounded the same way.
    """
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


#: How many problems a message lists before "... and K more problem(s)".
MAX_SHOWN_PROBLEMS = 20


def listed_problems(problems: Sequence[str], shown: int = MAX_SHOWN_PROBLEMS) -> list[str]:
    """The problems a message lists: the first ``shown``, then how many more there are.

    A body with 10,000 unknown fields must not make a 600 KB exception text (nor echo
    10,000 key names into the task log).

    :param problems: every problem.
    :param shown: how many to list.
    :return: at most ``shown`` problems, plus ``... and K more problem(s)`` if cut.
    """
    listed = list(problems[:shown])
    if len(problems) > shown:
        listed.append(f"... and {len(problems) - shown} more problem(s)")
    return listed
