"""The Billbee API endpoints the sandbox emulates (customers, addresses, search).

Every route runs behind :func:`~billbee_provider.sandbox.gate.gate`. Bodies are bound
first and looked-up records second, as ASP.NET binds before the action runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from billbee_provider.api.errors import ErrorCode
from billbee_provider.sandbox.binding import JSON_MEDIA_TYPES, ROOT_KEY, BindingError, bind_body, media_type
from billbee_provider.sandbox.context import SandboxContext, context_of, exchange_of
from billbee_provider.sandbox.customers import (
    address_problem,
    customer_problem,
    new_address,
    new_customer,
    patched_address,
    replaced_address,
    updated_customer,
)
from billbee_provider.sandbox.gate import gate
from billbee_provider.sandbox.models import ADDRESS, CREATE_CUSTOMER, CUSTOMER, SEARCH, Model, present
from billbee_provider.sandbox.responses import (
    Reject,
    bare,
    envelope,
    invalid_data,
    message,
    model_state,
    not_found,
    paged,
)
from billbee_provider.sandbox.search import search_customers

MAX_PAGE_SIZE = 250
DEFAULT_PAGE_SIZE = 50
INTERNAL_ERROR_MESSAGE = "An internal error occurred. (sandbox: --error-rate)"
_INT32 = re.compile(r"\s*[+-]?[0-9]{1,10}\s*\Z")
_MAX_ID = 2**63 - 1

Record = dict[str, Any]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(gate)])


@router.get("/customers")
async def list_customers(request: Request) -> Response:
    """``Customer_GetAll``: a page of customers ordered by Id."""
    page, size = _paging(request)
    rows, total = context_of(request).store.customers_page((page - 1) * size, size)
    return paged([present(CUSTOMER, r) for r in rows], page, size, total)


@router.post("/customers")
async def create_customer(request: Request) -> Response:
    """``Customer_Create``: store the customer and its address; answer it with its new Id."""
    context = context_of(request)
    bound, raw = await _read(request, CREATE_CUSTOMER)
    problem = customer_problem(bound)
    if problem:
        return invalid_data(problem)
    if context.faults.error_now():
        return envelope(None, code=ErrorCode.InternalError, error=INTERNAL_ERROR_MESSAGE)
    customer, addresses = new_customer(bound, context.store)
    context.store.insert_customer(customer, addresses, raw)
    exchange = exchange_of(request)
    exchange.created_id = customer["Id"]
    # Decided only now: a dropped create has committed, exactly the in-doubt case.
    exchange.drop = context.faults.drop_now()
    return envelope(present(CUSTOMER, customer))


@router.get("/customers/{id:int}")
async def get_customer(request: Request) -> Response:
    """``Customer_GetOne``."""
    customer = _customer(context_of(request), _id(request))
    return envelope(present(CUSTOMER, customer))


@router.put("/customers/{id:int}")
async def update_customer(request: Request) -> Response:
    """``Customer_Update``: replace the customer's fields (the Id in the path wins)."""
    context = context_of(request)
    bound, _ = await _read(request, CUSTOMER)
    current = _customer(context, _id(request))
    problem = customer_problem(bound)
    if problem:
        return invalid_data(problem)
    customer = updated_customer(current, bound, context.store)
    context.store.replace_customer(customer)
    return envelope(present(CUSTOMER, customer))


@router.get("/customers/{id:int}/addresses")
async def list_addresses(request: Request) -> Response:
    """``Customer_GetCustomerAddresses``: a page of the customer's addresses."""
    context = context_of(request)
    customer_id = _customer(context, _id(request))["Id"]
    page, size = _paging(request)
    rows, total = context.store.addresses_page(customer_id, (page - 1) * size, size)
    return paged([present(ADDRESS, r) for r in rows], page, size, total)


@router.post("/customers/{id:int}/addresses")
async def add_address(request: Request) -> Response:
    """``Customer_AddCustomerAddress``: "If Id is set, the addition will be stopped" (Swagger)."""
    context = context_of(request)
    bound, _ = await _read(request, ADDRESS)
    customer_id = _customer(context, _id(request))["Id"]
    if bound.get("Id") is not None:
        return invalid_data("Id: must not be set when adding an address; the addition was stopped.")
    problem = address_problem(bound)
    if problem:
        return invalid_data(problem)
    address = new_address(bound, customer_id, context.store)
    context.store.insert_address(address)
    return envelope(present(ADDRESS, address))


