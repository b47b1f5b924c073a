"""Tests of :mod:`billbee_provider.imports.rejects`: rejects.csv a page at a time, one entry per problem."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from pathlib import Path

import pytest

from billbee_provider.api.endpoints import CREATE_CUSTOMER
from billbee_provider.api.envelope import error_for_code, error_for_status
from billbee_provider.imports.files import BILLBEE_STAGE, VALIDATE_STAGE, Reject, RejectsWriter, add_rejects
from billbee_provider.imports.rejects import (
    MAX_PAGE_SIZE,
    UNREADABLE_LINE,
    RejectEntry,
    RejectsPage,
    read_rejects_page,
    split_problem,
)
from billbee_provider.imports.send import billbee_problems
from tests.importer import MemoryPath

WHAT = CREATE_CUSTOMER.key
KEYS = ("anna@example.de", "=evil@example.de", "bob@example.de", "carla@example.de", "dora@example.de")


def write_validate_rejects(path: Path) -> None:
    """What the validate stage writes today (problem texts as customers/schema.py words them)."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = RejectsWriter(out)
        writer.write(
            row=2,
            line=3,
            key=KEYS[0],
            stage=VALIDATE_STAGE,
            problems=[
                "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code",
                "Email: 'anna@exampel' is not an e-mail address: the domain has no dot",
            ],
        )
        writer.write(row=3, line=5, key=None, stage=VALIDATE_STAGE, problems=["<body>: no field is set"])
        writer.write(
            row=4, line=7, key=None, stage=VALIDATE_STAGE, problems=["line 7: row has 9 cells, header has 8"]
        )
        writer.write(row=5, line=8, key=KEYS[1], stage=VALIDATE_STAGE, problems=["=Formula: unknown field"])


def billbee_refusals() -> list[Reject]:
    """Billbee's refusals as the create stage words them (send.billbee_problems of real errors)."""
    error_code = error_for_code(
        11,
        {"ErrorCode": 11, "ErrorMessage": "Type: 7 is not a customer type; use 0 or 1."},
        status=200,
        what=WHAT,
    )
    model_state = error_for_status(
        400,
        {
            "Message": "The request is invalid.",
            "ModelState": {
                "model.Type": ["Error converting value \"abc\" to type 'System.Int32'. Path 'Type'."],
                "model.Address.Zip": ["too long", "not a number"],
            },
        },
        what=WHAT,
    )
    plain = error_for_status(400, {"Message": "Bad request: no body"}, what=WHAT)
    empty_model_state = error_for_status(400, {"ModelState": {}}, what=WHAT)
    return [
        Reject(row=10, key=KEYS[2], problems=[billbee_problems(error_code)]),
        Reject(row=11, key=KEYS[3], problems=[billbee_problems(model_state)]),
        Reject(row=12, key=KEYS[4], problems=[billbee_problems(plain)]),
        Reject(row=13, key=None, problems=[billbee_problems(empty_model_state)]),
        Reject(row=14, key=None, problems=[""]),
    ]


ALL_ENTRIES = [
    RejectEntry(
        2, 3, "validate", "Address.CountryCode", "'Deutschland' is not an ISO 3166-1 alpha-2 country code"
    ),
    RejectEntry(2, 3, "validate", "Email", "'anna@exampel' is not an e-mail address: the domain has no dot"),
    RejectEntry(3, 5, "validate", "<body>", "no field is set"),
    RejectEntry(4, 7, "validate", "", "line 7: row has 9 cells, header has 8"),
    RejectEntry(5, 8, "validate", "=Formula", "unknown field"),
    RejectEntry(
        10,
        None,
        "billbee",
        "",
        "Billbee ErrorCode 11 InvalidData: Type: 7 is not a customer type; use 0 or 1.",
    ),
    RejectEntry(11, None, "billbee", "model.Address.Zip", "too long"),
    RejectEntry(11, None, "billbee", "model.Address.Zip", "not a number"),
    RejectEntry(
        11,
        None,
        "billbee",
        "model.Type",
        "Error converting value \"abc\" to type 'System.Int32'. Path 'Type'.",
    ),
    RejectEntry(12, None, "billbee", "", "HTTP 400: Bad request: no body"),
    RejectEntry(13, None, "billbee", "", "HTTP 400 Billbee refused the body (invalid request)"),
    RejectEntry(14, None, "billbee", "", ""),
]


