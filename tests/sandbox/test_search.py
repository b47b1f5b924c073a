"""POST /api/v1/search: a bare answer (not enveloped) with short customer hits."""

from __future__ import annotations

from typing import Any

import pytest

from billbee_provider.sandbox.search import terms
from tests.sandbox_client import Sandbox


def _search(api: Sandbox, term: str, types: list[str] | None = None) -> dict[str, Any]:
    answer = api.call("POST", "/search", json={"Type": types or ["customer"], "Term": term, "SearchMode": 0})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def max_id(api: Sandbox) -> int:
    api.create(Name="Erika Mustermann", Email="erika@example.com")
    customer = api.create(
        Name="Max Müller", Email="max@example.com", Number=4711, Address={"City": "Köln", "Zip": "50667"}
    )
    customer_id: int = customer["Id"]
    return customer_id


def test_answer_is_bare_with_short_customer_hits(api: Sandbox, max_id: int) -> None:
    body = _search(api, "max")
    assert set(body) == {"Products", "Orders", "Customers"}
    assert body["Products"] == [] and body["Orders"] == []
    [hit] = body["Customers"]
    assert hit == {"Id": max_id, "Name": "Max Müller", "Addresses": "50667 Köln", "Number": "4711"}


@pytest.mark.parametrize(
    "term", ["MAX", "müller max", "name:max", '"Max Müller"', "max@example.com", "köln", "4711", "+max*"]
)
def test_every_token_must_occur_somewhere(api: Sandbox, max_id: int, term: str) -> None:
    assert [c["Id"] for c in _search(api, term)["Customers"]] == [max_id]


def test_all_tokens_are_required(api: Sandbox, max_id: int) -> None:
    assert _search(api, "max erika")["Customers"] == []


def test_several_hits_come_in_id_order(api: Sandbox, max_id: int) -> None:
    hits = _search(api, "example.com")["Customers"]
    assert [c["Id"] for c in hits] == [max_id - 1, max_id]


def test_other_types_find_no_customers(api: Sandbox, max_id: int) -> None:
    assert _search(api, "max", ["order"])["Customers"] == []


def test_empty_term_finds_nothing(api: Sandbox, max_id: int) -> None:
    assert _search(api, "  ")["Customers"] == []


def test_lucene_decorations_are_stripped() -> None:
    assert terms('name:"Max" AND (+Köln*) y~2 OR email:a\\@b -no NOT nein !nie') == [
        "max",
        "köln",
        "y",
        "a@b",
    ]
