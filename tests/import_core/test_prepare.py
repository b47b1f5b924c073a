"""Tests of :mod:`billbee_provider.imports.validate`: the validate stage."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from jsonschema.exceptions import SchemaError

from billbee_provider.customers.mapping import body_from_dotted
from billbee_provider.customers.template import BodyTemplate
from billbee_provider.imports.extract import SourceRow
from billbee_provider.imports.extract_csv import iter_csv
from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.files import REJECT_COLUMNS, RejectsWriter
from billbee_provider.imports.validate import PrepareSummary, TooManyRejects, prepare

SAMPLE = (
    "\ufeffName;Email;Type;Address.Street;Address.Housenumber;Address.Zip;Address.City;Address.CountryCode\r\n"
    'Jürgen Weiß;juergen.weiss@example.de;0;Straße des 17. Juni;"12; Hinterhaus";01067;Dresden;DE\r\n'
    'Müller "der Große";MUELLER@example.de;1;Königsallee;3;40212;Düsseldorf;Deutschland\r\n'
    "Anna Schmidt;anna(at)example.de;zwei;Weg;1;10115;Berlin;DE\r\n"
    '"Bäckerei ""Zum Glück""";backerei@example.de;1;"Markt\r\nHof";5;50667;Köln;DE\r\n'
    "Ohne Mail;;0;Gasse;9;80331;München;DE;überzählig\r\n"
)


def _dotted(row: SourceRow) -> tuple[dict[str, Any], list[str]]:
    return body_from_dotted(row.fields)


