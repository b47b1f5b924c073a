"""Answer parsing, on the official PHP SDK's fixtures and on the documented error shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.api.envelope import check_answer, unwrap, unwrap_bare
from billbee_provider.api.errors import (
    BillbeeApiError,
    BillbeeAuthError,
    BillbeeError,
    BillbeeInvalidDataError,
    BillbeeNotFoundError,
    BillbeeTransientError,
    describe_error_code,
)

FIXTURES = Path(__file__).parent / "fixtures" / "php-sdk"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_success_without_error_message() -> None:
    result = unwrap(200, fixture("Response__get_customer_response.json"), what="GET x")
    assert result.data["Id"] == 100000150176895  # int64, beyond int32
    assert result.paging is None


def test_paged_list() -> None:
    payload = fixture("Response__get_customers_response.json")
    payload["Paging"] = {"Page": 1, "TotalPages": 3, "TotalRows": 7, "PageSize": 3}
    result = unwrap(200, payload, what="GET x")
    assert result.paging is not None and result.paging.total_rows == 7
    assert len(result.data) == 1


def test_error_code_is_named() -> None:
    with pytest.raises(BillbeeAuthError, match="1 ApiNotActivated: ErrorMessage"):
        unwrap(200, fixture("Response__base_response.json"), what="GET x")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (11, BillbeeInvalidDataError),
        (8, BillbeeTransientError),
        (16, BillbeeAuthError),
        (23, BillbeeApiError),
    ],
)
def test_error_codes_map_to_classes(code: int, kind: type[Exception]) -> None:
    with pytest.raises(kind) as err:
        unwrap(200, {"ErrorCode": code, "ErrorMessage": "nope"}, what="POST x")
    assert describe_error_code(code) in str(err.value)


def test_model_state_400_is_not_enveloped() -> None:
    payload = {
        "Message": "The request is invalid.",
        "ModelState": {"model.Type": ["Error converting value \"abc\" to type 'System.Int32'."]},
    }
    with pytest.raises(BillbeeInvalidDataError) as err:
        unwrap(400, payload, what="POST /api/v1/customers")
    assert err.value.field_errors == {
        "model.Type": ["Error converting value \"abc\" to type 'System.Int32'."]
    }
    assert "model.Type: Error converting" in str(err.value)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, BillbeeAuthError),
        (403, BillbeeAuthError),
        (404, BillbeeNotFoundError),
        (502, BillbeeTransientError),
    ],
)
def test_status_codes(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind, match=f"HTTP {status}"):
        unwrap(status, {"Message": "x"}, what="GET x")


def test_non_envelope_success_is_an_error() -> None:
    with pytest.raises(BillbeeApiError, match="not a Billbee ApiResult"):
        unwrap(200, ["not", "an", "envelope"], what="GET x")


def test_bare_search_answer() -> None:
    found = unwrap_bare(200, fixture("Response__search_data_response.json"), what="POST /api/v1/search")
    assert found["Customers"] == [{"Id": 1, "Name": "Max", "Addresses": "Test", "Number": "1234"}]


def test_search_answer_also_accepted_enveloped() -> None:
    wrapped = {"ErrorCode": 0, "Data": fixture("Response__search_data_response.json")}
    assert unwrap_bare(200, wrapped, what="search")["Customers"][0]["Id"] == 1


def test_long_messages_are_shortened() -> None:
    with pytest.raises(BillbeeApiError) as err:
        unwrap(200, {"ErrorCode": 9, "ErrorMessage": "x" * 5000}, what="POST x")
    assert len(str(err.value)) < 400


def test_check_answer_raises_what_unwrap_raises_and_passes_any_success() -> None:
    for status, payload in (
        (200, {"ErrorCode": 0, "Data": []}),
        (200, {"Customers": []}),
        (200, None),
        (201, {"ErrorCode": "0"}),
    ):
        check_answer(status, payload, what="GET /x")
    failures: list[tuple[int, Any]] = [
        (404, None),
        (400, {"Message": "bad", "ModelState": {"model.Type": ["no"]}}),
        (200, {"ErrorCode": 11, "ErrorMessage": "Email invalid"}),
        (200, {"ErrorCode": "x"}),
    ]
    for status, payload in failures:
        with pytest.raises(BillbeeError) as by_unwrap:
            unwrap(status, payload, what="GET /x")
        with pytest.raises(type(by_unwrap.value), match=re.escape(str(by_unwrap.value))):
            check_answer(status, payload, what="GET /x")


def test_a_model_state_with_thousands_of_fields_makes_a_short_message() -> None:
    payload = {
        "Message": "The request is invalid.",
        "ModelState": {f"model.Field{i}": [f"Error converting value {'x' * 500}"] for i in range(5_000)},
    }
    with pytest.raises(BillbeeInvalidDataError) as caught:
        unwrap(400, payload, what="POST /api/v1/customers")
    text = str(caught.value)
    assert len(text) < 10_000, len(text)
    assert text.endswith("... and 4980 more problem(s)")
    assert len(caught.value.field_errors) == 5_000  # nothing lost for code that needs them all
