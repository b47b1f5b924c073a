"""The extract and validate operators fail once, with one line, on what a retry cannot fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.operators.extract import BillbeeExtractCustomersOperator
from billbee_provider.operators.validate import BillbeeValidateCustomersOperator

pytestmark = pytest.mark.airflow  # the operators' execute

CONTEXT: Any = {}


def _extract(source: str, out: Path) -> dict[str, Any]:
    op = BillbeeExtractCustomersOperator(task_id="extract", source=source, output_dir=str(out))
    return op.execute(CONTEXT)


def _validate(source: str, out: Path, **kwargs: Any) -> dict[str, Any]:
    op = BillbeeValidateCustomersOperator(task_id="validate", source=source, output_dir=str(out), **kwargs)
    return op.execute(CONTEXT)


def _fails(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AirflowFailException) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message and raised.value.__cause__ is None, message
    return message


@pytest.mark.parametrize("call", [_extract, _validate])
def test_missing_source_and_directories_fail_once(tmp_path: Path, call: Any) -> None:
    missing = tmp_path / "nope.csv"
    assert _fails(call, str(missing), tmp_path / "out") == f"{missing}: no such file; check the source path"
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert "is a folder" in _fails(call, str(folder), tmp_path / "out")
    assert "no such file" in _fails(call, folder.as_uri() + "/x/y.csv", tmp_path / "out")


@pytest.mark.parametrize("call", [_extract, _validate])
def test_web_addresses_fail_once(tmp_path: Path, call: Any) -> None:
    message = _fails(call, "https://shop.example/export.csv", tmp_path)
    assert "web addresses (https://) are not supported" in message


def test_extract_refuses_to_overwrite_its_source(tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    source.write_bytes(b"Name;Email\r\nA;a@example.de\r\n")
    before = source.read_bytes()
    for given in (str(source), source.as_uri(), f"{tmp_path}/./source.csv"):
        message = _fails(_extract, given, tmp_path)
        assert "it would be overwritten" in message and "'output_dir'" in message
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["source.csv"]  # no temporary file left either


@pytest.mark.parametrize("name", ["staging.jsonl", "rejects.csv"])
def test_validate_refuses_to_overwrite_its_source(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(b'{"Name": "A"}\n')
    assert "it would be overwritten" in _fails(_validate, str(source), tmp_path, source_format="jsonl")
    assert source.read_bytes() == b'{"Name": "A"}\n'


def test_extract_writes_the_snapshot_atomically(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"Name\r\nA\r\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "source.csv").write_bytes(b"old")
    with mock.patch("shutil.copyfileobj", side_effect=OSError("disk full")), pytest.raises(OSError):
        _extract(str(source), out)
    assert (out / "source.csv").read_bytes() == b"old"
    assert [p.name for p in out.iterdir()] == ["source.csv"]
    assert _extract(str(source), out)["bytes"] == 9


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RecursionError("maximum recursion depth exceeded"), "a value is nested too deeply to be processed"),
        (
            ValueError(
                "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"
            ),
            "cannot be processed: a number has more digits than can be converted",
        ),
        (ValueError("invalid literal for int() with base 10: 'Jürgen'"), "cannot be processed: ValueError"),
    ],
)
def test_validate_errors_a_retry_cannot_fix_fail_once(
    tmp_path: Path, error: Exception, expected: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"Name": "A"}\n')
    with mock.patch("billbee_provider.imports.validate.prepare", side_effect=error):
        message = _fails(_validate, str(source), tmp_path)
    assert message == f"{source}: {expected}"  # the cause's text (it may quote a cell) is not shown


def test_deep_json_and_huge_integers_are_rejected_rows_not_crashes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"Name": ' + "[" * 100_000 + "]" * 100_000 + "}\n" + '{"Name": "x", "Type": ' + "1" * 5000 + "}\n"
    )
    result = _validate(str(source), tmp_path, max_rejects=None)
    assert result["rows_read"] == 2 and result["rejected"] == 2


def test_validate_reads_the_encoding_and_delimiter_settings(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    text = "Name\tEmail\tType\r\nJürgen Weiß\tj@example.de\t0\r\n"
    source.write_bytes("\ufeff".encode("utf-16-le") + text.encode("utf-16-le"))
    for encoding, delimiter in (("auto", "auto"), ("utf-16", "tab"), ("", "")):
        result = _validate(str(source), tmp_path, encoding=encoding, delimiter=delimiter)
        assert (result["valid"], result["rejected"]) == (1, 0)
    assert "delimiter must be one character" in _fails(_validate, str(source), tmp_path, delimiter="ab")
    message = _fails(_validate, str(source), tmp_path, encoding="klingon")
    assert message == f"{source}: unknown encoding 'klingon'"
