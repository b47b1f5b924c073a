"""The validate stage end to end: source -> mapping or template -> prepare, for any input.

The property: for any file, :func:`prepare` either returns a summary with
``rows_read == valid + rejected`` and staging and rejects files that hold exactly those
rows (each row in one of them, once), or raises :class:`SourceError` (naming the file
and the line) or :class:`TooManyRejects` (naming the rejects file). Anything else is a
crash a user cannot act on, and fails the test.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billbee_provider.customers.mapping import body_from_dotted
from billbee_provider.customers.template import BodyTemplate, TemplateError
from billbee_provider.imports.extract import SourceError, SourceRow
from billbee_provider.imports.extract_csv import iter_csv
from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.files import REJECT_COLUMNS
from billbee_provider.imports.validate import PrepareSummary, TooManyRejects, prepare

from .strategies import (
    LINE_ENDINGS,
    PROPERTY_TIMEOUT,
    csv_bytes,
    flat_bodies,
    jsonl_bytes,
    nested,
    templates,
    write_csv,
)

pytestmark = pytest.mark.timeout(PROPERTY_TIMEOUT)

Reader = Callable[[Path], Iterator[SourceRow]]
ToBody = Callable[[SourceRow], tuple[dict[str, Any], list[str]]]
MaxRejects = int | float | None

max_rejects_values: st.SearchStrategy[MaxRejects] = st.one_of(
    st.none(), st.integers(min_value=0, max_value=4), st.floats(min_value=0.05, max_value=0.95)
)


def dotted(row: SourceRow) -> tuple[dict[str, Any], list[str]]:
    """The default mapping: columns are Billbee's dotted field paths."""
    return body_from_dotted(row.fields)


@dataclass
class Run:
    """Where one :func:`prepare` run read and wrote."""

    source: Path
    staging: Path
    rejects: Path


@contextmanager
def run_files(data: bytes, suffix: str) -> Iterator[Run]:
    """A fresh folder with the source file written and room for staging and rejects."""
    with tempfile.TemporaryDirectory(prefix="billbee-fuzz-") as folder:
        base = Path(folder)
        (base / f"customers{suffix}").write_bytes(data)
        yield Run(base / f"customers{suffix}", base / "staging.jsonl", base / "rejects.csv")


def read_staging(path: Path) -> list[dict[str, Any]]:
    """The staging file's lines as objects; split on ``\\n`` only, as the importer does.

    (``str.splitlines`` would also split on U+0085 and U+2028, which JSON leaves raw.)
    """
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def read_rejects(path: Path) -> list[dict[str, str]]:
    """The rejects file (UTF-8 with a BOM, for Excel) as dicts."""
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == REJECT_COLUMNS
        return list(reader)


def assert_files_match(summary: PrepareSummary, run: Run) -> None:
    """Every row read is in exactly one file; the counts say so too."""
    staged, rejected = read_staging(run.staging), read_rejects(run.rejects)
    assert summary.rows_read == summary.valid + summary.rejected
    assert (len(staged), len(rejected)) == (summary.valid, summary.rejected)
    staged_rows = [item["row"] for item in staged]
    rejected_rows = [int(item["row"]) for item in rejected]
    assert staged_rows == sorted(staged_rows) and rejected_rows == sorted(rejected_rows)
    assert sorted(staged_rows + rejected_rows) == list(range(1, summary.rows_read + 1))
    for item in staged:
        assert set(item) == {"row", "key", "body"} and item["body"]
    for item in rejected:
        assert item["stage"] == "validate" and item["problems"], item
        assert item["line"].isdigit(), item


def check_run(run: Run, reader: Reader, to_body: ToBody, max_rejects: MaxRejects) -> PrepareSummary | None:
    """Run :func:`prepare` and check its outcome; ``None`` if it refused the file."""
    try:
        summary = prepare(
            reader(run.source), to_body, staging=run.staging, rejects=run.rejects, max_rejects=max_rejects
        )
    except SourceError as error:
        message = str(error)
        assert message.startswith(str(run.source)), message
        assert "line" in message or "header" in message, message
        return None
    except TooManyRejects as error:
        assert str(run.rejects) in str(error)
        assert_files_match(error.summary, run)
        return None
    assert_files_match(summary, run)
    return summary


@given(data=csv_bytes(), max_rejects=max_rejects_values)
def test_any_csv_file_is_accounted_for_row_by_row(data: bytes, max_rejects: MaxRejects) -> None:
    with run_files(data, ".csv") as run:
        check_run(run, iter_csv, dotted, max_rejects)


@given(data=jsonl_bytes(), max_rejects=max_rejects_values)
def test_any_jsonl_file_is_accounted_for_row_by_row(data: bytes, max_rejects: MaxRejects) -> None:
    with run_files(data, ".jsonl") as run:
        check_run(run, iter_jsonl, dotted, max_rejects)


@given(template=templates(), data=st.one_of(csv_bytes(), jsonl_bytes()))
def test_any_template_over_any_file_is_accounted_for(template: dict[str, Any], data: bytes) -> None:
    try:
        compiled = BodyTemplate(template)
    except TemplateError:
        return  # refused before any row is read: see test_fuzz_template
    reader: Reader = iter_jsonl if data.lstrip().startswith(b"{") else iter_csv
    with run_files(data, ".jsonl" if reader is iter_jsonl else ".csv") as run:
        check_run(run, reader, lambda row: compiled.render_row(row.fields), None)


