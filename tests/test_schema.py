"""Tests of :mod:`billbee_provider.customers.schema`: the customer JSON Schema and its validator."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from billbee_provider.api.errors import listed_problems
from billbee_provider.customers import schema as customer_schema
from billbee_provider.customers.schema import (
    CHECKED_FORMATS,
    CustomerValidationError,
    CustomerValidator,
    get_validator,
    is_valid_date_time,
    is_valid_email,
    load_schema,
)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# The body of the .NET SDK's integration test for POST /api/v1/customers.
SDK_BODY: dict[str, Any] = {
    "Name": "Max Mustermann",
    "Email": "max@mustermann.de",
    "Type": 0,
    "Address": {
        "FirstName": "Max",
        "LastName": "Mustermann",
        "Street": "Musterstraße",
        "Housenumber": "1",
        "Zip": "12345",
        "City": "Musterstadt",
        "CountryCode": "DE",
        "AddressType": 1,
    },
}


def _meta(type_id: int, value: str) -> dict[str, Any]:
    return {"Id": 100000000000001, "TypeId": type_id, "TypeName": "x", "SubType": "work", "Value": value}


FULL_BODY: dict[str, Any] = {
    "Address": {
        "Id": 100000150176895,
        "AddressType": 2,
        "CustomerId": 100000150176895,
        "Company": "Bäckerei Größer GmbH",
        "FirstName": "Jürgen",
        "LastName": "Größer",
        "Name2": "Abteilung Übersee",
        "Street": "Königsallee",
        "Housenumber": "12a",
        "Zip": "40212",
        "City": "Düsseldorf",
        "State": "NRW",
        "CountryCode": "AT",
        "Email": "juergen@baeckerei-groesser.de",
        "Tel1": "+49 211 1234",
        "Tel2": "",
        "Fax": "+49 211 1235",
        "AddressAddition": "Hinterhaus",
        "ArchivedAt": "2022-08-17T09:47:25+00:00",
        "RestoredAt": "2022-08-16T14:47:00",
    },
    "Id": 100000150176895,
    "Name": "Bäckerei Größer",
    "Email": "info@baeckerei-groesser.de",
    "Tel1": "+49 211 1234",
    "Tel2": "+49 211 9999",
    "Number": 4711,
    "PriceGroupId": 100000000000002,
    "LanguageId": 1,
    "DefaultMailAddress": _meta(1, "info@baeckerei-groesser.de"),
    "DefaultCommercialMailAddress": _meta(1, "rechnung@baeckerei-groesser.de"),
    "DefaultStatusUpdatesMailAddress": _meta(1, "status@baeckerei-groesser.de"),
    "DefaultPhone1": _meta(2, "+49 211 1234"),
    "DefaultPhone2": _meta(2, "+49 211 9999"),
    "DefaultFax": _meta(3, "+49 211 1235"),
    "VatId": "DE123456789",
    "Type": 1,
    "MetaData": [_meta(1, "info@baeckerei-groesser.de"), _meta(2, "+49 211 1234")],
    "ArchivedAt": "2022-07-22T09:54:25.310",
    "RestoredAt": "2022-07-23T10:00:00Z",
}


def problems(body: object) -> list[str]:
    return get_validator().problems(body)


def with_field(path: str, value: object, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``base`` (the SDK body) with the dotted ``path`` set to ``value``."""
    body = copy.deepcopy(SDK_BODY if base is None else base)
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    target[last] = value
    return body


# --- the schema file -------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/create_customer.schema.json")
    assert schema["title"] and schema["description"]
    Draft202012Validator.check_schema(schema)


def test_load_schema_gives_independent_copies() -> None:
    first = load_schema()
    first["properties"].clear()
    assert "Email" in load_schema()["properties"]


def test_every_object_forbids_additional_properties() -> None:
    schema = load_schema()
    objects = [schema, *schema["$defs"].values()]
    assert all(obj["additionalProperties"] is False for obj in objects)
    assert not any("required" in obj for obj in objects)


