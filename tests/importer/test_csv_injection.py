"""No CSV the import writes can run as a spreadsheet formula ("CSV injection").

Valid e-mails and names may start with ``=``, ``+``, ``-`` or ``@`` (``=1+2@example.de``
is a valid address). Every CSV of the import (``rejects.csv`` of both stages,
``results.csv``) goes through one writer that prefixes such a cell with ``'``; the
write-back of the SQL sync still finds every row's Billbee Id, because it matches
results by their numeric row number, never by the (escaped) key.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billbee_provider.api.client import BillbeeClient
from billbee_provider.customers.schema import get_validator
from billbee_provider.customers.template import BodyTemplate
from billbee_provider.imports.create import import_customers
from billbee_provider.imports.extract_jsonl import iter_jsonl
from billbee_provider.imports.files import (
    RESULTS_COLUMNS,
    Reject,
    SafeCsvWriter,
    add_rejects,
    iter_results,
    write_results,
)
from billbee_provider.imports.ledger import Ledger
from billbee_provider.imports.plan import RowOutcome
from billbee_provider.imports.report import key_id_pairs
from billbee_provider.imports.validate import prepare
from tests.conftest import Sandbox

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff".encode()

#: A shop table's rows (as the SQL extract writes them), mapped by a template.
SHOP_ROWS: list[dict[str, Any]] = [
    {"id": 101, "name": "=SUM(1+2)*cmd|' /C calc'!A0", "email": "=1+2@example.de", "type": 0},
    {"id": 102, "name": "+Anna Plus", "email": "+anna@example.de", "type": 0},  # already in Billbee
    {"id": 103, "name": "-Bob Minus", "email": "-bob@example.de", "type": 1},
    {"id": 104, "name": "@Carla At", "email": "carla@example.de", "type": 0},
    {"id": 105, "name": "=Evil", "email": "=evil(at)example.de", "type": 0},  # validate rejects
    {"id": 106, "name": "@Refused", "email": "-refused@example.de", "type": 7},  # Billbee rejects
]
TEMPLATE = {"Name": "{{ row.name }}", "Email": "{{ row.email }}", "Type": "{{ row.type }}"}


class WithoutTypeRule:
    """Billbee's schema, except that any integer ``Type`` passes: Billbee refuses 7 itself."""

    def problems(self, body: object) -> list[str]:
        return [p for p in get_validator().problems(body) if not p.startswith("Type:")]


def cells(path: Path) -> list[list[str]]:
    content = path.read_bytes()
    assert content.startswith(BOM), f"{path.name} needs its BOM"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def assert_no_formula(path: Path) -> None:
    for number, line in enumerate(cells(path), start=1):
        for cell in line:
            assert not cell.startswith(FORMULA_STARTS), f"{path.name} line {number}: {cell!r}"


