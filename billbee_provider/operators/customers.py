"""Operators that validate and create one Billbee customer.

Both take the request body as the templated field ``customer``: a dict whose strings
are Jinja-rendered, a JSON string (e.g. ``"{{ params.customer | tojson }}"``), or the
path of a ``.json`` template file. The rendered body shows in the task's Rendered
Template view. Heavy modules (requests, jsonschema, the hook) are imported inside
``execute`` so that DAG files importing this module parse fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.api.config import parse_flag

if TYPE_CHECKING:
    from airflow.sdk import Context

    from billbee_provider.hooks.billbee import BillbeeHook


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

    def customer_body(self) -> dict[str, Any]:
        """The rendered body as a dict, after validation against the Billbee schema.

        :raises AirflowFailException: listing every problem (the task is not retried:
            the same input would fail again).
        """
        from billbee_provider.customers.schema import get_validator

        body = parse_body(self.customer)
        problems = get_validator().problems(body)
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise AirflowFailException(
                f"The customer body has {len(problems)} problem(s); nothing was sent to Billbee:\n{listing}"
            )
        assert isinstance(body, dict)  # the schema demands an object
        return body


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
    the body.

    :param dry_run: validate and log what would be sent, without sending (templated;
        a bool or ``"true"``/``"false"``). Kept as ``is_dry_run``: ``BaseOperator``
        already has a ``dry_run()`` method.
    """

    template_fields: Sequence[str] = (*BillbeeCustomerBodyOperator.template_fields, "is_dry_run")

    def __init__(self, *, dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.is_dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, then create the customer (or only log it on a dry run)."""
        body = self.customer_body()
        hook = self._hook()
        if as_bool(self.is_dry_run, "dry_run"):
            self._log_dry_run(hook, body)
            return {"dry_run": True, "Id": None, "Number": None}
        created = _create(hook, body)
        self.log.info("Created Billbee customer Id=%s Number=%s", created.get("Id"), created.get("Number"))
        return {"Id": created.get("Id"), "Number": created.get("Number")}

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


def _create(hook: BillbeeHook, body: Mapping[str, Any]) -> dict[str, Any]:
    """Send the create and turn errors that retrying cannot fix into task failures."""
    from billbee_provider.api.errors import (
        BillbeeAuthError,
        BillbeeConfigError,
        BillbeeInDoubtError,
        BillbeeInvalidDataError,
    )

    try:
        return hook.create_customer(body)
    except BillbeeInDoubtError as exc:
        # A task retry would send the body again and could create a duplicate.
        raise AirflowFailException(
            f"{exc}\nCheck in Billbee whether the customer exists before running this task again."
        ) from None
    except (BillbeeConfigError, BillbeeAuthError, BillbeeInvalidDataError) as exc:
        raise AirflowFailException(str(exc)) from None


def parse_body(value: object) -> object:
    """Turn the rendered ``customer`` field into a Python object.

    :raises AirflowFailException: for text that is not JSON (its content is not echoed).
    """
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise AirflowFailException(
                f"customer is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
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
