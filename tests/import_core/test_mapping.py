"""Tests of :mod:`billbee_provider.customers.mapping`: dotted CSV rows to Billbee bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from billbee_provider.customers.mapping import body_from_dotted, body_key, field_types
from billbee_provider.customers.schema import get_validator
from billbee_provider.imports.extract_csv import iter_csv

ROW = {
    "Name": "Jürgen Weiß",
    "Email": "Juergen.Weiss@Example.de",
    "Type": "1",
    "Tel1": "",
    "VatId": "DE123456789",
    "Address.FirstName": " Jürgen ",
    "Address.LastName": "Weiß",
    "Address.Street": "Straße des 17. Juni",
    "Address.Housenumber": "12; Hinterhaus",
    "Address.Zip": "01067",
    "Address.City": "Köln",
    "Address.CountryCode": "DE",
    "Address.AddressType": " 2 ",
    "Address.Company": "   ",
}


def test_builds_the_nested_body_with_schema_types() -> None:
    body, problems = body_from_dotted(ROW)
    assert problems == []
    assert body == {
        "Name": "Jürgen Weiß",
        "Email": "Juergen.Weiss@Example.de",
        "Type": 1,
        "VatId": "DE123456789",
        "Address": {
            "FirstName": " Jürgen ",
            "LastName": "Weiß",
            "Street": "Straße des 17. Juni",
            "Housenumber": "12; Hinterhaus",
            "Zip": "01067",
            "City": "Köln",
            "CountryCode": "DE",
            "AddressType": 2,
        },
    }
    assert get_validator().problems(body) == []


def test_empty_and_blank_cells_are_not_set() -> None:
    assert body_from_dotted({"Name": "", "Tel1": " \t", "Type": "", "Address.City": "", "Tel2": None}) == (
        {},
        [],
    )


@pytest.mark.parametrize(
    ("column", "cell", "value"),
    [
        ("Type", "0", 0),
        ("Type", "+1", 1),
        ("Number", "-42", -42),
        ("Id", "100000150176895", 100000150176895),
        ("PriceGroupId", str(2**63 - 1), 2**63 - 1),
        ("Address.Zip", "01067", "01067"),
        ("Tel1", "+49 (0) 221 123", "+49 (0) 221 123"),
    ],
)
def test_cells_convert_to_the_schema_type(column: str, cell: str, value: Any) -> None:
    body, problems = body_from_dotted({column: cell})
    path = column.split(".")
    found: Any = body
    for part in path:
        found = found[part]
    assert (found, problems) == (value, [])
    assert type(found) is type(value)


@pytest.mark.parametrize("cell", ["abc", "1.0", "1_000", "١", "0x10", "1 2"])
def test_integer_conversion_failure_is_reported_once(cell: str) -> None:
    body, problems = body_from_dotted({"Type": cell, "Name": "A"})
    assert body == {"Name": "A"}
    assert problems == [f"Type: {cell!r} is not an integer"]
    # Left out, so the validator does not report the same cell a second time.
    assert get_validator().problems(body) == []


def test_out_of_range_integer_is_left_to_the_validator() -> None:
    body, problems = body_from_dotted({"Number": str(2**31)})
    assert problems == []
    assert get_validator().problems(body) == ["Number: 2147483648 is above the int32 maximum 2147483647"]


def test_long_bad_cell_is_cut_in_the_problem() -> None:
    _, problems = body_from_dotted({"Type": "x" * 500})
    assert len(problems[0]) < 90
    assert problems[0].endswith("... is not an integer")


def test_array_field_as_json_cell() -> None:
    cell = '[{"TypeId": 1, "Value": "j@example.de"}, {"TypeId": 2, "Value": "+49 221 1"}]'
    body, problems = body_from_dotted({"MetaData": cell})
    assert problems == []
    assert body == {"MetaData": [{"TypeId": 1, "Value": "j@example.de"}, {"TypeId": 2, "Value": "+49 221 1"}]}
    assert get_validator().problems(body) == []


def test_bad_json_cell_names_the_position_not_the_content() -> None:
    body, problems = body_from_dotted({"MetaData": '[{"Value": "geheim@example.de",}]'})
    assert body == {}
    assert problems == [
        "MetaData: not valid JSON (Expecting property name enclosed in double quotes at column 32)"
    ]
    assert "geheim" not in problems[0]


def test_nested_object_fields_and_object_cells() -> None:
    body, problems = body_from_dotted(
        {"DefaultMailAddress.TypeId": "1", "DefaultMailAddress.Value": "a@b.de"}
    )
    assert (body, problems) == ({"DefaultMailAddress": {"TypeId": 1, "Value": "a@b.de"}}, [])
    body, problems = body_from_dotted({"Address": '{"City": "Köln"}', "Address.Zip": "50667"})
    assert (body, problems) == ({"Address": {"City": "Köln", "Zip": "50667"}}, [])


def test_unknown_columns_are_kept_for_the_validator() -> None:
    body, problems = body_from_dotted({"Emial": "a@b.de", "Address.Citty": "Köln", "Address..City": "x"})
    assert problems == []
    assert body == {"Emial": "a@b.de", "Address": {"Citty": "Köln"}, "Address..City": "x"}
    reported = get_validator().problems(body)
    assert "Emial: unknown field (not in the Billbee customer model); did you mean 'Email'?" in reported
    assert any(line.startswith("Address.Citty: unknown field") for line in reported)


def test_colliding_columns_are_problems() -> None:
    _, problems = body_from_dotted({"Address": '"Köln"', "Address.City": "Köln"})
    assert problems == ["Address.City: cannot be set, column 'Address' is not an object"]
    _, problems = body_from_dotted({"Address.City": "Köln", "Address": '{"City": "Bonn"}'})
    assert problems == ["Address: set twice (also by another column)"]


def test_values_that_are_typed_already_pass_through() -> None:
    assert body_from_dotted({"Type": 1, "Address.AddressType": 2}) == (
        {"Type": 1, "Address": {"AddressType": 2}},
        [],
    )


def test_field_types_come_from_the_schema_once() -> None:
    types = field_types()
    assert types is field_types()
    assert types["Type"] == "integer"
    assert types["Address.City"] == "string"
    assert types["DefaultPhone1.TypeId"] == "integer"
    assert types["MetaData"] == "array"
    with pytest.raises(TypeError):
        types["Name"] = "integer"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"Email": "  Max@Example.DE "}, "max@example.de"),
        ({"Email": " ", "Address": {"Email": "Anna@Example.de"}}, "anna@example.de"),
        ({"Address": {"Email": "Anna@Example.de"}}, "anna@example.de"),
        ({"Name": "No Mail"}, None),
        ({"Email": 5, "Address": "x"}, None),
    ],
)
def test_body_key(body: dict[str, Any], key: str | None) -> None:
    assert body_key(body) == key


def test_csv_file_to_bodies(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "\ufeffName;Email;Type;Address.City;Address.CountryCode\r\n"
        'Müller "der Große";m@example.de;0;"Köln; Porz";DE\r\n'
        "Anna;anna@example.de;zwei;Berlin;Deutschland\r\n",
        encoding="utf-8",
        newline="",
    )
    results = [body_from_dotted(row.fields) for row in iter_csv(path)]
    assert results[0] == (
        {
            "Name": 'Müller "der Große"',
            "Email": "m@example.de",
            "Type": 0,
            "Address": {"City": "Köln; Porz", "CountryCode": "DE"},
        },
        [],
    )
    body, problems = results[1]
    assert problems == ["Type: 'zwei' is not an integer"]
    assert get_validator().problems(body) == [
        "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code"
    ]