@pytest.fixture
def rejects(tmp_path: Path) -> Path:
    path = tmp_path / "rejects.csv"
    write_validate_rejects(path)
    assert add_rejects(path, BILLBEE_STAGE, billbee_refusals()) == 5
    return path


def test_both_stages_split_into_field_and_reason(rejects: Path) -> None:
    page = read_rejects_page(rejects, 0, MAX_PAGE_SIZE)
    assert page == RejectsPage(ALL_ENTRIES, len(ALL_ENTRIES))
    assert read_rejects_page(str(rejects)) == page  # a path string
    assert read_rejects_page(rejects.as_uri()) == page  # a file:// URL


def test_the_key_column_is_never_returned(rejects: Path) -> None:
    assert "=evil" in rejects.read_text("utf-8-sig")  # the file has the keys ...
    shown = repr(read_rejects_page(rejects, 0, MAX_PAGE_SIZE).as_dict())
    assert not [key for key in KEYS if key in shown or key.lstrip("=") in shown]  # ... a page has none


def test_pages_cover_every_entry_once(rejects: Path) -> None:
    total = len(ALL_ENTRIES)
    for limit in (1, 2, 5, 50):
        pages = [read_rejects_page(rejects, offset, limit) for offset in range(0, total, limit)]
        assert {page.total for page in pages} == {total}
        assert [entry for page in pages for entry in page.rows] == ALL_ENTRIES
    assert read_rejects_page(rejects, 3, 2).rows == ALL_ENTRIES[3:5]
    assert read_rejects_page(rejects, total, 10) == RejectsPage([], total)
    assert read_rejects_page(rejects, total + 100, 10) == RejectsPage([], total)
    assert read_rejects_page(rejects, 0, 0) == RejectsPage([], total)


def test_page_as_json(rejects: Path) -> None:
    assert read_rejects_page(rejects, 3, 1).as_dict() == {
        "rows": [
            {
                "row": 4,
                "line": 7,
                "stage": "validate",
                "field": "",
                "reason": "line 7: row has 9 cells, header has 8",
            }
        ],
        "total": len(ALL_ENTRIES),
    }


def test_a_missing_or_empty_file_is_an_empty_page(tmp_path: Path) -> None:
    assert read_rejects_page(tmp_path / "nope.csv") == RejectsPage([], 0)
    assert read_rejects_page(tmp_path / "no" / "folder" / "rejects.csv") == RejectsPage([], 0)
    assert read_rejects_page(MemoryPath(f"/{uuid.uuid4().hex}/rejects.csv")) == RejectsPage([], 0)
    (tmp_path / "empty.csv").write_bytes(b"")
    assert read_rejects_page(tmp_path / "empty.csv") == RejectsPage([], 0)
    header_only = tmp_path / "header.csv"
    with header_only.open("w", encoding="utf-8-sig", newline="") as out:
        RejectsWriter(out)
    assert read_rejects_page(header_only) == RejectsPage([], 0)


def test_an_object_store_location(rejects: Path) -> None:
    target = MemoryPath(f"/{uuid.uuid4().hex}/rejects.csv")
    target.fs.pipe(target.path, rejects.read_bytes())
    assert read_rejects_page(target, 5, 3) == RejectsPage(ALL_ENTRIES[5:8], len(ALL_ENTRIES))


@pytest.mark.parametrize(
    ("stage", "problem", "split"),
    [
        (
            "validate",
            "Address.Zip: '1010' does not match '^[0-9]{5}$'",
            ("Address.Zip", "'1010' does not match '^[0-9]{5}$'"),
        ),
        (
            "validate",
            "E-Mail Adresse: unknown field (not in the customer model)",
            ("E-Mail Adresse", "unknown field (not in the customer model)"),
        ),
        (
            "validate",
            "Addresses.0.Zip: expected string, got integer 5",
            ("Addresses.0.Zip", "expected string, got integer 5"),
        ),
        (
            "validate",
            "line 12: a cell is longer than 131072 characters",
            ("", "line 12: a cell is longer than 131072 characters"),
        ),
        ("validate", "no colon at all", ("", "no colon at all")),
        ("validate", "Email:no space after the colon", ("", "Email:no space after the colon")),
        ("billbee", ": a ModelState error of the whole body", ("", "a ModelState error of the whole body")),
        ("billbee", "model.Addresses[0].Zip: too long", ("model.Addresses[0].Zip", "too long")),
        (
            "billbee",
            "Billbee ErrorCode 3 (unnamed): Name: missing",
            ("", "Billbee ErrorCode 3 (unnamed): Name: missing"),
        ),
        ("billbee", "HTTP 413: Request Entity Too Large", ("", "HTTP 413: Request Entity Too Large")),
        ("billbee", "some message without a colon", ("", "some message without a colon")),
    ],
)
def test_one_problem_splits_at_its_path(stage: str, problem: str, split: tuple[str, str]) -> None:
    assert split_problem(stage, problem) == split