def test_every_format_the_schema_uses_is_checked_by_the_provider() -> None:
    """No ``format`` is left to a checker that is not there (or to jsonschema's stock one)."""

    def formats(node: object) -> set[str]:
        if isinstance(node, dict):
            own = {node["format"]} if isinstance(node.get("format"), str) else set()
            return own.union(*(formats(child) for child in node.values()))
        if isinstance(node, list):
            return set().union(*(formats(child) for child in node))
        return set()

    assert formats(load_schema()) == set(CHECKED_FORMATS) == {"email", "date-time"}
    assert get_validator().problems({"ArchivedAt": "2022-08-16T14:47:00"}) == []  # no offset: fine
    assert get_validator().problems({"Email": "a@b@c"}) != []  # more than "@" in s


def test_country_codes_are_the_249_official_alpha_2_codes() -> None:
    codes = load_schema()["$defs"]["CustomerAddress"]["properties"]["CountryCode"]["enum"]
    assert len(codes) == len(set(codes)) == 249
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in codes)
    assert {"DE", "AT", "CH", "GB", "US", "AX", "SS", "BQ", "CW", "SX"} <= set(codes)
    assert not {"XK", "UK", "EU", "AA", "ZZ", "QM"} & set(codes)


# --- valid bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [SDK_BODY, FULL_BODY, {}, {"Address": {}}, {"MetaData": []}],
    ids=["sdk-integration-test", "every-field", "empty", "empty-address", "empty-metadata"],
)
def test_valid_bodies_have_no_problems(body: dict[str, Any]) -> None:
    assert problems(body) == []
    get_validator().validate(body)


def test_full_body_uses_every_schema_property() -> None:
    schema = load_schema()
    assert set(FULL_BODY) == set(schema["properties"])
    assert set(FULL_BODY["Address"]) == set(schema["$defs"]["CustomerAddress"]["properties"])
    assert set(FULL_BODY["MetaData"][0]) == set(schema["$defs"]["CustomerMetaData"]["properties"])


# --- the issue's example -----------------------------------------------------------------


def test_issue_example_reports_exactly_three_problems() -> None:
    body = with_field("Address.CountryCode", "Deutschland", with_field("Type", 7))
    body["Emial"] = body.pop("Email")
    assert problems(body) == [
        "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code",
        "Emial: unknown field (not in the Billbee customer model); did you mean 'Email'?",
        "Type: 7 is not one of the allowed values 0 (end customer), 1 (business customer)",
    ]


def test_validate_raises_with_all_problems() -> None:
    body = with_field("Address.CountryCode", "Deutschland", with_field("Type", 7))
    body["Emial"] = "max@mustermann.de"
    with pytest.raises(CustomerValidationError) as caught:
        get_validator().validate(body)
    error = caught.value
    assert isinstance(error, ValueError)
    assert len(error.problems) == 3
    assert str(error) == "3 problems in the customer body:\n  - " + "\n  - ".join(error.problems)
    assert pickle.loads(pickle.dumps(error)).problems == error.problems


def test_single_problem_header_is_singular() -> None:
    with pytest.raises(CustomerValidationError, match=r"^1 problem in the customer body:\n  - Type: "):
        get_validator().validate({"Type": 2})


# --- enums, unknown fields ------------------------------------------------------------------


def test_address_type_enum() -> None:
    assert problems(with_field("Address.AddressType", 2)) == []
    assert problems(with_field("Address.AddressType", 3)) == [
        "Address.AddressType: 3 is not one of the allowed values 1 (invoice address), 2 (shipping address)"
    ]


@pytest.mark.parametrize("code", ["de", "DEU", "Germany", "XK", "UK", ""])
def test_bad_country_codes(code: str) -> None:
    [problem] = problems(with_field("Address.CountryCode", code))
    assert problem.startswith(f"Address.CountryCode: {code!r} is not an ISO 3166-1 alpha-2 country code")


def test_lower_case_country_code_gets_a_hint() -> None:
    assert problems(with_field("Address.CountryCode", "de")) == [
        "Address.CountryCode: 'de' is not an ISO 3166-1 alpha-2 country code; did you mean 'DE'?"
    ]


def test_unknown_nested_field_suggests_the_right_name() -> None:
    assert problems(with_field("Address.housenumber", "1")) == [
        "Address.housenumber: unknown field (not in the Billbee customer address model); "
        "did you mean 'Housenumber'?"
    ]