def _sample(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(SAMPLE, encoding="utf-8", newline="")
    return path


def _read_rejects(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _read_staging(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sample_file_is_split_into_staging_and_rejects(tmp_path: Path) -> None:
    staging, rejects = tmp_path / "valid.jsonl", tmp_path / "rejects.csv"

    summary = prepare(iter_csv(_sample(tmp_path)), _dotted, staging=staging, rejects=rejects)

    assert summary == PrepareSummary(
        rows_read=5, valid=2, rejected=3, staging=str(staging), rejects=str(rejects)
    )
    assert summary.as_dict() == {
        "rows_read": 5,
        "valid": 2,
        "rejected": 3,
        "staging": str(staging),
        "rejects": str(rejects),
    }
    assert _read_staging(staging) == [
        {
            "row": 1,
            "key": "juergen.weiss@example.de",
            "body": {
                "Name": "Jürgen Weiß",
                "Email": "juergen.weiss@example.de",
                "Type": 0,
                "Address": {
                    "Street": "Straße des 17. Juni",
                    "Housenumber": "12; Hinterhaus",
                    "Zip": "01067",
                    "City": "Dresden",
                    "CountryCode": "DE",
                },
            },
        },
        {
            "row": 4,
            "key": "backerei@example.de",
            "body": {
                "Name": 'Bäckerei "Zum Glück"',
                "Email": "backerei@example.de",
                "Type": 1,
                "Address": {
                    "Street": "Markt\r\nHof",
                    "Housenumber": "5",
                    "Zip": "50667",
                    "City": "Köln",
                    "CountryCode": "DE",
                },
            },
        },
    ]
    # Written as UTF-8, not as \u escapes.
    assert "Straße" in staging.read_text(encoding="utf-8")

    rows = _read_rejects(rejects)
    assert list(rows[0]) == list(REJECT_COLUMNS)
    assert [(r["row"], r["line"], r["key"], r["stage"]) for r in rows] == [
        ("2", "3", "mueller@example.de", "validate"),
        ("3", "4", "anna(at)example.de", "validate"),
        ("5", "7", "", "validate"),
    ]
    assert (
        rows[0]["problems"] == "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code"
    )
    assert rows[1]["problems"] == (
        "Type: 'zwei' is not an integer"
        " | Email: not a valid e-mail address (the value is not repeated: personal data)"
    )
    assert rows[2]["problems"] == "line 7: row has 9 cells, header has 8"
    # Every cell quoted, CRLF, comma: what Excel and the csv module expect.
    assert rejects.read_bytes().splitlines()[0] == b'\xef\xbb\xbf"row","line","key","stage","problems"'


def test_user_rules_required_fields_and_extra_schema(tmp_path: Path) -> None:
    rows = [
        SourceRow(
            1, 2, {"Name": "A", "Email": "a@example.de", "Address.City": "Köln", "Address.Zip": "50667"}
        ),
        SourceRow(2, 3, {"Name": "B", "Address.City": " ", "Address.Zip": "5066"}),
        SourceRow(
            3, 4, {"Name": "C", "Email": "c@example.de", "Address.City": "Wien", "Address.Zip": "1010"}
        ),
    ]
    extra = {
        "properties": {"Address": {"properties": {"Zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}},
        "required": ["Address"],
    }
    staging, rejects = io.BytesIO(), io.StringIO(newline="")

    summary = prepare(
        rows,
        _dotted,
        staging=staging,
        rejects=rejects,
        required_fields=["Email", "Address.City"],
        extra_schema=extra,
    )

    assert (summary.valid, summary.rejected, summary.staging, summary.rejects) == (1, 2, None, None)
    rejected = list(csv.DictReader(io.StringIO(rejects.getvalue())))
    assert rejected[0]["problems"].split(" | ") == [
        "Address.Zip: '5066' does not match '^[0-9]{5}$'",
        "Email: required by this import but missing",
        "Address.City: required by this import but missing",
    ]
    assert rejected[1]["problems"] == "Address.Zip: '1010' does not match '^[0-9]{5}$'"
    assert [line["row"] for line in map(json.loads, staging.getvalue().decode().splitlines())] == [1]


def test_bad_extra_schema_fails_before_reading(tmp_path: Path) -> None:
    def rows() -> Iterator[SourceRow]:
        raise AssertionError("must not be read")
        yield

    with pytest.raises(SchemaError):
        prepare(rows(), _dotted, staging=io.BytesIO(), rejects=io.StringIO(), extra_schema={"type": 5})


def _rows(valid: int, invalid: int) -> list[SourceRow]:
    good = [SourceRow(i + 1, i + 2, {"Email": f"k{i}@example.de"}) for i in range(valid)]
    bad = [SourceRow(valid + i + 1, valid + i + 2, {"Email": f"kein-{i}"}) for i in range(invalid)]
    return good + bad


@pytest.mark.parametrize(
    ("max_rejects", "fails"),
    [(None, False), (3, False), (2, True), (0, True), (0.3, False), (0.29, True), (0.5, False)],
)
def test_max_rejects_count_and_fraction(tmp_path: Path, max_rejects: int | float | None, fails: bool) -> None:
    rejects = tmp_path / "rejects.csv"
    staging = tmp_path / "valid.jsonl"
    if fails:
        with pytest.raises(TooManyRejects) as raised:
            prepare(_rows(7, 3), _dotted, staging=staging, rejects=rejects, max_rejects=max_rejects)
        assert raised.value.summary.rejected == 3
        assert raised.value.summary.rows_read == 10
        assert str(raised.value).startswith("3 of 10 rows rejected (30.0%), more than max_rejects allows")
        assert "nothing will be sent" in str(raised.value)
        assert "kein" not in str(raised.value)
    else:
        prepare(_rows(7, 3), _dotted, staging=staging, rejects=rejects, max_rejects=max_rejects)
    # Counted to the end: the rejects file is complete either way.
    assert [row["row"] for row in _read_rejects(rejects)] == ["8", "9", "10"]
    assert len(_read_staging(staging)) == 7


def test_fraction_of_no_rows_is_not_exceeded() -> None:
    summary = prepare([], _dotted, staging=io.BytesIO(), rejects=io.StringIO(), max_rejects=0.1)
    assert summary.as_dict()["rows_read"] == 0


@pytest.mark.parametrize(
    ("max_rejects", "error"),
    [
        (-1, ValueError),
        (0.0, ValueError),
        (1.0, ValueError),
        (1.5, ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_max_rejects_is_checked_up_front(max_rejects: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_rejects"):
        prepare([], _dotted, staging=io.BytesIO(), rejects=io.StringIO(), max_rejects=max_rejects)


def test_jsonl_source_with_a_broken_line(tmp_path: Path) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text(
        '{"Name": "Jürgen", "Email": "J@Example.de"}\n{"Name": "x",}\n{"Emial": "a@b.de"}\n{}\n',
        encoding="utf-8",
    )
    staging, rejects = tmp_path / "v.jsonl", tmp_path / "r.csv"

    summary = prepare(iter_jsonl(source), lambda row: (row.fields, []), staging=staging, rejects=rejects)

    assert (summary.valid, summary.rejected) == (1, 3)
    assert _read_staging(staging)[0]["key"] == "j@example.de"
    assert [(r["row"], r["line"], r["problems"]) for r in _read_rejects(rejects)] == [
        (
            "2",
            "2",
            "line 2: not a JSON object: Expecting property name enclosed in double quotes at column 14",
        ),
        ("3", "3", "Emial: unknown field (not in the Billbee customer model); did you mean 'Email'?"),
        ("4", "4", "<body>: no field is set"),
    ]


def test_template_source_problems_become_rejects(tmp_path: Path) -> None:
    template = BodyTemplate(
        {"Name": "{{ row.name }}", "Email": "{{ row.mail | lower }}", "Number": "{{ 100 // row.n }}"}
    )
    rows = [
        SourceRow(1, 2, {"name": "Anna", "mail": "A@B.de", "n": 4}),
        SourceRow(2, 3, {"name": "Bert", "mail": "b@b.de", "n": 0}),
    ]
    rejects = io.StringIO(newline="")
    summary = prepare(
        rows, lambda row: template.render_row(row.fields), staging=io.BytesIO(), rejects=rejects
    )
    assert (summary.valid, summary.rejected) == (1, 1)
    assert list(csv.reader(io.StringIO(rejects.getvalue())))[1] == [
        "2",
        "3",
        "b@b.de",
        "validate",
        "Number: integer division or modulo by zero",
    ]


def test_to_body_raising_value_error_rejects_the_row() -> None:
    def explode(row: SourceRow) -> tuple[dict[str, Any], list[str]]:
        raise ValueError("Address.City: something broke")

    rejects = io.StringIO(newline="")
    summary = prepare([SourceRow(1, 2, {"a": "b"})], explode, staging=io.BytesIO(), rejects=rejects)
    assert summary.rejected == 1
    assert rejects.getvalue().splitlines()[1].endswith('"Address.City: something broke"')


def test_bodies_that_are_not_json_are_rejected() -> None:
    bodies: list[dict[str, Any]] = [{"Name": "\ud800"}, {"Name": "x", "Extra": float("nan")}]
    rows = [SourceRow(i + 1, i + 2, {}) for i in range(len(bodies))]
    rejects = io.StringIO(newline="")

    class AcceptAll:
        def problems(self, body: object) -> list[str]:
            return []

    summary = prepare(
        rows,
        lambda row: (bodies[row.number - 1], []),
        staging=io.BytesIO(),
        rejects=rejects,
        validator=AcceptAll(),
    )
    assert summary.rejected == 2
    problems = [line[4] for line in csv.reader(io.StringIO(rejects.getvalue()))][1:]
    assert problems[0] == "<body>: contains a lone surrogate (\\ud800-\\udfff), which UTF-8 cannot carry"
    assert (
        problems[1] == "<body>: cannot be written as JSON: Out of range float values are not JSON compliant"
    )


def test_spreadsheet_formulas_are_defused_in_the_rejects_file() -> None:
    stream = io.StringIO(newline="")
    writer = RejectsWriter(stream)
    writer.write(row=1, line=2, key='=HYPERLINK("http://x")', stage="validate", problems=["-1: bad", "ok"])
    writer.write(row=2, line=None, key=None, stage="create", problems=["Email: duplicate"])
    assert list(csv.reader(io.StringIO(stream.getvalue()))) == [
        list(REJECT_COLUMNS),
        ["1", "2", '\'=HYPERLINK("http://x")', "validate", "'-1: bad | ok"],
        ["2", "", "", "create", "Email: duplicate"],
    ]
    appended = io.StringIO(newline="")
    RejectsWriter(appended, header=False).write(row=3, line=4, key="k", stage="create", problems=["x"])
    assert appended.getvalue() == '"3","4","k","create","x"\r\n'


def test_object_storage_urls_and_paths(tmp_path: Path) -> None:
    folder = f"memory://billbee-tests/{uuid.uuid4().hex}"
    fsspec.filesystem("memory").mkdir(folder)
    summary = prepare(_rows(2, 1), _dotted, staging=f"{folder}/valid.jsonl", rejects=f"{folder}/rejects.csv")
    assert summary.staging == f"{folder}/valid.jsonl"
    with fsspec.open(f"{folder}/valid.jsonl", "rb") as handle:
        assert len(handle.read().splitlines()) == 2
    with fsspec.open(f"{folder}/rejects.csv", "rb") as handle:
        assert handle.read().startswith(b'\xef\xbb\xbf"row"')

    from upath import UPath

    target = UPath(tmp_path) / "out"
    target.mkdir()
    summary = prepare(_rows(1, 1), _dotted, staging=target / "v.jsonl", rejects=target / "r.csv")
    assert summary.rejects == str(target / "r.csv")
    assert len(_read_rejects(tmp_path / "out" / "r.csv")) == 1


def test_logs_name_counts_never_row_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="billbee_provider"):
        prepare(iter_csv(_sample(tmp_path)), _dotted, staging=io.BytesIO(), rejects=io.StringIO())
    text = caplog.text
    assert "Prepared 5 rows: 2 valid, 3 rejected" in text
    for personal in ("Jürgen", "example.de", "Weiß", "Königsallee"):
        assert personal not in text


def test_prepare_streams_without_holding_rows(tmp_path: Path) -> None:
    seen: list[int] = []

    def rows() -> Iterator[SourceRow]:
        for number in range(1, 5_001):
            seen.append(number)
            yield SourceRow(number, number + 1, {"Email": f"k{number}@example.de", "Type": str(number % 2)})

    staging = io.BytesIO()
    summary = prepare(rows(), _dotted, staging=staging, rejects=io.StringIO())
    assert summary.valid == 5_000 == len(staging.getvalue().splitlines())


def test_the_core_packages_do_not_import_airflow() -> None:
    """api/, customers/ and imports/: every module, imported in a fresh interpreter."""
    code = (
        "import sys\n"
        "import pkgutil, importlib\n"
        "for name in ('api', 'customers', 'imports'):\n"
        "    package = importlib.import_module(f'billbee_provider.{name}')\n"
        "    for module in pkgutil.iter_modules(package.__path__):\n"
        "        importlib.import_module(f'billbee_provider.{name}.{module.name}')\n"
        "loaded = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
