"""Tests of :mod:`billbee_provider.customers.json_text`: strict JSON text for customers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billbee_provider.customers.json_text import JsonTextError, loads_strict, strict_object_pairs


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"Email": "a@x.de", "Email": "b@x.de"}', "Email"),
        ('{"Address": {"City": "Köln", "City": "Bonn"}}', "Address.City"),
        ('{"MetaData": [{"Value": "1"}, {"Value": "2", "Value": "3"}]}', "MetaData.1.Value"),
        ('[[{"x": 1, "x": 1}]]', "0.0.x"),
    ],
)
def test_a_key_given_twice_is_refused_by_its_path_without_values(text: str, path: str) -> None:
    with pytest.raises(JsonTextError) as raised:
        loads_strict(text)
    assert str(raised.value) == f"the key {path!r} appears twice in one object"
    for value in ("a@x.de", "b@x.de", "Köln", "Bonn"):
        assert value not in str(raised.value)


def test_valid_text_decodes_as_json_loads_does() -> None:
    text = '{"Name": "Jürgen", "Address": {"City": "Köln"}, "MetaData": [{"TypeId": 1}, [1, {"a": null}]]}'
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(b'{"a": 1}') == {"a": 1}
    assert loads_strict("[1, 2]") == [1, 2]
    assert json.loads('{"a": 1}', object_pairs_hook=strict_object_pairs) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Name": }', "not valid JSON: Expecting value at line 1, column 10"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON: nested too deeply"),
        ('{"Type": ' + "1" * 5_000 + "}", "not valid JSON: a number has too many digits"),
    ],
)
def test_other_failures_are_one_line(text: str, message: str) -> None:
    with pytest.raises(JsonTextError) as raised:
        loads_strict(text)
    assert str(raised.value) == message


def test_a_jsonl_line_with_a_key_given_twice_is_a_problem_of_its_row(tmp_path: Path) -> None:
    from billbee_provider.imports.extract_jsonl import iter_jsonl

    source = tmp_path / "customers.jsonl"
    source.write_text(
        '{"Email": "a@example.de"}\n'
        '{"Email": "b@example.de", "Address": {"City": "Berlin", "City": "Bonn"}}\n'
        '{"Email": "c@example.de", "Email": "d@example.de"}\n',
        encoding="utf-8",
    )
    rows = list(iter_jsonl(str(source)))
    assert [row.problems for row in rows] == [
        [],
        ["line 2: the key 'Address.City' appears twice in one object"],
        ["line 3: the key 'Email' appears twice in one object"],
    ]
    assert "Bonn" not in repr(rows[1]) and "d@example" not in repr(rows[2])  # no values in the rows


def test_nan_is_refused_as_not_json() -> None:
    with pytest.raises(JsonTextError, match="NaN is not valid JSON"):
        loads_strict('{"Name": NaN}')