def test_unknown_field_without_a_close_match_and_value_not_echoed() -> None:
    secret = "sk_live_" + "x" * 40
    result = problems(with_field("ApiKey", secret))
    assert result == ["ApiKey: unknown field (not in the Billbee customer model)"]
    assert secret not in result[0]


# --- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["Number", "LanguageId", "Address.AddressType", "Type"])
def test_int32_fields_reject_values_beyond_int32(field: str) -> None:
    assert any("above the int32 maximum 2147483647" in p for p in problems(with_field(field, INT32_MAX + 1)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (INT32_MAX, []),
        (-(2**31), []),
        (INT32_MAX + 1, ["Number: 2147483648 is above the int32 maximum 2147483647"]),
        (-(2**31) - 1, ["Number: -2147483649 is below the int32 minimum -2147483648"]),
        (3000000000, ["Number: 3000000000 is above the int32 maximum 2147483647"]),
    ],
)
def test_int32_bounds(value: int, expected: list[str]) -> None:
    assert problems(with_field("Number", value)) == expected


@pytest.mark.parametrize(
    "field", ["Id", "PriceGroupId", "Address.Id", "Address.CustomerId", "MetaData.0.TypeId"]
)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (INT64_MAX, None),
        (-(2**63), None),
        (INT64_MAX + 1, "9223372036854775808 is above the int64 maximum 9223372036854775807"),
        (-(2**63) - 1, "-9223372036854775809 is below the int64 minimum -9223372036854775808"),
    ],
)
def test_int64_bounds(field: str, value: int, reason: str | None) -> None:
    body = with_field(field, value, with_field("MetaData", [{"Value": "x"}]))
    assert problems(body) == ([] if reason is None else [f"{field}: {reason}"])


def test_real_billbee_ids_beyond_int32_are_fine_for_int64_fields() -> None:
    assert problems(with_field("Id", 100000150176895)) == []


@pytest.mark.parametrize("field", ["Type", "Number", "Id", "Address.AddressType"])
def test_booleans_are_not_integers(field: str) -> None:
    assert problems(with_field(field, True)) == [f"{field}: expected an integer, got boolean true"]


def test_type_error_is_reported_once_not_also_as_enum() -> None:
    assert problems(with_field("Type", "1")) == ["Type: expected an integer, got string '1'"]


# --- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Name", 5, "Name: expected a string, got integer 5"),
        ("Name", None, "Name: expected a string, got null"),
        ("Tel1", 4921112.5, "Tel1: expected a string, got number 4921112.5"),
        ("Address", "Musterstraße 1", "Address: expected a JSON object, got string 'Musterstraße 1'"),
        ("MetaData", {"TypeId": 1}, 'MetaData: expected a JSON array, got object {"TypeId": 1}'),
        ("DefaultPhone1", [], "DefaultPhone1: expected a JSON object, got array []"),
    ],
)
def test_type_messages(field: str, value: object, expected: str) -> None:
    assert problems(with_field(field, value)) == [expected]


@pytest.mark.parametrize(
    ("body", "got"),
    [(None, "null"), ([SDK_BODY], "array [{"), ("{}", "string '{}'"), (42, "integer 42")],
)
def test_non_object_body(body: object, got: str) -> None:
    [problem] = problems(body)
    assert problem.startswith(f"<body>: expected a JSON object, got {got}")


def test_long_values_are_cut_to_60_characters() -> None:
    long_value = "geheim-" * 30
    [problem] = problems(with_field("Name", list(long_value)))
    [problem2] = problems(with_field("ArchivedAt", long_value))
    assert long_value not in problem2
    assert problem2.startswith(f"ArchivedAt: {repr(long_value)[:57]}... is not a date-time")
    assert len(problem) < 120


# --- nested metadata ---------------------------------------------------------------------------


def test_nested_metadata_problem_paths() -> None:
    body = with_field("MetaData", [_meta(1, "a@b.de"), {"TypeId": "email", "Valeu": "x"}])
    body["DefaultFax"] = {"TypeId": 3, "TypeName": 9}
    assert problems(body) == [
        "DefaultFax.TypeName: expected a string, got integer 9",
        "MetaData.1.TypeId: expected an integer, got string 'email'",
        "MetaData.1.Valeu: unknown field (not in the Billbee customer metadata model); did you mean 'Value'?",
    ]


