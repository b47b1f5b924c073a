"""Customer create/get/update/list: envelopes, binding, validation, ids, paging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_client import Sandbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "php-sdk"
MAX_INT = {"Number": 2**31 - 1, "PriceGroupId": 2**63 - 1}


def _fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return loaded


def _post_raw(api: Sandbox, body: bytes, content_type: str = "application/json") -> Any:
    return api.call("POST", "/customers", data=body, headers={"Content-Type": content_type})


def test_create_answers_an_envelope_shaped_like_billbees(api: Sandbox) -> None:
    answer = api.call(
        "POST",
        "/customers",
        json={"Name": "Max", "Email": "max@mustermann.tld", "Tel1": "12345", "Tel2": "12345", "Type": 0},
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert "ErrorMessage" not in body  # success omits it, like the PHP SDK fixtures
    assert body["ErrorCode"] == 0
    data = body["Data"]
    fixture = _fixture("Model__customer.json")
    assert set(data) <= set(fixture), "only fields a real customer has"
    assert data["DefaultMailAddress"] == {
        "Id": data["DefaultMailAddress"]["Id"],
        "TypeId": 1,
        "TypeName": "EMail",
        "SubType": "",
        "Value": "max@mustermann.tld",
    }
    assert set(data["DefaultMailAddress"]) == set(fixture["DefaultMailAddress"])
    assert data["DefaultPhone1"]["TypeName"] == "Phone"
    assert data["DefaultPhone1"] == data["DefaultPhone2"], "one MetaData entry per distinct value"
    assert [m["TypeId"] for m in data["MetaData"]] == [1, 2]


def test_get_answers_what_create_answered(api: Sandbox) -> None:
    created = api.create(Name="Erika", Email="erika@example.com")
    answer = api.call("GET", f"/customers/{created['Id']}")
    assert answer.status_code == 200
    assert answer.json() == {"ErrorCode": 0, "ErrorDescription": "NoError", "Data": created}


def test_get_of_a_missing_customer_is_404_with_an_envelope(api: Sandbox) -> None:
    answer = api.call("GET", "/customers/100000150176895")
    assert answer.status_code == 404
    assert "not found" in answer.json()["ErrorMessage"]


def test_ids_are_int64_beyond_int32_and_increase(api: Sandbox) -> None:
    first, second = api.create(Name="A"), api.create(Name="B")
    assert first["Id"] > 2**31
    assert first["Id"] == 100000150176895
    assert second["Id"] == first["Id"] + 1


def test_customers_without_number_get_the_next_free_one(api: Sandbox) -> None:
    assert api.create(Name="A")["Number"] == 1
    assert api.create(Name="B", Number=40)["Number"] == 40
    assert api.create(Name="C")["Number"] == 41


def test_keys_bind_case_insensitively(api: Sandbox) -> None:
    created = api.create(name="x", EMAIL="x@example.com", ADDRESS={"city": "y", "countrycode": "DE"})
    assert created["Name"] == "x"
    assert created["Email"] == "x@example.com"
    addresses = api.call("GET", f"/customers/{created['Id']}/addresses").json()["Data"]
    assert addresses[0]["City"] == "y"
    assert addresses[0]["CountryCode"] == "DE"
    assert addresses[0]["AddressType"] == 1, "the first address defaults to an invoice address"


def test_unknown_keys_are_ignored(api: Sandbox) -> None:
    created = api.create(Name="Max", Shoesize=44, Nested={"Deep": [1, 2]})
    assert "Shoesize" not in created
    assert created["Name"] == "Max"


def test_integers_sent_as_strings_are_accepted(api: Sandbox) -> None:
    created = api.create(Name="Max", Type="1", LanguageId=" 3 ")
    assert created["Type"] == 1
    assert created["LanguageId"] == 3


def test_wrong_type_is_400_model_state_not_enveloped(api: Sandbox) -> None:
    answer = _post_raw(api, b'{"Name":"Max","Type":"abc"}')
    assert answer.status_code == 400
    body = answer.json()
    assert body["Message"] == "The request is invalid."
    assert "ErrorCode" not in body
    [error] = body["ModelState"]["model.Type"]
    assert error.startswith("Error converting value \"abc\" to type 'System.Int32'. Path 'Type', line 1")
    assert api.stats()["customers"] == 0


def test_malformed_json_is_400_model_state(api: Sandbox) -> None:
    answer = _post_raw(api, b'{"Name": "Max", ')
    assert answer.status_code == 400
    body = answer.json()
    assert "ErrorCode" not in body
    assert list(body["ModelState"]) == ["model"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"Number": 2**31}, "model.Number"),
        ({"PriceGroupId": 2**63}, "model.PriceGroupId"),
        ({"Type": 1.5}, "model.Type"),
        ({"Type": True}, "model.Type"),
        ({"Name": {"First": "Max"}}, "model.Name"),
        ({"Address": {"CountryCode": ["DE"]}}, "model.Address.CountryCode"),
        ({"Address": "Hauptstr. 1"}, "model.Address"),
        ({"MetaData": [{"TypeId": "mail"}]}, "model.MetaData[0].TypeId"),
        ({"ArchivedAt": "yesterday"}, "model.ArchivedAt"),
    ],
)
def test_values_of_the_wrong_type_are_named_in_model_state(
    api: Sandbox, body: dict[str, Any], key: str
) -> None:
    answer = api.call("POST", "/customers", json=body)
    assert answer.status_code == 400, answer.text
    assert list(answer.json()["ModelState"]) == [key]


def test_largest_integers_still_bind(api: Sandbox) -> None:
    created = api.create(Name="Max", **MAX_INT)
    assert created["Number"] == MAX_INT["Number"]
    assert created["PriceGroupId"] == MAX_INT["PriceGroupId"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"Type": 7}, "Type"),
        ({"Address": {"AddressType": 3}}, "Address.AddressType"),
        ({"Address": {"CountryCode": "DEU"}}, "Address.CountryCode"),
    ],
)
def test_business_rule_violations_are_error_code_11(api: Sandbox, body: dict[str, Any], field: str) -> None:
    answer = api.call("POST", "/customers", json=body)
    assert answer.status_code == 200
    result = answer.json()
    assert result["ErrorCode"] == 11
    assert result["ErrorDescription"] == "InvalidData"
    assert result["ErrorMessage"].startswith(f"{field}:")
    assert api.stats()["customers"] == 0


def test_non_json_media_type_is_415(api: Sandbox) -> None:
    assert _post_raw(api, b'{"Name": "Max"}', "text/plain").status_code == 415


def test_text_json_is_accepted(api: Sandbox) -> None:
    assert _post_raw(api, b'{"Name": "Max"}', "text/json; charset=utf-8").status_code == 200


def test_empty_body_is_400(api: Sandbox) -> None:
    assert _post_raw(api, b"").status_code == 400


def test_body_over_one_mebibyte_is_413(api: Sandbox) -> None:
    body = json.dumps({"Name": "x" * (1024 * 1024)}).encode()
    assert _post_raw(api, body).status_code == 413
    assert api.stats()["customers"] == 0


def test_paging_splits_the_list_ordered_by_id(api: Sandbox) -> None:
    ids = [api.create(Name=f"C{i}")["Id"] for i in range(7)]
    pages = [api.call("GET", f"/customers?page={p}&pageSize=3").json() for p in (1, 2, 3, 4)]
    assert [p["Paging"] for p in pages[:1]] == [{"Page": 1, "TotalPages": 3, "TotalRows": 7, "PageSize": 3}]
    assert [len(p["Data"]) for p in pages] == [3, 3, 1, 0]
    assert [c["Id"] for p in pages for c in p["Data"]] == ids


def test_paging_defaults_to_page_1_of_50(api: Sandbox) -> None:
    api.create(Name="A")
    paging = api.call("GET", "/customers").json()["Paging"]
    assert paging == {"Page": 1, "TotalPages": 1, "TotalRows": 1, "PageSize": 50}


def test_query_parameter_names_ignore_case(api: Sandbox) -> None:
    assert api.call("GET", "/customers?PAGESIZE=2").json()["Paging"]["PageSize"] == 2


@pytest.mark.parametrize("query", ["pageSize=0", "pageSize=251", "page=0", "pageSize=abc"])
def test_paging_out_of_range_is_400_model_state(api: Sandbox, query: str) -> None:
    answer = api.call("GET", f"/customers?{query}")
    assert answer.status_code == 400
    assert "ModelState" in answer.json()


def test_put_replaces_fields_and_keeps_id_and_number(api: Sandbox) -> None:
    created = api.create(Name="Max", Email="max@example.com", VatId="DE1")
    answer = api.call(
        "PUT", f"/customers/{created['Id']}", json={"Name": "Moritz", "Email": "max@example.com"}
    )
    assert answer.status_code == 200
    data = answer.json()["Data"]
    assert (data["Id"], data["Number"], data["Name"]) == (created["Id"], created["Number"], "Moritz")
    assert "VatId" not in data, "PUT empties what it does not send"
    assert data["DefaultMailAddress"]["Id"] == created["DefaultMailAddress"]["Id"]
    assert api.call("GET", f"/customers/{created['Id']}").json()["Data"] == data


def test_put_of_a_missing_customer_is_404(api: Sandbox) -> None:
    assert api.call("PUT", "/customers/42", json={"Name": "x"}).status_code == 404
