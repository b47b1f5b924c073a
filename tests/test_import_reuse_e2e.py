"""`billbee_import_customers` run twice into one output folder with two different CSVs.

A nightly import with a fixed ``output_dir``: the second file's rows 1-3 are other
customers than the first file's rows 1-3. Each customer of both files is created exactly
once, and each run's results file holds only its own rows.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_client import Sandbox

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

HEADER = [
    "Name",
    "Email",
    "Type",
    "Address.FirstName",
    "Address.LastName",
    "Address.Street",
    "Address.Housenumber",
    "Address.Zip",
    "Address.City",
    "Address.CountryCode",
    "Address.AddressType",
]


def write_csv(path: Path, people: list[tuple[str, str]]) -> list[str]:
    """A CSV of ``(first name, last name)`` customers; returns their e-mails in row order."""
    emails = []
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for first, last in people:
            email = f"{first}.{last}@example.de".lower().replace("ü", "ue").replace("ı", "i")
            emails.append(email)
            writer.writerow(
                [f"{first} {last}", email, 0, first, last, "Hauptstraße", "1", "50667", "Köln", "DE", 1]
            )
    return emails


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_files_into_one_output_dir_create_each_customer_once(
    run_airflow: Callable[..., Any], secret_sandbox: Sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "nightly"
    day_a = write_csv(tmp_path / "a.csv", [("Anna", "Schmidt"), ("Ben", "Koch"), ("Carla", "Wolf")])
    day_b = write_csv(
        tmp_path / "b.csv",
        [("Dirk", "Neumann"), ("Eva", "Braun"), ("Frank", "Zimmer"), ("Gül", "Yılmaz")],
    )
    summaries = []
    for source, name in ((tmp_path / "a.csv", "a"), (tmp_path / "b.csv", "b")):
        conf = json.dumps({"source": str(source), "output_dir": str(out)})
        done = run_airflow("dags", "test", "billbee_import_customers", "-c", conf)
        assert done.returncode == 0 and "state=success" in done.stdout + done.stderr, done.stdout[-3000:]
        shutil.copy(out / "results.csv", tmp_path / f"results-{name}.csv")
        summaries.append(json.loads((out / "summary.json").read_text(encoding="utf-8")))

    stored = secret_sandbox.customers()
    assert Counter(c["Email"] for c in stored) == Counter(day_a + day_b)  # every one, once
    posts = secret_sandbox.journal("/api/v1/customers", "POST")
    assert sorted(json.loads(p["body"])["Email"] for p in posts) == sorted(day_a + day_b)
    ids = {c["Email"]: str(c["Id"]) for c in stored}
    for name, emails, summary in (("a", day_a, summaries[0]), ("b", day_b, summaries[1])):
        results = read_results(tmp_path / f"results-{name}.csv")
        assert [(r["row"], r["key"], r["billbee_id"], r["status"]) for r in results] == [
            (str(n), email, ids[email], "created") for n, email in enumerate(emails, start=1)
        ]
        assert summary["counts"]["created"] == len(emails)
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text("utf-8").splitlines()]
    assert len({r["input"] for r in ledger}) == 2  # one identity per file