def test_array_indices_sort_numerically() -> None:
    items = [{"Id": "x"} for _ in range(11)]
    found = problems(with_field("MetaData", items))
    assert [p.split(":")[0] for p in found] == [f"MetaData.{i}.Id" for i in range(11)]


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2022-08-17T09:47:25+00:00",
        "2022-08-16T14:47:00",
        "2022-07-22T09:54:25.310",
        "2022-07-22T09:54:25Z",
        "2022-07-22T09:54:25.1",
        "2022-07-22T09:54:25.1234567",
        "2022-07-22T09:54:25.1234567+02:00",
        "2022-07-22T09:54:25-05:30",
        "2024-02-29T23:59:59",
        "2022-07-22T09:54:25+14:00",
    ],
)
def test_date_times_billbee_sends_are_accepted(value: str) -> None:
    assert is_valid_date_time(value)
    assert problems({"ArchivedAt": value, "Address": {"RestoredAt": value}}) == []


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2022-13-01T00:00:00",
        "2022-02-30T10:00:00",
        "2023-02-29T10:00:00",
        "2022-08-17",
        "2022-08-17 09:47:25",
        "2022-08-17T24:00:00",
        "2022-08-17T09:60:00",
        "2022-08-17T09:47:60",
        "2022-08-17T09:47",
        "2022-07-22T09:54:25.12345678",
        "2022-07-22T09:54:25.",
        "2022-07-22T09:54:25+15:00",
        "2022-07-22T09:54:25+02:60",
        "2022-07-22T09:54:25+0200",
        "0000-01-01T00:00:00",
        "17.08.2022 09:47",
        "2022-08-17T09:47:25+00:00\n",
        "２０２２-08-17T09:47:25",
    ],
)
def test_bad_date_times_are_rejected(value: str) -> None:
    assert not is_valid_date_time(value)
    assert problems({"ArchivedAt": value}) == [
        f"ArchivedAt: {value!r} is not a date-time "
        "(expected e.g. 2022-08-17T09:47:25+00:00 or 2022-08-16T14:47:00)"
    ]


def test_bad_date_time_in_address() -> None:
    assert problems(with_field("Address.ArchivedAt", "yesterday")) == [
        "Address.ArchivedAt: 'yesterday' is not a date-time "
        "(expected e.g. 2022-08-17T09:47:25+00:00 or 2022-08-16T14:47:00)"
    ]


@pytest.mark.parametrize(
    "value",
    [
        "max@mustermann.de",
        "Max.Mustermann+billbee@sub.example.co.uk",
        "o'brien@example.ie",
        "a!#$%&'*+/=?^_`{|}~-@example.com",
        "info@localhost",
        "x@1.2.3.4",
        "x@a-b.de",
    ],
)
def test_valid_emails(value: str) -> None:
    assert is_valid_email(value)
    assert problems({"Email": value, "Address": {"Email": value}}) == []


@pytest.mark.parametrize(
    "value",
    [
        "max(at)example.de",
        "",
        "max",
        "@example.de",
        "max@",
        "max@@example.de",
        "max@example..de",
        "max@.example.de",
        "max@example.de.",
        "max@-example.de",
        "max@example-.de",
        "max mustermann@example.de",
        "max@exa_mple.de",
        '"max"@example.de',
        "max@example.de\n",
        "Max <max@example.de>",
        "max@" + "a" * 64 + ".de",
    ],
)
def test_invalid_emails(value: str) -> None:
    assert not is_valid_email(value)
    [problem] = problems({"Email": value})
    assert problem == "Email: not a valid e-mail address (the value is not repeated: personal data)"


def test_email_message() -> None:
    # The e-mail itself is personal data: problem texts reach task logs, so it is left out.
    assert problems(with_field("Email", "max(at)example.de")) == [
        "Email: not a valid e-mail address (the value is not repeated: personal data)"
    ]


def test_domain_labels_of_63_characters_are_allowed() -> None:
    assert is_valid_email("max@" + "a" * 63 + ".de")


