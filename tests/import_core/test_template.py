"""Tests of :mod:`billbee_provider.customers.template`: the request-body template."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billbee_provider.customers.schema import get_validator
from billbee_provider.customers.template import (
    BodyTemplate,
    RowTemplateError,
    TemplateError,
    template_from_json,
)

EXAMPLE = {
    "Name": "{{ row.first_name }} {{ row.last_name }}",
    "Email": "{{ row.email | lower }}",
    "Type": "{{ row.kind | int }}",
    "Address": {
        "FirstName": "{{ row.first_name }}",
        "LastName": "{{ row.last_name }}",
        "City": "{{ row.city }}",
        "CountryCode": "{{ row.country | upper }}",
        "AddressType": 1,
    },
}

ROW = {
    "first_name": "Jürgen",
    "last_name": "Weiß",
    "email": "Juergen.Weiss@Example.DE",
    "kind": "1",
    "city": "Köln",
    "country": "de",
}


def test_example_template_renders_a_valid_body() -> None:
    body = BodyTemplate(EXAMPLE).render(ROW)
    assert body == {
        "Name": "Jürgen Weiß",
        "Email": "juergen.weiss@example.de",
        "Type": 1,
        "Address": {
            "FirstName": "Jürgen",
            "LastName": "Weiß",
            "City": "Köln",
            "CountryCode": "DE",
            "AddressType": 1,
        },
    }
    assert get_validator().problems(body) == []


@pytest.mark.parametrize(
    ("leaf", "row", "value"),
    [
        ("{{ row.n }}", {"n": 7}, 7),
        ("{{ row.n }}", {"n": "7"}, "7"),
        ("  {{ row.n }}\n", {"n": 7}, 7),
        ("{{- row.n -}}", {"n": 7}, 7),
        ("{{ row.n | int }}", {"n": "7"}, 7),
        ("{{ row.n + 1 }}", {"n": 7}, 8),
        ("{{ row.flag }}", {"flag": False}, False),
        ("{{ row.price }}", {"price": 1.5}, 1.5),
        ("{{ row.amount }}", {"amount": Decimal("12")}, 12),
        ("{{ row.amount }}", {"amount": Decimal("1.25")}, 1.25),
        ("{{ row.since }}", {"since": datetime(2024, 5, 1, 9, 30)}, "2024-05-01T09:30:00"),
        ("{{ row.day }}", {"day": date(2024, 5, 1)}, "2024-05-01"),
        ("{{ row.tags }}", {"tags": ("a", "b")}, ["a", "b"]),
        ("{{ row.addr }}", {"addr": {"City": "Köln"}}, {"City": "Köln"}),
        ("{{ row.addr.City }}", {"addr": {"City": "Köln"}}, "Köln"),
        ("{{ row['first name'] }}", {"first name": "Jürgen"}, "Jürgen"),
        ("{{ row._id }}", {"_id": 42}, 42),
        ("{{ row.plain }}", {"plain": "a column"}, "a column"),
        ("{{ row.values }}", {"values": "a column"}, "a column"),
        ("{{ row.items }}", {"items": "a column, not dict.items"}, "a column, not dict.items"),
        ("Nr. {{ row.n }}", {"n": 7}, "Nr. 7"),
        ("{{ row.a }}{{ row.b }}", {"a": 1, "b": 2}, "12"),
        ("{{ row.a }} and {{ row.b }}", {"a": 1, "b": 2}, "1 and 2"),
        ("{% if row.kind == 'B2B' %}1{% else %}0{% endif %}", {"kind": "B2B"}, "1"),
    ],
)
def test_single_expressions_keep_their_type_mixed_leaves_are_text(
    leaf: str, row: dict[str, Any], value: Any
) -> None:
    body = BodyTemplate({"X": leaf}).render(row)
    assert body == {"X": value}
    assert type(body["X"]) is type(value)


def test_quotes_and_braces_in_data_cannot_break_the_body() -> None:
    nasty = 'Müller "der Große" {x} }}{{ row.secret }} \\", "Type": 1, {'
    template = BodyTemplate({"Name": "{{ row.name }}", "Address": {"Company": "Firma {{ row.name }}"}})
    body = template.render({"name": nasty, "secret": "leaked"})
    assert body == {"Name": nasty, "Address": {"Company": f"Firma {nasty}"}}
    assert json.loads(json.dumps(body, ensure_ascii=False)) == body


def test_empty_results_are_left_out() -> None:
    template = BodyTemplate(
        {
            "Name": "{{ row.missing }}",
            "Email": "{{ row.blank }}",
            "Tel1": "{{ row.missing | lower }}",
            "Tel2": "{{ row.missing.deeper.still }}",
            "VatId": "{{ row.none }}",
            "Id": None,
            "Address": {"City": "{{ row.missing }}", "Zip": "  "},
            "MetaData": [
                {"Value": "{{ row.missing }}"},
                {"TypeId": 1, "Value": "{{ row.tel }}"},
                "{{ row.blank }}",
            ],
            "DefaultFax": {"Value": "{{ row.missing }}"},
        }
    )
    body = template.render({"blank": "  ", "none": None, "tel": "+49 221 1"})
    assert body == {"MetaData": [{"TypeId": 1, "Value": "+49 221 1"}]}
    assert template.render({}) == {"MetaData": [{"TypeId": 1}]}


def test_constants_pass_through() -> None:
    body = BodyTemplate({"Type": 0, "Address": {"AddressType": 2, "CountryCode": "DE"}, "Flag": True}).render(
        {}
    )
    assert body == {"Type": 0, "Address": {"AddressType": 2, "CountryCode": "DE"}, "Flag": True}


def test_compiled_once_rendered_many_times() -> None:
    template = BodyTemplate(EXAMPLE)
    rows = [dict(ROW, email=f"K{i}@Example.de", kind=str(i % 2)) for i in range(2_000)]
    started = time.perf_counter()
    bodies = [template.render(row) for row in rows]
    assert bodies[1999]["Email"] == "k1999@example.de"
    assert bodies[1999]["Type"] == 1
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"Address": {"City": "{{ row.city }"}}, "Address.City: unexpected '}'"),
        ({"Name": "{{ row.name | no_such_filter }}"}, "Name: No filter named 'no_such_filter'."),
        ({"Name": "{% for x in row %}"}, "Name: Unexpected end of template. Jinja was looking for"),
        (
            {"MetaData": [{"Value": "{{ }}"}]},
            "MetaData.0.Value: Expected an expression, got 'end of print statement'",
        ),
        ({"Name": "{{ row.__class__.__mro__ }}"}, "Name: access to '__mro__' is not allowed"),
        ({"Name": "{{ row.name.__class__ }}"}, "Name: access to '__class__' is not allowed"),
        ({"Name": "{{ row['__class__'] }}"}, "Name: access to '__class__' is not allowed"),
        ({"Name": "{{ row.__init__.__globals__ }}"}, "Name: access to '__globals__' is not allowed"),
        ({"Name": {1: "x"}}, "Name: object keys must be strings"),
        ({"Name": b"x"}, "Name: a bytes is not a JSON value"),
    ],
)
def test_compile_errors_name_the_leaf(template: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        BodyTemplate(template)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        ("{{ row.n / 0 }}", "division by zero"),
        ("{{ row.name + 1 }}", 'can only concatenate str (not "int") to str'),
        (
            "{{ row._fields }}",
            "access to attribute '_fields' is not allowed; for a column of that name write row['_fields']",
        ),
        ("{{ row.name.mro() }}", "'str object' has no attribute 'mro'"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range() of more than 10000 items is not allowed"),
        ("{% for i in range(5000) %}{{ row.name }}{% endfor %}", "renders more than 10000 characters"),
        ("{{ row.name * 10**6 }}", "repeating to more than 10000 items is not allowed"),
        ("{{ 'x' * 10**9 }}", "repeating to more than 10000 items is not allowed"),
        ("{{ 10 ** 100000 }}", "a power of more than 4096 bits is not allowed"),
        (
            "{{ row.name.encode('ascii') }}",
            "UnicodeEncodeError (details withheld: they may contain row data)",
        ),
    ],
)
def test_render_errors_name_the_leaf_and_never_the_data(leaf: str, reason: str) -> None:
    template = BodyTemplate({"Address": {"City": leaf}})
    started = time.perf_counter()
    with pytest.raises(RowTemplateError) as raised:
        template.render({"n": 1, "name": "Jürgen Weiß"})
    assert time.perf_counter() - started < 2
    assert str(raised.value) == f"Address.City: {reason}"
    assert "Jürgen" not in str(raised.value)
    assert "rgen" not in str(raised.value)


def test_render_row_collects_every_failed_leaf() -> None:
    template = BodyTemplate(
        {"Name": "{{ row.a / 0 }}", "Email": "{{ row.email }}", "Address": {"Zip": "{{ 1 // 0 }}"}}
    )
    body, problems = template.render_row({"a": 1, "email": "a@b.de"})
    assert body == {"Email": "a@b.de"}
    assert problems == ["Name: division by zero", "Address.Zip: integer division or modulo by zero"]
    with pytest.raises(RowTemplateError) as raised:
        template.render({"a": 1})
    assert raised.value.problems == problems


def test_small_ranges_and_lists_work() -> None:
    body = BodyTemplate(
        {"Name": "{% for i in range(3) %}{{ i }}{% endfor %}", "Tel1": "{{ ['a', row.x] | join('-') }}"}
    )
    assert body.render({"x": "b"}) == {"Name": "012", "Tel1": "a-b"}


def test_output_limit_is_configurable() -> None:
    template = BodyTemplate({"Name": "{{ row.name }}", "Tel1": "x{{ row.name }}"}, max_output_chars=5)
    assert template.render({"name": "Anna"}) == {"Name": "Anna", "Tel1": "xAnna"}
    assert template.render_row({"name": "Annabell"})[1] == [
        "Name: renders more than 5 characters",
        "Tel1: renders more than 5 characters",
    ]


def test_non_json_results_are_row_problems() -> None:
    _, problems = BodyTemplate({"Name": "{{ row.blob }}"}).render_row({"blob": b"bytes"})
    assert problems == ["Name: the expression gives a bytes, which is not a JSON value"]


def test_template_from_json() -> None:
    text = json.dumps(EXAMPLE)
    assert template_from_json(text).render(ROW) == BodyTemplate(EXAMPLE).render(ROW)
    assert template_from_json(EXAMPLE).render(ROW)["Type"] == 1
    with pytest.raises(TemplateError, match=r"<template>: not valid JSON \(Expecting value at line 2\)"):
        template_from_json('{"Name":\n}')
    with pytest.raises(TemplateError, match="<template>: must be a JSON object"):
        template_from_json('["{{ row.name }}"]')
