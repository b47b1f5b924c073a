"""The customer JSON Schema must agree, field by field, with Billbee's Swagger models.

The Swagger file is a byte-for-byte copy of Billbee's customer API description
(``tests/fixtures/billbee-customers-api.swagger.yaml``). Each field of each model is its
own test, so a drift names the field, e.g. ``test_field_matches[CreateCustomer.Number]``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from billbee_provider.customers.schema import load_schema

SWAGGER_PATH = Path(__file__).parent / "fixtures" / "billbee-customers-api.swagger.yaml"
SWAGGER_REF_PREFIX = "#/definitions/"

#: model label -> (Swagger definition name, schema $ref of the model or None for the root)
MODELS: dict[str, tuple[str, str | None]] = {
    "CreateCustomer": ("Billbee.Interfaces.BillbeeAPI.Model.CreateCustomerApiModel", None),
    "CustomerAddress": (
        "Billbee.Interfaces.BillbeeAPI.Model.CustomerAddressApiModel",
        "#/$defs/CustomerAddress",
    ),
    "CustomerMetaData": (
        "Billbee.Interfaces.BillbeeAPI.Models.CustomerMetaDataApiModel",
        "#/$defs/CustomerMetaData",
    ),
}
#: Swagger definition name -> the schema $ref that must stand for it.
REF_MAP = {swagger_name: ref for swagger_name, ref in MODELS.values() if ref is not None}
INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def load_swagger() -> dict[str, Any]:
    with SWAGGER_PATH.open(encoding="utf-8") as handle:
        swagger: dict[str, Any] = yaml.safe_load(handle)
    return swagger


# --- resolving -----------------------------------------------------------------------------


def swagger_definition(swagger: dict[str, Any], ref: str) -> tuple[str, dict[str, Any]]:
    """Resolve a Swagger ``$ref`` by name from ``definitions``."""
    assert ref.startswith(SWAGGER_REF_PREFIX), ref
    name = ref[len(SWAGGER_REF_PREFIX) :]
    return name, swagger["definitions"][name]


def schema_definition(schema: dict[str, Any], ref: str | None) -> dict[str, Any]:
    """Resolve a local schema ``$ref`` (``#/$defs/Name``); ``None`` is the root."""
    if ref is None:
        return schema
    assert ref.startswith("#/$defs/"), ref
    definition: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return definition


def model_properties(
    schema: dict[str, Any], swagger: dict[str, Any], label: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    swagger_name, schema_ref = MODELS[label]
    swagger_props = swagger["definitions"][swagger_name]["properties"]
    return swagger_props, schema_definition(schema, schema_ref).get("properties", {})


# --- comparing -------------------------------------------------------------------------------


def swagger_kind(swagger: dict[str, Any], spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return str(swagger_definition(swagger, spec["$ref"])[1].get("type", "object"))
    return str(spec.get("type"))


def schema_kind(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return str(schema_definition(schema, spec["$ref"]).get("type"))
    return str(spec.get("type"))


def compare_ref(swagger: dict[str, Any], wanted: dict[str, Any], got: dict[str, Any]) -> list[str]:
    name, _ = swagger_definition(swagger, wanted["$ref"])
    expected = REF_MAP.get(name)
    if got.get("$ref") == expected:
        return []
    return [f"$ref {name} in Swagger must be {expected}, schema has {got.get('$ref')}"]


def compare_integer(wanted: dict[str, Any], got: dict[str, Any]) -> list[str]:
    fmt = wanted.get("format")
    expected = INT_BOUNDS.get(fmt) if fmt else None
    actual = (got.get("minimum"), got.get("maximum"))
    if expected is None or actual == expected:
        return []
    return [f"format {fmt} in Swagger needs bounds {list(expected)}, schema has {list(actual)}"]


def compare_annotations(wanted: dict[str, Any], got: dict[str, Any]) -> list[str]:
    diffs = []
    keys = ("enum",) if wanted.get("type") == "integer" else ("format", "enum")  # int formats: bounds
    for key in keys:
        if key in wanted and got.get(key) != wanted[key]:
            diffs.append(f"{key} {wanted[key]} in Swagger, {got.get(key)} in schema")
    if wanted.get("readOnly", False) != got.get("readOnly", False):
        diffs.append(
            f"readOnly {wanted.get('readOnly', False)} in Swagger, {got.get('readOnly', False)} in schema"
        )
    description = " ".join(str(wanted.get("description", "")).split())
    if description not in " ".join(str(got.get("description", "")).split()):
        diffs.append(f"description {description!r} of Swagger missing in schema")
    return diffs


def compare_spec(
    swagger: dict[str, Any], schema: dict[str, Any], wanted: dict[str, Any], got: dict[str, Any]
) -> list[str]:
    """Differences between one Swagger property (``wanted``) and its schema twin (``got``)."""
    wanted_kind, got_kind = swagger_kind(swagger, wanted), schema_kind(schema, got)
    if wanted_kind != got_kind:
        return [f"type {wanted_kind} in Swagger, {got_kind} in schema"]
    if "$ref" in wanted:
        return compare_ref(swagger, wanted, got)
    if wanted_kind == "array":
        items = compare_spec(swagger, schema, wanted["items"], got.get("items", {}))
        return [f"items: {diff}" for diff in items] + compare_annotations(wanted, got)
    if wanted_kind == "integer":
        return compare_integer(wanted, got) + compare_annotations(wanted, got)
    return compare_annotations(wanted, got)


def field_differences(schema: dict[str, Any], swagger: dict[str, Any], label: str, field: str) -> list[str]:
    swagger_props, schema_props = model_properties(schema, swagger, label)
    if field not in schema_props:
        return [f"{label}.{field}: missing in schema"]
    if field not in swagger_props:
        return [f"{label}.{field}: not in Swagger"]
    diffs = compare_spec(swagger, schema, swagger_props[field], schema_props[field])
    return [f"{label}.{field}: {diff}" for diff in diffs]


def model_fields(schema: dict[str, Any], swagger: dict[str, Any], label: str) -> list[str]:
    swagger_props, schema_props = model_properties(schema, swagger, label)
    return sorted(set(swagger_props) | set(schema_props))


def all_differences(schema: dict[str, Any], swagger: dict[str, Any]) -> list[str]:
    """Every difference between the schema and the Swagger models, for all three models."""
    return [
        diff
        for label in MODELS
        for field in model_fields(schema, swagger, label)
        for diff in field_differences(schema, swagger, label, field)
    ]


# --- the tests -------------------------------------------------------------------------------

SCHEMA = load_schema()
SWAGGER = load_swagger()
FIELD_IDS = [f"{label}.{field}" for label in MODELS for field in model_fields(SCHEMA, SWAGGER, label)]


@pytest.mark.parametrize("field_id", FIELD_IDS)
def test_field_matches(field_id: str) -> None:
    label, field = field_id.split(".", 1)
    assert field_differences(SCHEMA, SWAGGER, label, field) == []


@pytest.mark.parametrize("label", list(MODELS))
def test_property_names_match(label: str) -> None:
    swagger_props, schema_props = model_properties(SCHEMA, SWAGGER, label)
    assert sorted(schema_props) == sorted(swagger_props)


@pytest.mark.parametrize("label", list(MODELS))
def test_models_are_closed_objects_with_nothing_required(label: str) -> None:
    swagger_name, schema_ref = MODELS[label]
    model = schema_definition(SCHEMA, schema_ref)
    assert SWAGGER["definitions"][swagger_name]["type"] == model["type"] == "object"
    assert model["additionalProperties"] is False
    assert "required" not in SWAGGER["definitions"][swagger_name]
    assert "required" not in model


def test_every_field_is_tested() -> None:
    assert len(FIELD_IDS) == 20 + 20 + 5
    assert "CreateCustomer.Address" in FIELD_IDS and "CustomerMetaData.TypeName" in FIELD_IDS


def test_the_endpoint_takes_the_create_model() -> None:
    post = SWAGGER["paths"]["/api/v1/customers"]["post"]
    [body] = [parameter for parameter in post["parameters"] if parameter["in"] == "body"]
    assert body["schema"]["$ref"] == SWAGGER_REF_PREFIX + MODELS["CreateCustomer"][0]


def test_the_comparison_finds_deliberate_differences() -> None:
    altered = copy.deepcopy(SCHEMA)
    root = altered["properties"]
    address = altered["$defs"]["CustomerAddress"]["properties"]
    meta = altered["$defs"]["CustomerMetaData"]["properties"]
    del root["Tel2"]
    root["Number"] = {"type": "string"}
    root["Fax"] = {"type": "string"}
    root["DefaultFax"] = {"$ref": "#/$defs/CustomerAddress"}
    root["MetaData"]["items"] = {"type": "string"}
    del root["ArchivedAt"]["format"]
    address["AddressType"]["enum"] = [1, 2, 3]
    address["Company"]["description"] = "Firma"
    meta["TypeId"].update(minimum=-(2**31), maximum=2**31 - 1)
    del meta["TypeName"]["readOnly"]
    assert all_differences(altered, SWAGGER) == [
        "CreateCustomer.ArchivedAt: format date-time in Swagger, None in schema",
        "CreateCustomer.DefaultFax: $ref Billbee.Interfaces.BillbeeAPI.Models.CustomerMetaDataApiModel "
        "in Swagger must be #/$defs/CustomerMetaData, schema has #/$defs/CustomerAddress",
        "CreateCustomer.Fax: not in Swagger",
        "CreateCustomer.MetaData: items: type object in Swagger, string in schema",
        "CreateCustomer.Number: type integer in Swagger, string in schema",
        "CreateCustomer.Tel2: missing in schema",
        "CustomerAddress.AddressType: enum [1, 2] in Swagger, [1, 2, 3] in schema",
        "CustomerAddress.Company: description 'The name of the company' of Swagger missing in schema",
        "CustomerMetaData.TypeId: format int64 in Swagger needs bounds "
        "[-9223372036854775808, 9223372036854775807], schema has [-2147483648, 2147483647]",
        "CustomerMetaData.TypeName: readOnly True in Swagger, False in schema",
    ]


def test_the_comparison_finds_a_dropped_field_and_a_retyped_field_only() -> None:
    altered = copy.deepcopy(SCHEMA)
    del altered["properties"]["Tel2"]
    altered["properties"]["Number"]["type"] = "string"
    assert all_differences(altered, SWAGGER) == [
        "CreateCustomer.Number: type integer in Swagger, string in schema",
        "CreateCustomer.Tel2: missing in schema",
    ]
    assert all_differences(SCHEMA, SWAGGER) == []