def test_format_checkers_do_not_leak_into_jsonschema_globals() -> None:
    from jsonschema import FormatChecker

    from billbee_provider.customers.schema import CHECKED_FORMATS

    get_validator()
    stock = FormatChecker()
    # jsonschema's own checkers, whichever are installed (the date-time one needs an optional
    # package the provider does not depend on), are not replaced by the provider's.
    for name, ours in CHECKED_FORMATS.items():
        assert stock.checkers.get(name, (None,))[0] is not ours, name
    assert stock.conforms("max mustermann@example.de", "email")  # stock check: "@" in s


# --- reuse ------------------------------------------------------------------------------------


def test_validator_is_a_singleton() -> None:
    assert get_validator() is get_validator()
    assert isinstance(get_validator(), CustomerValidator)


def test_check_schema_runs_when_building_a_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_schema called")

    monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(refuse))
    with pytest.raises(AssertionError, match="check_schema called"):
        CustomerValidator()


def test_check_schema_is_not_called_per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    validator = get_validator()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check_schema called per record")

    monkeypatch.setattr(Draft202012Validator, "check_schema", classmethod(refuse))
    for number in range(100):
        body = with_field("Number", number)
        assert validator.problems(body) == []
        validator.validate(body)
        assert get_validator() is validator
    assert validator.problems(with_field("Type", 5))


def test_a_broken_schema_is_refused() -> None:
    from jsonschema.exceptions import SchemaError

    broken = load_schema()
    broken["properties"]["Number"]["type"] = "int32"
    with pytest.raises(SchemaError):
        CustomerValidator(broken)


def test_module_does_not_import_airflow() -> None:
    code = (
        "import sys, billbee_provider.customers.schema; "
        "sys.exit(any(m.split('.')[0] == 'airflow' for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=False).returncode == 0


def test_schema_resource_name() -> None:
    assert customer_schema.SCHEMA_RESOURCE == "create_customer.schema.json"


IDN_PLAIN = "Email: not a valid e-mail address (the value is not repeated: personal data)"
LOCAL_HINT = "the part before @ has non-ASCII characters and must be ASCII"
DOMAIN_HINT = "the domain has non-ASCII characters; write it in its punycode form (xn--...)"


@pytest.mark.parametrize(
    ("value", "hints"),
    [
        ("max@bücher.de", [DOMAIN_HINT]),  # max@xn--bcher-kva.de is the same address, and valid
        ("jürgen@bücher.de", [LOCAL_HINT, DOMAIN_HINT]),
        ("jürgen@xn--bcher-kva.de", [LOCAL_HINT]),  # punycode cannot help the part before @
        ("müller@example.de", [LOCAL_HINT]),
        ("max@bü cher.de", ["the domain has non-ASCII characters and has no valid punycode form"]),
    ],
)
def test_internationalised_emails_get_a_hint_without_the_value(value: str, hints: list[str]) -> None:
    # Billbee documents nothing on IDN addresses (Swagger: Email is a plain string), and
    # WHATWG's "valid e-mail address" is ASCII only: refused, with what can be fixed.
    assert not is_valid_email(value)
    [problem] = problems({"Email": value})
    assert problem == f"{IDN_PLAIN}: {'; '.join(hints)}"
    assert value.split("@")[0] not in problem and value.split("@")[1] not in problem


def test_the_punycode_domain_the_hint_suggests_is_valid() -> None:
    assert is_valid_email("max@" + "bücher.de".encode("idna").decode("ascii"))
    assert is_valid_email("max@xn--bcher-kva.de")


def test_many_problems_are_cut_in_the_exception_text() -> None:
    body = {f"Unknown{i}": i for i in range(10_000)}
    found = problems(body)
    assert len(found) == 10_000
    error = CustomerValidationError(found)
    text = str(error)
    print(f"10,000 unknown fields: exception text of {len(text.encode())} bytes")
    assert len(text.encode()) < 4_000
    assert text.startswith("10000 problems in the customer body:")
    assert text.endswith("\n  - ... and 9980 more problem(s)")
    assert text.count("\n  - Unknown") == 20
    assert error.problems == found  # the full list stays available to code


def test_a_few_problems_are_all_listed() -> None:
    assert listed_problems(["a", "b"]) == ["a", "b"]
    assert listed_problems([str(i) for i in range(21)], shown=20)[-1] == "... and 1 more problem(s)"
