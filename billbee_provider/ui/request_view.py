"""The "Billbee request" panel's knowledge of one customer request, without Airflow.

:func:`customer_request` turns what a task rendered (its ``customer`` field) into the
request it sends: method, URL, headers with the secrets as ``***``, the body as indented
UTF-8 JSON, and every problem the Billbee schema finds. :func:`send_test_request` sends
such a body once through a :class:`~billbee_provider.api.client.BillbeeClient` and
describes Billbee's answer: HTTP status, the ``ApiResult`` envelope, the new ``Id`` or the
problems, and the time taken. The Airflow side (``billbee_provider.ui.app``) reads the
task's rendered fields and connection and decides who may do what.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from billbee_provider import DISTRIBUTION, __version__
from billbee_provider.api.client import CREATE_CUSTOMER, BillbeeClient, encode_body
from billbee_provider.api.envelope import error_for_status, json_int, unwrap
from billbee_provider.api.errors import (
    BillbeeError,
    BillbeeInDoubtError,
    BillbeeInvalidDataError,
    error_code_name,
    listed_problems,
    shorten,
)
from billbee_provider.api.retry import json_or_none
from billbee_provider.customers.json_text import JsonTextError, loads_strict
from billbee_provider.customers.schema import get_validator

#: What Airflow puts before a rendered field longer than ``[core] max_templated_field_length``.
TRUNCATED_PREFIX = "Truncated. You can change this behaviour in [core]max_templated_field_length."
#: Longest message text shown for a failed send (Billbee's texts are short; a proxy's need not be).
_MAX_MESSAGE = 1000


@dataclass(frozen=True)
class RequestView:
    """One create request as the task sends it.

    :param method: the HTTP method.
    :param url: the full URL, or a description of why it is not known.
    :param headers: ``(name, value)`` pairs; secrets are ``***``.
    :param body: the decoded body (``None`` when the rendered text is not usable).
    :param body_text: the body as indented UTF-8 JSON, or the rendered text as it is.
    :param problems: every schema problem as ``<path>: <reason>``; a body that cannot be
        read is one problem without a path.
    """

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: Any
    body_text: str
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the body can be sent: it was read and the schema finds nothing."""
        return self.body is not None and not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready data for the panel."""
        return {
            "method": self.method,
            "url": self.url,
            "headers": [list(pair) for pair in self.headers],
            "body": self.body_text,
            "valid": self.valid,
            "problems": listed_problems(self.problems),
            "problem_count": len(self.problems),
        }


def request_headers() -> list[tuple[str, str]]:
    """The headers a create carries (see :func:`~billbee_provider.api.client.make_session`), masked."""
    return [
        ("X-Billbee-Api-Key", "***"),
        ("Authorization", "Basic ***"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json; charset=utf-8"),
        ("User-Agent", f"{DISTRIBUTION}/{__version__} python-requests/{requests.__version__}"),
    ]


def customer_request(base_url: str | None, rendered: object) -> RequestView:
    """Describe the create request of a rendered ``customer`` field.

    :param base_url: the connection's validated base URL; ``None`` when the connection is
        not usable (the URL then says so).
    :param rendered: the task's rendered ``customer`` field: a dict, or JSON text.
    :return: the request, with the body read strictly (as the operator reads it) and checked.
    """
    url = (base_url or "<the connection's Host>") + CREATE_CUSTOMER.template
    body, text, problem = read_body(rendered)
    if problem is not None:
        return RequestView("POST", url, request_headers(), None, text, [problem])
    return RequestView("POST", url, request_headers(), body, text, get_validator().problems(body))


def read_body(rendered: object) -> tuple[Any, str, str | None]:
    """Read a rendered body: ``(body, text shown, problem)``; ``problem`` is ``None`` if it was read.

    A dict is shown as indented JSON; text is read with
    :func:`~billbee_provider.customers.json_text.loads_strict`, the operator's own reader.
    """
    if isinstance(rendered, Mapping):
        body = dict(rendered)
        return body, pretty_json(body), None
    if not isinstance(rendered, str):
        return None, "", "the task rendered no customer body"
    if rendered.startswith(TRUNCATED_PREFIX):
        return (
            None,
            rendered,
            (
                "Airflow cut the rendered body (it is longer than [core] max_templated_field_length); "
                "raise that setting to see and send this request from here"
            ),
        )
    try:
        body = loads_strict(rendered)
    except JsonTextError as exc:
        return None, rendered, f"the body is not JSON: {exc}"
    return body, pretty_json(body), None


def pretty_json(body: object) -> str:
    """Indented JSON with real umlauts (no ``\\u00fc`` escapes)."""
    return json.dumps(body, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class TestResponse:
    """Billbee's answer to a test send.

    :param outcome: ``created``, ``refused`` (Billbee answered with an error) or
        ``in_doubt`` (sent, but no answer came: the customer may exist).
    :param status: the HTTP status, ``None`` without an answer.
    :param envelope: the decoded answer (the ``ApiResult``), ``None`` if it was not JSON.
    :param billbee_id: the new customer's ``Id``.
    :param error_code: ``ErrorCode`` of the answer, if any.
    :param error_name: its name, e.g. ``InvalidData``.
    :param problems: Billbee's field problems as ``<path>: <reason>``.
    :param message: the error text (no secrets).
    :param elapsed_ms: time from sending to the answer, throttle wait included.
    """

    outcome: str
    status: int | None
    envelope: Any
    billbee_id: int | None
    error_code: int | None
    error_name: str | None
    problems: list[str]
    message: str | None
    elapsed_ms: float

    def as_dict(self) -> dict[str, Any]:
        """The answer as JSON-ready data for the panel."""
        return {
            "outcome": self.outcome,
            "status": self.status,
            "envelope": self.envelope,
            "Id": self.billbee_id,
            "error_code": self.error_code,
            "error_name": self.error_name,
            "problems": self.problems,
            "message": self.message,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


def send_test_request(client: BillbeeClient, body: Mapping[str, Any]) -> TestResponse:
    """Send ``body`` once as ``POST /api/v1/customers`` and describe the answer.

    The client's rules apply: the endpoint's rate limit, retries on 429 and on failures
    before the request left, never a resend once it may have reached Billbee.

    :raises BillbeeError: when no answer can be described (retries exhausted on 429/5xx,
        or the host unreachable).
    """
    started = time.monotonic()
    try:
        response = client.request("POST", CREATE_CUSTOMER.template, data=encode_body(body))
    except BillbeeInDoubtError as exc:
        return TestResponse(
            "in_doubt", None, None, None, None, None, [], shorten(str(exc), _MAX_MESSAGE), _ms(started)
        )
    payload = json_or_none(response)
    return describe_answer(response.status_code, payload, _ms(started))


def describe_answer(status: int, payload: Any, elapsed_ms: float) -> TestResponse:
    """Turn one answer to a create into a :class:`TestResponse`."""
    what = CREATE_CUSTOMER.key
    try:
        data = unwrap(status, payload, what=what).data
    except BillbeeError as exc:
        return _refused(status, payload, exc, elapsed_ms)
    billbee_id = json_int(data.get("Id")) if isinstance(data, Mapping) else None
    if billbee_id is None:
        error = error_for_status(status, payload, what=what) if status >= 300 else None
        message = str(error) if error else f"{what}: the answer has no customer Id"
        return TestResponse("refused", status, payload, None, None, None, [], message, elapsed_ms)
    return TestResponse("created", status, payload, billbee_id, 0, "NoError", [], None, elapsed_ms)


def _refused(status: int, payload: Any, exc: BillbeeError, elapsed_ms: float) -> TestResponse:
    code = exc.error_code
    if code is None and isinstance(payload, Mapping):
        code = json_int(payload.get("ErrorCode"))
    problems: list[str] = []
    if isinstance(exc, BillbeeInvalidDataError):
        problems = listed_problems([f"{k}: {'; '.join(v)}" for k, v in sorted(exc.field_errors.items())])
    return TestResponse(
        "refused",
        status,
        payload,
        None,
        code,
        error_code_name(code),
        problems,
        shorten(str(exc), _MAX_MESSAGE),
        elapsed_ms,
    )


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000.0