def test_a_separator_inside_a_validate_reason_stays_in_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "rejects.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        RejectsWriter(out).write(
            row=2,
            line=2,
            key=None,
            stage=VALIDATE_STAGE,
            problems=["Address.CountryCode: 'DE | AT' is not a country code", "Type: 'x' is not an integer"],
        )
    assert read_rejects_page(path).rows == [
        RejectEntry(2, 2, "validate", "Address.CountryCode", "'DE | AT' is not a country code"),
        RejectEntry(2, 2, "validate", "Type", "'x' is not an integer"),
    ]


def test_twenty_thousand_rows_a_page_from_the_middle_streamed(tmp_path: Path) -> None:
    path = tmp_path / "rejects.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = RejectsWriter(out)
        for row in range(2, 20_002):
            writer.write(
                row=row,
                line=row + 1,
                key=f"kunde{row}@example.de",
                stage=VALIDATE_STAGE,
                problems=[f"Address.Zip: '{row}' does not match '^[0-9]{{5}}$'", "Type: required"],
            )
    size = path.stat().st_size
    tracemalloc.start()
    try:
        page = read_rejects_page(path, offset=20_000, limit=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.total == 40_000
    first = [(e.row, e.line, e.field) for e in page.rows[:2]]
    assert first == [(10_002, 10_003, "Address.Zip"), (10_002, 10_003, "Type")]
    assert page.rows[-1] == RejectEntry(10_026, 10_027, "validate", "Type", "required")
    assert len(page.rows) == 50
    print(f"20,000 reject rows ({size} bytes): peak memory {peak} bytes for one page")
    assert peak < size / 4  # streamed, not read whole


def test_a_line_too_long_for_the_csv_reader_is_one_entry_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rejects.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = RejectsWriter(out)
        many = [f"Unknown{i}: unknown field (not in the customer model)" for i in range(5_000)]
        writer.write(row=2, line=2, key=None, stage=VALIDATE_STAGE, problems=many)
        writer.write(row=3, line=3, key=None, stage=VALIDATE_STAGE, problems=["Email: required but missing"])
    assert len(path.read_bytes()) > csv.field_size_limit()
    assert read_rejects_page(path).rows == [
        RejectEntry(None, None, "", "", UNREADABLE_LINE),
        RejectEntry(3, 3, "validate", "Email", "required but missing"),
    ]


def test_bad_arguments_and_other_files_are_refused(rejects: Path, tmp_path: Path) -> None:
    for offset, limit in ((-1, 10), (0, -1), (0, MAX_PAGE_SIZE + 1)):
        with pytest.raises(ValueError, match="offset must be"):
            read_rejects_page(rejects, offset, limit)
    results = tmp_path / "results.csv"
    results.write_text('"row","key","billbee_id","status"\r\n"2","a@example.de","7","created"\r\n', "utf-8")
    with pytest.raises(ValueError, match="not a rejects file: the header has no column line, stage, prob"):
        read_rejects_page(results)


def test_a_hand_edited_file_is_read_by_its_header(tmp_path: Path) -> None:
    """Saved again by a spreadsheet: other column order, no quotes, no BOM, missing cells."""
    path = tmp_path / "rejects.csv"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(
        [["stage", "problems", "row", "line", "key", "note"], ["validate", "Email: required", "7", ""], []]
    )
    path.write_text(text.getvalue(), "utf-8")
    assert read_rejects_page(path).rows == [RejectEntry(7, None, "validate", "Email", "required")]