# --- valid rows survive, bad rows are rejected with their line -----------------------------


def csv_of(
    bodies: list[dict[str, Any]], endings: list[str], delimiter: str, bom: bool
) -> tuple[bytes, list[int]]:
    """Write flat bodies as a CSV file with the dotted header; return it and each row's line."""
    header = list(dict.fromkeys(name for body in bodies for name in body)) or ["Email"]
    records = [[str(body.get(name, "")) for name in header] for body in bodies]
    file = write_csv(header, records, delimiter=delimiter, endings=endings, bom=bom)
    return file.data, file.starts


@given(
    bodies=st.lists(flat_bodies(), min_size=1, max_size=6),
    endings=st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=3),
    delimiter=st.sampled_from([",", ";"]),
    bom=st.booleans(),
)
def test_valid_csv_rows_reach_staging_byte_exact(
    bodies: list[dict[str, Any]], endings: list[str], delimiter: str, bom: bool
) -> None:
    data, _ = csv_of(bodies, endings, delimiter, bom)
    with run_files(data, ".csv") as run:
        summary = check_run(run, lambda path: iter_csv(path, delimiter=delimiter), dotted, 0)
        staged = read_staging(run.staging)
    assert summary is not None and summary.rejected == 0
    assert [item["body"] for item in staged] == [nested(body) for body in bodies]
    assert [item["key"] for item in staged] == [body["Email"].strip().lower() for body in bodies]


@given(bodies=st.lists(flat_bodies(), min_size=1, max_size=6), ascii_only=st.booleans())
def test_valid_jsonl_rows_reach_staging_byte_exact(bodies: list[dict[str, Any]], ascii_only: bool) -> None:
    data = "".join(json.dumps(body, ensure_ascii=ascii_only) + "\n" for body in bodies).encode()
    with run_files(data, ".jsonl") as run:
        summary = check_run(run, iter_jsonl, dotted, 0)
        staged = read_staging(run.staging)
    assert summary is not None and summary.rejected == 0
    assert [item["body"] for item in staged] == [nested(body) for body in bodies]


def huge_name(body: dict[str, Any]) -> None:
    """A name longer than a CSV cell may be, on one line.

    (A multi-line quoted cell after it would hide where the row ends: the file then
    fails as a whole, see test_fuzz_sources.)
    """
    for name, value in body.items():
        if isinstance(value, str):
            body[name] = value.replace("\r", " ").replace("\n", " ")
    body["Name"] = "x" * 140_000


#: Ways to spoil a valid row, and a word its reject must contain.
SPOILERS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "type": (lambda body: body.update(Type="zwei"), "Type"),
    "email": (lambda body: body.update(Email="anna(at)example.de"), "Email"),
    "country": (lambda body: body.update({"Address.CountryCode": "Deutschland"}), "Address.CountryCode"),
    "huge": (huge_name, "longer than 131072 characters"),
    "unknown": (lambda body: body.update(Emial="typo@example.de"), "Emial"),
}


@given(
    rows=st.lists(st.tuples(flat_bodies(), st.sampled_from([None, *SPOILERS])), min_size=1, max_size=8),
    endings=st.lists(st.sampled_from(LINE_ENDINGS), min_size=1, max_size=3),
    tight=st.booleans(),
)
def test_bad_rows_are_rejected_with_their_line_and_good_rows_go_through(
    rows: list[tuple[dict[str, Any], str | None]], endings: list[str], tight: bool
) -> None:
    rows = [(dict(body), spoiler) for body, spoiler in rows]
    for body, spoiler in rows:
        if spoiler:
            SPOILERS[spoiler][0](body)
    bad = [number for number, (_, spoiler) in enumerate(rows, start=1) if spoiler]
    data, starts = csv_of([body for body, _ in rows], endings, ",", bom=False)
    max_rejects = len(bad) - 1 if tight and bad else len(bad)
    with run_files(data, ".csv") as run:
        summary = check_run(run, lambda path: iter_csv(path, delimiter=","), dotted, max_rejects)
        staged, rejected = read_staging(run.staging), read_rejects(run.rejects)
    assert (summary is None) == (max_rejects < len(bad))
    assert [item["row"] for item in staged] == [n for n in range(1, len(rows) + 1) if n not in bad]
    assert [(int(item["row"]), int(item["line"])) for item in rejected] == [(n, starts[n - 1]) for n in bad]
    for item, number in zip(rejected, bad, strict=True):
        spoiler = rows[number - 1][1]
        assert spoiler is not None and SPOILERS[spoiler][1] in item["problems"], item


@given(
    digits=st.integers(min_value=1, max_value=6_000),
    column=st.sampled_from(["Type", "Address.Id", "MetaData"]),
)
def test_a_number_of_any_length_is_a_value_or_a_problem_of_its_column(digits: int, column: str) -> None:
    cell = f"[{'9' * digits}]" if column == "MetaData" else "9" * digits
    body, problems = body_from_dotted({column: cell})
    assert bool(body) != bool(problems)
    assert all(problem.startswith(f"{column}: ") for problem in problems), problems