def run_import(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> tuple[Sandbox, dict[str, Path]]:
    """Extract (JSONL, as the SQL extract writes it) -> validate -> create against the sandbox."""
    files = {
        name: tmp_path / name for name in ("source.jsonl", "staging.jsonl", "rejects.csv", "results.csv")
    }
    files["source.jsonl"].write_text("".join(json.dumps(row) + "\n" for row in SHOP_ROWS), encoding="utf-8")
    template = BodyTemplate(TEMPLATE)
    validated = prepare(
        iter_jsonl(files["source.jsonl"]),
        lambda row: template.render_row(row.fields),
        staging=files["staging.jsonl"],
        rejects=files["rejects.csv"],
        validator=WithoutTypeRule(),
    )
    assert (validated.valid, validated.rejected) == (5, 1)
    sandbox = make_sandbox(endpoint_limit=10)
    with BillbeeClient(sandbox.client_config(endpoint_rate_limit=10), rng=lambda: 0.05) as client:
        client.create_customer({"Name": "+Anna Plus", "Email": "+anna@example.de", "Type": 0})
        with Ledger(tmp_path / "ledger.jsonl") as ledger:
            summary = import_customers(
                files["staging.jsonl"],
                client=client,
                ledger=ledger,
                results_path=files["results.csv"],
                rejects_path=files["rejects.csv"],
                lock_dir=tmp_path / "locks",
            )
    assert summary.counts["created"] == 3 and summary.counts["existing"] == 1
    assert summary.counts["rejected"] == 1 and summary.rejects_added == 1
    return sandbox, files


def test_no_cell_of_any_csv_starts_a_formula(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox, files = run_import(make_sandbox, tmp_path)
    for name in ("results.csv", "rejects.csv"):
        assert_no_formula(files[name])
        assert files[name].read_bytes().count(b"\r\n") == len(cells(files[name]))

    results = {line[0]: line for line in cells(files["results.csv"])[1:]}
    assert results["1"] == ["1", "'=1+2@example.de", results["1"][2], "created"]
    assert results["2"][1:] == ["'+anna@example.de", results["2"][2], "existing"]
    assert results["3"][1] == "'-bob@example.de" and results["6"][1:] == [
        "'-refused@example.de",
        "",
        "rejected",
    ]
    assert all(line[2].isdigit() for row, line in results.items() if row != "6")

    rejects = cells(files["rejects.csv"])
    assert rejects[0] == ["row", "line", "key", "stage", "problems"]
    by_stage = {line[3]: line for line in rejects[1:]}
    assert by_stage["validate"][:3] == ["5", "5", "'=evil(at)example.de"]
    assert by_stage["billbee"][:3] == ["6", "", "'-refused@example.de"]
    assert "Type" in by_stage["billbee"][4]

    # Only the files are escaped: Billbee got the values as they are.
    names = {c["Name"] for c in sandbox.customers()}
    assert {"=SUM(1+2)*cmd|' /C calc'!A0", "+Anna Plus", "-Bob Minus", "@Carla At"} == names


def test_write_back_gives_each_row_its_billbee_id(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, files = run_import(make_sandbox, tmp_path)
    ids = {c["Email"]: c["Id"] for c in sandbox.customers()}
    pairs = dict(key_id_pairs(files["source.jsonl"], files["results.csv"], "id"))
    assert pairs == {
        101: ids["=1+2@example.de"],
        102: ids["+anna@example.de"],
        103: ids["-bob@example.de"],
        104: ids["carla@example.de"],
    }


def test_the_one_writer_escapes_every_formula_start_and_lone_surrogates() -> None:
    stream = io.StringIO(newline="")
    writer = SafeCsvWriter(stream)
    writer.writerow(["=a", "+b", "-c", "@d", "\te", "\rf", "g=", None, 7, "\ud800x"])
    assert stream.getvalue() == ('"\'=a","\'+b","\'-c","\'@d","\'\te","\'\rf","g=","","7","\\ud800x"\r\n')


def test_billbee_stage_rejects_and_results_are_escaped_and_read_back(tmp_path: Path) -> None:
    rejects, results = tmp_path / "rejects.csv", tmp_path / "results.csv"
    added = add_rejects(rejects, "billbee", [Reject(3, "@x@example.de", ['=HYPERLINK("http://x")'])])
    assert added == 1
    assert cells(rejects) == [
        ["row", "line", "key", "stage", "problems"],
        ["3", "", "'@x@example.de", "billbee", '\'=HYPERLINK("http://x")'],
    ]
    assert add_rejects(rejects, "billbee", [Reject(3, "@x@example.de", ["again"])]) == 0

    write_results(results, [RowOutcome(2, "=1+2@example.de", "created", 42), RowOutcome(3, "-b", "rejected")])
    assert cells(results)[0] == list(RESULTS_COLUMNS)
    assert [(r.row, r.billbee_id, r.status) for r in iter_results(results)] == [
        (2, 42, "created"),
        (3, None, "rejected"),
    ]