@router.get("/customers/addresses/{id:int}")
async def get_address(request: Request) -> Response:
    """``Customer_GetCustomerAddress``."""
    return envelope(present(ADDRESS, _address(context_of(request), _id(request))))


@router.put("/customers/addresses/{id:int}")
async def put_address(request: Request) -> Response:
    """``Customer_UpdateAddress``: fields not sent become empty."""
    return await _change_address(request, replaced_address)


@router.patch("/customers/addresses/{id:int}")
async def patch_address(request: Request) -> Response:
    """``Customer_PatchAddress``: only the fields sent change."""
    return await _change_address(request, patched_address)


@router.post("/search")
async def search(request: Request) -> Response:
    """``Search_Search``: answered bare, not enveloped, like real Billbee (API-FACTS)."""
    bound, _ = await _read(request, SEARCH)
    types = {str(t).casefold() for t in bound.get("Type") or [] if t}
    customers: list[dict[str, Any]] = []
    if not types or "customer" in types:
        customers = search_customers(bound.get("Term") or "", context_of(request).store.all_customers())
    return bare({"Products": [], "Orders": [], "Customers": customers})


async def _change_address(request: Request, change: Callable[[Record, Record], Record]) -> Response:
    context = context_of(request)
    bound, _ = await _read(request, ADDRESS)
    current = _address(context, _id(request))
    problem = address_problem(bound)
    if problem:
        return invalid_data(problem)
    address = change(current, bound)
    context.store.replace_address(address)
    return envelope(present(ADDRESS, address))


async def _read(request: Request, model: Model) -> tuple[dict[str, Any], bytes]:
    """Bind the JSON body to ``model``; return it with the raw bytes.

    :raises Reject: 400 for an empty or unbindable body, 415 for a non-JSON type.
    """
    body = await request.body()
    if not body.strip():
        raise Reject(model_state({ROOT_KEY: ["A JSON object is required as the request body."]}))
    kind, charset = media_type(request.headers.get("content-type"))
    if kind not in JSON_MEDIA_TYPES:
        shown = kind or "application/octet-stream"
        raise Reject(
            message(415, f"The request entity's media type '{shown}' is not supported for this resource.")
        )
    try:
        return bind_body(body, charset, model), body
    except BindingError as exc:
        raise Reject(model_state(exc.model_state)) from None


def _paging(request: Request) -> tuple[int, int]:
    """``page`` (from 1) and ``pageSize`` (1..250, default 50); names ignore case.

    :raises Reject: 400 with ModelState for a value that is not an int or out of range.
    """
    given = {k.casefold(): v for k, v in request.query_params.multi_items()}
    errors: dict[str, list[str]] = {}
    values = {}
    for name, default, low, high in (
        ("page", 1, 1, 2**31 - 1),
        ("pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    ):
        text = given.get(name.casefold(), "")
        if not text.strip():
            values[name] = default
        elif not _INT32.match(text) or not low <= int(text) <= high:
            errors[name] = [
                f"The value '{text}' is not valid for {name}: use a whole number from {low} to {high}."
            ]
        else:
            values[name] = int(text)
    if errors:
        raise Reject(model_state(errors))
    return values["page"], values["pageSize"]


def _id(request: Request) -> int:
    value = int(request.path_params["id"])
    if value > _MAX_ID:  # beyond Int64: no such record can exist
        raise Reject(not_found("Record"))
    return value


def _customer(context: SandboxContext, customer_id: int) -> dict[str, Any]:
    customer = context.store.customer(customer_id)
    if customer is None:
        raise Reject(not_found(f"Customer {customer_id}"))
    return customer


def _address(context: SandboxContext, address_id: int) -> dict[str, Any]:
    address = context.store.address(address_id)
    if address is None:
        raise Reject(not_found(f"Address {address_id}"))
    return address
