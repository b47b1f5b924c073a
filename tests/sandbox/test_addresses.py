"""Customer addresses: add, list, get, PUT (empties what is not sent), PATCH."""

from __future__ import annotations

from typing import Any

from tests.sandbox_client import Sandbox

FIRST = {"FirstName": "Max", "LastName": "Muster", "Street": "Hauptstr.", "Zip": "10115", "CountryCode": "DE"}


def _customer_with_address(api: Sandbox) -> tuple[int, dict[str, Any]]:
    customer = api.create(Name="Max", Address=FIRST)
    [address] = api.call("GET", f"/customers/{customer['Id']}/addresses").json()["Data"]
    return customer["Id"], address


def test_create_stores_the_address_as_the_first_one(api: Sandbox) -> None:
    customer_id, address = _customer_with_address(api)
    assert address["CustomerId"] == customer_id
    assert address["Id"] > 2**31
    assert address["AddressType"] == 1
    assert {k: address[k] for k in FIRST} == FIRST


def test_add_a_shipping_address(api: Sandbox) -> None:
    customer_id, first = _customer_with_address(api)
    answer = api.call("POST", f"/customers/{customer_id}/addresses", json={"AddressType": 2, "City": "Köln"})
    assert answer.status_code == 200
    added = answer.json()["Data"]
    assert (added["AddressType"], added["City"], added["CustomerId"]) == (2, "Köln", customer_id)
    assert added["Id"] == first["Id"] + 1
    listed = api.call("GET", f"/customers/{customer_id}/addresses").json()
    assert [a["Id"] for a in listed["Data"]] == [first["Id"], added["Id"]]
    assert listed["Paging"]["TotalRows"] == 2


def test_adding_an_address_with_an_id_is_stopped(api: Sandbox) -> None:
    customer_id, _ = _customer_with_address(api)
    answer = api.call("POST", f"/customers/{customer_id}/addresses", json={"Id": 5, "City": "Köln"})
    assert answer.status_code == 200
    assert answer.json()["ErrorCode"] == 11
    assert api.stats()["addresses"] == 1


def test_adding_to_a_missing_customer_is_404(api: Sandbox) -> None:
    assert api.call("POST", "/customers/123/addresses", json={"City": "Köln"}).status_code == 404


def test_get_one_address(api: Sandbox) -> None:
    _, address = _customer_with_address(api)
    answer = api.call("GET", f"/customers/addresses/{address['Id']}")
    assert answer.status_code == 200
    assert answer.json()["Data"] == address


def test_get_a_missing_address_is_404(api: Sandbox) -> None:
    assert api.call("GET", "/customers/addresses/77").status_code == 404


def test_put_empties_the_fields_not_sent(api: Sandbox) -> None:
    customer_id, address = _customer_with_address(api)
    answer = api.call("PUT", f"/customers/addresses/{address['Id']}", json={"City": "Bonn", "CustomerId": 1})
    assert answer.status_code == 200
    changed = answer.json()["Data"]
    assert changed == {"Id": address["Id"], "AddressType": 1, "CustomerId": customer_id, "City": "Bonn"}


def test_patch_changes_only_the_fields_sent(api: Sandbox) -> None:
    _, address = _customer_with_address(api)
    answer = api.call("PATCH", f"/customers/addresses/{address['Id']}", json={"zip": "50667", "Id": 1})
    assert answer.status_code == 200
    assert answer.json()["Data"] == {**address, "Zip": "50667"}
    assert api.call("GET", f"/customers/addresses/{address['Id']}").json()["Data"]["Zip"] == "50667"


def test_patch_checks_business_rules(api: Sandbox) -> None:
    _, address = _customer_with_address(api)
    answer = api.call("PATCH", f"/customers/addresses/{address['Id']}", json={"AddressType": 5})
    assert answer.json()["ErrorCode"] == 11
    assert api.call("GET", f"/customers/addresses/{address['Id']}").json()["Data"] == address
