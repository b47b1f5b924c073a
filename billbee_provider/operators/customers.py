"""Operators that validate and create one Billbee customer.

Both take the request body as the templated field ``customer``: a dict whose strings
are Jinja-rendered, a JSON string (e.g. ``"{{ params.customer | tojson }}"``), or the
path of a ``.json`` template file. The rendered body shows in the task's Rendered
Template view; JSON text is shown there indented, with its umlauts as they are
(:func:`~billbee_provider.customers.json_text.pretty_text`). The create operator pushes
Billbee's answer as the XCom :data:`RESPONSE_XCOM_KEY` in every outcome. Heavy modules
(requests, jsonschema, the hook) are imported inside ``execute`` so that DAG files
importing this module parse fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.api.config import parse_flag
from billbee_provider.customers.json_text import pretty_text
from billbee_provider.customers.outcome import billbee_response, failed_response, field_paths, redacted

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from billbee_provider.api.client import Logger
    from billbee_provider.api.errors import BillbeeError
    from billbee_provider.hooks.billbee import BillbeeHook

#: XCom key of Billbee's answer to the create operator
#: (:func:`~billbee_provider.customers.outcome.billbee_response`).
RESPONSE_XCOM_KEY = "billbee_response"


class BodyCheck(NamedTuple):
    """The rendered ``customer`` checked: the body, or why it cannot be sent."""

    #: the body, when it is valid
    body: dict[str, Any] | None
    #: every problem as ``<path>: <reason>`` (``customer: ...`` for text that is not JSON)
    problems: list[str]
    #: the task failure's text, ``None`` when the body is valid
    failure: str | None


class BillbeeCustomerBodyOperator(BaseOperator):
    """Base of the customer operators: renders, parses and validates ``customer``.

    :param customer: the ``POST /api/v1/customers`` body (templated; dict, JSON string
        or ``.json`` file).
    :param billbee_conn_id: the Billbee connection id (templated).
    """

    template_fields: Sequence[str] = ("customer", "billbee_conn_id")
    template_ext: Sequence[str] = (".json",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"customer": "json"}
    ui_color = "#fde9d4"

    def __init__(
        self,
        *,
        customer: Mapping[str, Any] | str,
        billbee_conn_id: str = "billbee_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer = customer
        self.billbee_conn_id = billbee_conn_id

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the templated fields, then indent a ``customer`` that is JSON text.

        What is stored as the rendered field (the Rendered Template view) is then the
        body indented, with its umlauts as they are instead of ``\\u00fc``; see
        :func:`~billbee_provider.customers.json_text.pretty_text`.
        """
        super().render_template_fields(context, jinja_env)
        if isinstance(self.customer, str):
            self.customer = pretty_text(self.customer)

    def check_customer(self) -> BodyCheck:
        """Parse the rendered ``customer`` and validate it against the Billbee schema."""
        from billbee_provider.api.errors import listed_problems
        from billbee_provider.customers.json_text import JsonTextError
        from billbee_provider.customers.schema import get_validator

        try:
            body = _parse(self.customer)
        except JsonTextError as exc:
            return BodyCheck(None, [f"customer: {exc}"], f"customer: {exc}")
        problems = get_validator().problems(body)
        if problems:
            listing = "\n".join(f"  - {p}" for p in listed_problems(problems))
            failure = (
                f"The customer body has {len(problems)} problem(s); nothing was sent to Billbee:\n{listing}"
            )
            return BodyCheck(None, problems, failure)
        assert isinstance(body, dict)  # the schema demands an object
        return BodyCheck(body, [], None)

    def customer_body(self) -> dict[str, Any]:
        """The rendered body as a dict, after validation against the Billbee schema.

        :raises AirflowFailException: listing every problem (the task is not retried:
            the same input would fail again).
        """
        check = self.check_customer()
        if check.body is None:
            raise AirflowFailException(check.failure)
        return check.body


