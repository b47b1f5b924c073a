"""``POST /api/v1/search`` over the sandbox's customers.

Billbee's ``Term`` is a Lucene query. The sandbox understands the common part of it:
each whitespace-separated word (quotes, parentheses, ``+``, field prefixes such as
``name:``, wildcards and boosts removed; AND/OR ignored; negated words dropped)
must occur, case-insensitively, in the customer's Name, Email, Number or address
text. A hit
has only ``{Id, Name, Addresses, Number}``, Number as a string (Swagger
``CustomerResult``, PHP SDK fixture ``Model__Search__customer_result.json``).
"""

from __future__ import annotations

import re
from typing import Any

_OPERATORS = frozenset({"and", "or", "not", "&&", "||", "!"})
_FIELD_PREFIX = re.compile(r"^[A-Za-z_][\w.]*:")
_BOOST_OR_FUZZ = re.compile(r"[~^][0-9.]*$")
_PUNCTUATION = "()[]{}\"'*?"


def terms(query: str) -> list[str]:
    """The plain, case-folded words of a Lucene ``query`` that a hit must contain.

    Negated words (``-word``, ``!word``, ``NOT word``) are dropped rather than
    enforced: the sandbox only narrows by what must be there.
    """
    words = []
    negate_next = False
    for token in query.split():
        negated, negate_next = negate_next or token.startswith(("-", "!")), False
        word = _FIELD_PREFIX.sub("", token.lstrip("+-!(")).strip(_PUNCTUATION)
        word = _BOOST_OR_FUZZ.sub("", word).strip(_PUNCTUATION).replace("\\", "")
        if word.casefold() == "not":
            negate_next = True
        elif word and not negated and word.casefold() not in _OPERATORS:
            words.append(word.casefold())
    return words


def search_customers(
    query: str, customers: list[tuple[dict[str, Any], list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Customer hits for ``query`` among ``(customer, addresses)`` pairs, in their order.

    An empty query finds nothing.
    """
    words = terms(query)
    if not words:
        return []
    hits = []
    for customer, addresses in customers:
        haystack = _haystack(customer, addresses)
        if all(word in haystack for word in words):
            hits.append(_hit(customer, addresses))
    return hits


def address_line(address: dict[str, Any]) -> str:
    """One address as a line, e.g. ``"Firma, Max Muster, Hauptstr. 1, 10115 Berlin, DE"``."""
    parts = [
        address.get("Company"),
        _join(address.get("FirstName"), address.get("LastName")),
        address.get("Name2"),
        _join(address.get("Street"), address.get("Housenumber")),
        address.get("AddressAddition"),
        _join(address.get("Zip"), address.get("City")),
        address.get("State"),
        address.get("CountryCode"),
    ]
    return ", ".join(p for p in parts if p)


def _hit(customer: dict[str, Any], addresses: list[dict[str, Any]]) -> dict[str, Any]:
    number = customer.get("Number")
    return {
        "Id": customer["Id"],
        "Name": customer.get("Name") or "",
        "Addresses": "; ".join(address_line(a) for a in addresses),
        "Number": "" if number is None else str(number),
    }


def _haystack(customer: dict[str, Any], addresses: list[dict[str, Any]]) -> str:
    fields = [customer.get("Name"), customer.get("Email"), customer.get("Number")]
    for address in addresses:
        fields.extend(value for value in address.values() if isinstance(value, str))
    return "\n".join(str(f) for f in fields if f is not None).casefold()


def _join(*parts: Any) -> str:
    return " ".join(str(p) for p in parts if p)
