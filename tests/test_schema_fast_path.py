"""The validator's fast path (``customers/schema_fast.py``) never accepts what the schema refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbee_provider.customers.schema import CHECKED_FORMATS, CustomerValidator, get_validator, load_schema
from billbee_provider.customers.schema_fast import compile_fast_check
from tests.fuzz.strategies import flat_bodies, json_values, nested

VALID: dict[str, Any] = {
    "Name": "Jürgen Müßig",
    "Email": "kunde@example.de",
    "Type": 0,
    "Tel1": "+49 221 1234567",
    "Address": {"FirstName": "Jürgen", "City": "Köln", "CountryCode": "DE", "AddressType": 1},
}

FAST = compile_fast_check(load_schema(), CHECKED_FORMATS)


def full_problems(body: object) -> list[str]:
    validator = get_validator()
    return [str(e.message) for e in validator._validator.iter_errors(body)]


def test_the_customer_schema_has_a_fast_path_and_a_valid_body_takes_it() -> None:
    assert FAST is not None
    assert FAST(VALID) and get_validator().problems(VALID) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("Type", True),  # a bool is no integer
        ("Type", 7),
        ("Type", 0.0),  # the schema may accept it; the fast path is not sure
        ("Type", "0"),
        ("Email", "kunde(at)example.de"),
        ("Emial", "x@example.de"),
        ("Address.CountryCode", "Deutschland"),
        ("Address.AddressType", False),
        ("Address.Unknown", 1),
        ("Address", []),
        ("Name", None),
        ("Type", 2**70),
    ],
)
def test_a_doubtful_value_takes_the_full_validator(path: str, value: Any) -> None:
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    node[last] = value
    assert FAST is not None
    if FAST(body):  # only when the schema accepts it
        assert full_problems(body) == []
    else:
        assert get_validator().problems(body) == sorted(get_validator().problems(body))


def test_a_schema_with_an_unknown_keyword_gets_no_fast_path() -> None:
    assert compile_fast_check({"type": "object", "required": ["Email"]}, CHECKED_FORMATS) is None
    assert compile_fast_check({"$ref": "https://example.com/s.json"}, CHECKED_FORMATS) is None
    extra = CustomerValidator({"type": "object", "required": ["Email"]})
    assert extra.problems({})  # the full validator names it


@given(st.one_of(flat_bodies().map(nested), json_values()))
def test_the_fast_path_accepts_only_what_the_schema_accepts(body: Any) -> None:
    assert FAST is not None
    if FAST(body):
        assert full_problems(body) == []


@given(flat_bodies().map(nested), st.sampled_from(["Type", "Email", "Address", "Name"]), json_values())
def test_any_value_in_a_known_field(body: dict[str, Any], field: str, value: Any) -> None:
    body[field] = value
    assert FAST is not None
    if FAST(body):
        assert full_problems(body) == []