class BillbeeValidateCustomerOperator(BillbeeCustomerBodyOperator):
    """Validate a customer body against the Billbee schema without sending anything.

    Returns (XCom) ``{"valid": True, "fields": <number of top-level fields>}``; an
    invalid body fails the task with every problem as ``<path>: <reason>``.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate the rendered body."""
        body = self.customer_body()
        self.log.info("Customer body is valid (%d top-level fields)", len(body))
        return {"valid": True, "fields": len(body)}


class BillbeeCreateCustomerOperator(BillbeeCustomerBodyOperator):
    """Create one customer in Billbee (``POST /api/v1/customers``).

    The body is validated first; an invalid body fails the task and nothing is sent.
    Returns (XCom) ``{"Id": <Billbee id>, "Number": <customer number or None>}``, never
    the body. Every outcome, a failure's before the task fails, is also pushed as the
    XCom :data:`RESPONSE_XCOM_KEY` (see :func:`billbee_response`).

    The first try is a single request. Any later try (a retry, or a Clear of the task in
    the UI: Airflow 3 gives the next run of a cleared task the next ``try_number``) first
    looks for the customer an earlier try may have created, matched by e-mail, and acts
    on it as ``if_exists`` says. How it looks: one paged scan of the account
    (``GET /api/v1/customers``, 250 per page), the import's scan, matching the body's own
    e-mails (``Email``, ``Default*MailAddress``) against each customer's, case-insensitively.
    Billbee has no filter by e-mail, and its search (``POST /api/v1/search``) answers
    without e-mails and from a search index, so a search would need one ``GET`` per hit,
    could miss a customer created moments ago or matched only by a ``Default*MailAddress``,
    and could not prove that no second customer has the e-mail. The scan reads the stored
    customers themselves: ``ceil(customers / 250)`` requests at 2/s, 2 s for 1,000
    customers, 20 s for 10,000, 200 s for 100,000; paid only on tries after the first.

    :param dry_run: validate and log what would be sent, without sending (templated;
        a bool or ``"true"``/``"false"``). Kept as ``is_dry_run``: ``BaseOperator``
        already has a ``dry_run()`` method.
    :param if_exists: what a try after the first does when its customer already exists
        (templated): ``skip`` (default) returns the existing customer's Id and Number
        without creating; ``fail`` fails the task naming the Id; ``create`` creates it
        again without looking (the first try's behaviour). Several customers with the
        e-mail fail the task (ambiguous: none is picked); a body without an own e-mail
        fails it (nothing to look for) unless ``create``.
    """

    template_fields: Sequence[str] = (*BillbeeCustomerBodyOperator.template_fields, "is_dry_run", "if_exists")

    def __init__(self, *, dry_run: bool | str = False, if_exists: str = "skip", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.is_dry_run = dry_run
        self.if_exists = if_exists

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, then create the customer (or only log it on a dry run).

        On a try after the first, look for the customer first (see ``if_exists``). Every
        outcome is pushed as the XCom :data:`RESPONSE_XCOM_KEY`, a failure's before the
        task fails.
        """
        push = _ResponsePush(context, self.log)
        try:
            return self._execute(context, push)
        except Exception as exc:
            if not push.done:  # an unforeseen failure: its text may quote values, its type not
                push(billbee_response("failed", message=f"{type(exc).__name__} (see the task log)"))
            raise

    def _execute(self, context: Context, push: _ResponsePush) -> dict[str, Any]:
        from billbee_provider.api.errors import BillbeeError

        check = self.check_customer()
        if check.body is None:
            push(billbee_response("invalid", message=check.failure, problems=check.problems))
            raise AirflowFailException(check.failure)
        body = check.body
        try:
            if_exists = check_if_exists(self.if_exists)
            dry_run = as_bool(self.is_dry_run, "dry_run")
        except AirflowFailException as exc:
            push(billbee_response("invalid", message=str(exc), problems=[str(exc)]))
            raise
        hook = self._hook()
        if dry_run:
            self._log_dry_run(hook, body)
            push(billbee_response("dry_run"))
            return {"dry_run": True, "Id": None, "Number": None}
        try_number = _try_number(context)
        if try_number > 1 and if_exists != "create":
            started = time.monotonic()
            try:
                existing = self._existing(hook, body, try_number, if_exists)
            except AirflowFailException as exc:  # texts name Ids, never values
                push(billbee_response("failed", elapsed_ms=_ms_since(started), message=str(exc)))
                raise
            except BillbeeError as exc:
                push(failed_response(exc, str(exc), _ms_since(started), body))
                raise
            if existing is not None:
                ms = _ms_since(started)
                push(
                    billbee_response("existing", Id=existing["Id"], Number=existing["Number"], elapsed_ms=ms)
                )
                return existing
        started = time.monotonic()
        try:
            status, created = hook.create_customer_with_status(body)
        except BillbeeError as exc:
            failure = _failure_text(exc, body)
            push(failed_response(exc, failure or str(exc), _ms_since(started), body))
            if failure is None:
                raise  # throttled or transient: the task's retries may help
            raise AirflowFailException(failure) from None
        new_id, number, ms = created.get("Id"), created.get("Number"), _ms_since(started)
        push(billbee_response("created", status=status, Id=new_id, Number=number, elapsed_ms=ms))
        self.log.info("Created Billbee customer Id=%s Number=%s", new_id, number)
        return {"Id": new_id, "Number": number}

    def _existing(
        self, hook: BillbeeHook, body: Mapping[str, Any], try_number: int, if_exists: str
    ) -> dict[str, Any] | None:
        """The customer an earlier try created, as the task's result; ``None``: there is none.

        :raises AirflowFailException: no e-mail to look for, several matches, or
            ``if_exists="fail"`` and a match.
        """
        from billbee_provider.api.errors import BillbeeAuthError, BillbeeConfigError
        from billbee_provider.imports.account import customer_emails, scan_account

        where = f"Try {try_number} of this task"
        emails = customer_emails(body)
        if not emails:
            raise AirflowFailException(
                f"{where}: an earlier try may already have created this customer, and the body has no "
                "e-mail (Email or Default*MailAddress) to look it up by; nothing was sent. Check Billbee, "
                "then run with if_exists=create to create it anyway."
            )
        self.log.info("%s: looking for a customer an earlier try may have created (by e-mail)", where)
        try:
            index = scan_account(hook.client, self.log)
        except (BillbeeConfigError, BillbeeAuthError) as exc:
            raise AirflowFailException(str(exc)) from None
        ids = sorted({i for email in emails for i in index.existing(email)})
        if not ids:
            self.log.info("%s: no customer in Billbee has this e-mail; creating it", where)
            return None
        if len(ids) > 1:
            raise AirflowFailException(
                f"{where}: {len(ids)} customers in Billbee have this customer's e-mail (Ids "
                f"{', '.join(map(str, ids))}); not creating another and not picking one. Resolve it in "
                "Billbee, or run with if_exists=create."
            )
        if if_exists == "fail":
            raise AirflowFailException(
                f"{where}: the customer already exists in Billbee (Id={ids[0]}), probably created by an "
                "earlier try; if_exists=fail, so nothing was sent."
            )
        number = hook.get_customer(ids[0]).get("Number")
        self.log.info(
            "%s: the customer already exists in Billbee (Id=%s Number=%s); not created again (skip)",
            where,
            ids[0],
            number,
        )
        return {"Id": ids[0], "Number": number}

    def _hook(self) -> BillbeeHook:
        from billbee_provider.hooks.billbee import BillbeeHook

        return BillbeeHook(billbee_conn_id=self.billbee_conn_id)

    def _log_dry_run(self, hook: BillbeeHook, body: Mapping[str, Any]) -> None:
        # Field paths only at INFO: the values are personal data. DEBUG shows the body.
        from billbee_provider.api.errors import BillbeeConfigError

        try:
            url = hook.billbee_config.base_url + "/api/v1/customers"
        except BillbeeConfigError as exc:
            self.log.warning("Dry run: the connection is not usable yet: %s", exc)
            url = f"<base url of connection {self.billbee_conn_id!r}>/api/v1/customers"
        headers = "X-Billbee-Api-Key: ***, Authorization: Basic ***, Content-Type: application/json"
        self.log.info(
            "Dry run: would POST %s (%s) with fields: %s", url, headers, ", ".join(field_paths(body))
        )
        self.log.debug("Dry run body: %s", json.dumps(body, ensure_ascii=False))


def _failure_text(exc: BillbeeError, body: Mapping[str, Any]) -> str | None:
    """The task failure's text for an error retrying cannot fix; ``None`` for any other.

    Values of ``body`` quoted in Billbee's messages are replaced (see
    :func:`~billbee_provider.customers.outcome.redacted`).
    """
    from billbee_provider.api.errors import (
        BillbeeAuthError,
        BillbeeConfigError,
        BillbeeInDoubtError,
        BillbeeInvalidDataError,
    )

    if isinstance(exc, BillbeeInDoubtError):
        # A task retry would send the body again and could create a duplicate.
        return f"{exc}\nCheck in Billbee whether the customer exists before running this task again."
    if isinstance(exc, BillbeeConfigError | BillbeeAuthError | BillbeeInvalidDataError):
        return redacted(str(exc), body)
    return None


class _ResponsePush:
    """Pushes the XCom :data:`RESPONSE_XCOM_KEY` through the context's task instance, if any.

    A push that fails is logged, not raised: it must not hide the outcome it reports.
    """

    def __init__(self, context: Mapping[str, Any], log: Logger) -> None:
        self._xcom_push = getattr(context.get("ti"), "xcom_push", None)
        self._log = log
        self.done = False

    def __call__(self, response: dict[str, Any]) -> None:
        self.done = True
        if not callable(self._xcom_push):
            return
        try:
            self._xcom_push(key=RESPONSE_XCOM_KEY, value=response)
        except Exception as exc:
            self._log.warning("Could not push the XCom %r: %s", RESPONSE_XCOM_KEY, type(exc).__name__)


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000.0


#: What a customer operator or import does with a customer that already exists.
IF_EXISTS_VALUES = ("skip", "fail", "create")


def check_if_exists(value: object) -> str:
    """The rendered ``if_exists`` setting, checked.

    :raises AirflowFailException: for anything but ``skip``, ``fail`` or ``create`` (any case).
    """
    from billbee_provider.api.errors import shorten

    text = str(value).strip().lower()
    if text not in IF_EXISTS_VALUES:
        raise AirflowFailException(
            f"if_exists must be one of {', '.join(IF_EXISTS_VALUES)}, got {shorten(str(value), 40)!r}"
        )
    return text


def _try_number(context: Mapping[str, Any]) -> int:
    """This run's try number (1 for the first try; also when the context has no task instance)."""
    ti = context.get("ti")
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) and not isinstance(number, bool) else 1


