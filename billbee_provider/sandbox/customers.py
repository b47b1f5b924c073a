"""Building and changing customer and address records the way Billbee does.

A create turns ``Email``/``Tel1``/``Tel2`` into ``MetaData`` entries and points the
``Default*`` contact fields at them, as the PHP SDK fixtures show: TypeId 1 "EMail",
TypeId 2 "Phone", ``SubType`` ``""``, one entry per distinct value. Business rules
that are not type errors (customer Type, AddressType, CountryCode) are reported as
text for an ``ErrorCode`` 11 InvalidData answer.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from billbee_provider.sandbox.models import ADDRESS, CUSTOMER, DEFAULT_CONTACTS, blank

#: MetaData TypeIds (PHP SDK ``CustomerMetaData.php``); no fax type is documented.
EMAIL_TYPE, PHONE_TYPE = 1, 2
TYPE_NAMES = {EMAIL_TYPE: "EMail", PHONE_TYPE: "Phone"}
CUSTOMER_TYPES = {0: "end customer", 1: "business customer"}
ADDRESS_TYPES = {1: "invoice address", 2: "shipping address"}

_COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")
#: Customer fields copied from a request as they are (the rest is derived).
_PLAIN_FIELDS = (
    "Name",
    "Email",
    "Tel1",
    "Tel2",
    "Number",
    "PriceGroupId",
    "LanguageId",
    "VatId",
    "Type",
    "ArchivedAt",
    "RestoredAt",
)
#: Address fields a request may set; Id and CustomerId "cannot be changed" (Swagger).
_ADDRESS_FIELDS = tuple(n for n in ADDRESS.names if n not in ("Id", "CustomerId"))


class IdSource(Protocol):
    """Where new ids come from (the store's sequences)."""

    def next_id(self, kind: str) -> int:
        """Allocate the next id of sequence ``kind``."""
        ...


def customer_problem(bound: dict[str, Any]) -> str | None:
    """Why a bound customer (or create) body is not acceptable, or ``None``."""
    kind = bound.get("Type")
    if kind is not None and kind not in CUSTOMER_TYPES:
        return f"Type: {kind} is not a customer type; use {_choices(CUSTOMER_TYPES)}."
    address = bound.get("Address")
    return None if address is None else address_problem(address, prefix="Address.")


def address_problem(bound: dict[str, Any], prefix: str = "") -> str | None:
    """Why a bound address is not acceptable, or ``None``."""
    kind = bound.get("AddressType")
    if kind is not None and kind not in ADDRESS_TYPES:
        return f"{prefix}AddressType: {kind} is not an address type; use {_choices(ADDRESS_TYPES)}."
    country = bound.get("CountryCode")
    if country and not _COUNTRY_CODE.fullmatch(country):
        return f"{prefix}CountryCode: {country!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE)."
    return None


def new_customer(bound: dict[str, Any], ids: IdSource) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The customer record and its first address (if any) for a create body.

    ``Number`` stays ``None`` when not given: the store assigns the next free one.
    """
    customer = _customer_fields(bound, ids.next_id("customer"))
    _set_contacts(customer, bound, ids, previous=[])
    address = bound.get("Address")
    addresses = [] if address is None else [new_address(address, customer["Id"], ids)]
    return customer, addresses


def updated_customer(current: dict[str, Any], bound: dict[str, Any], ids: IdSource) -> dict[str, Any]:
    """``current`` replaced by a PUT body; the Id stays, an omitted Number is kept."""
    customer = _customer_fields(bound, current["Id"])
    if customer["Number"] is None:
        customer["Number"] = current.get("Number")
    _set_contacts(customer, bound, ids, previous=current.get("MetaData") or [])
    return customer


def new_address(bound: dict[str, Any], customer_id: int, ids: IdSource) -> dict[str, Any]:
    """A new address of ``customer_id``; AddressType defaults to 1 (invoice address)."""
    address = blank(ADDRESS)
    address.update({name: bound.get(name) for name in _ADDRESS_FIELDS})
    address["AddressType"] = bound.get("AddressType") or 1
    address["Id"] = ids.next_id("address")
    address["CustomerId"] = customer_id
    return address


def replaced_address(current: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any]:
    """PUT: "Fields you do not send will become empty" (Swagger); AddressType is kept if omitted."""
    address = blank(ADDRESS)
    address.update({name: bound.get(name) for name in _ADDRESS_FIELDS})
    address["AddressType"] = bound.get("AddressType") or current.get("AddressType")
    address["Id"], address["CustomerId"] = current["Id"], current["CustomerId"]
    return address


def patched_address(current: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any]:
    """PATCH: only the fields sent change; Id and CustomerId cannot be changed."""
    address = dict(current)
    address.update({name: bound[name] for name in _ADDRESS_FIELDS if name in bound})
    address["AddressType"] = address.get("AddressType") or current.get("AddressType")
    return address


def _customer_fields(bound: dict[str, Any], customer_id: int) -> dict[str, Any]:
    customer = blank(CUSTOMER)
    customer.update({name: bound.get(name) for name in _PLAIN_FIELDS})
    customer["Id"] = customer_id
    if customer["Type"] is None:
        customer["Type"] = 0
    return customer


def _set_contacts(
    customer: dict[str, Any], bound: dict[str, Any], ids: IdSource, previous: list[dict[str, Any]]
) -> None:
    """Fill ``MetaData`` and the ``Default*`` fields from the contact fields of ``bound``.

    Entries of ``previous`` with the same type and value keep their ids, so an update
    that does not change an e-mail address does not renumber it.
    """
    entries: list[dict[str, Any]] = []

    def entry(type_id: int | None, value: str, sub_type: str | None = None) -> dict[str, Any]:
        for known in [*entries, *previous]:
            if (known.get("TypeId"), known.get("Value")) == (type_id, value):
                if known not in entries:
                    entries.append(known)
                return known
        made = {
            "Id": ids.next_id("meta_data"),
            "TypeId": type_id,
            "TypeName": TYPE_NAMES.get(type_id or 0),
            "SubType": sub_type or "",
            "Value": value,
        }
        entries.append(made)
        return made

    mail = entry(EMAIL_TYPE, customer["Email"]) if customer["Email"] else None
    phone1 = entry(PHONE_TYPE, customer["Tel1"]) if customer["Tel1"] else None
    phone2 = entry(PHONE_TYPE, customer["Tel2"]) if customer["Tel2"] else None
    defaults = dict(zip(DEFAULT_CONTACTS, (mail, mail, mail, phone1, phone2, None), strict=True))
    for item in bound.get("MetaData") or []:
        if item and item.get("Value"):
            entry(item.get("TypeId"), item["Value"], item.get("SubType"))
    for name in DEFAULT_CONTACTS:
        given = bound.get(name)
        if given and given.get("Value"):
            type_id = given.get("TypeId") or (EMAIL_TYPE if "Mail" in name else PHONE_TYPE)
            defaults[name] = entry(type_id, given["Value"], given.get("SubType"))
    customer.update(defaults)
    customer["MetaData"] = entries


def _choices(names: dict[int, str]) -> str:
    return " or ".join(f"{code} ({name})" for code, name in names.items())