def parse_body(value: object) -> object:
    """Turn the rendered ``customer`` field into a Python object.

    JSON text is read by :func:`~billbee_provider.customers.json_text.loads_strict`: a
    key given twice, nesting deeper than Python's stack and integers of more than 4,300
    digits are refused, like text that is not JSON.

    :raises AirflowFailException: for such text, in one line naming the position or
        the key path, never a value (a task retry cannot fix it).
    """
    from billbee_provider.customers.json_text import JsonTextError

    try:
        return _parse(value)
    except JsonTextError as exc:
        raise AirflowFailException(f"customer: {exc}") from None


def _parse(value: object) -> object:
    """:func:`parse_body` without the task failure.

    :raises JsonTextError: for text that is not acceptable JSON.
    """
    from billbee_provider.customers.json_text import loads_strict

    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        return loads_strict(value)
    return value


def as_bool(value: object, name: str) -> bool:
    """Read a bool that may arrive as rendered template text (see :func:`parse_flag`).

    :param value: a bool, or text such as ``"true"``/``"False"``/``"0"``.
    :param name: the parameter's name, for the message.
    :raises AirflowFailException: for anything else, empty text and ``"None"`` included
        (a setting that renders empty is a mistake, not a silent ``False``).
    """
    try:
        return parse_flag(value)
    except ValueError as exc:
        raise AirflowFailException(f"{name} {exc}") from None
