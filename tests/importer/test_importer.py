"""The create stage against the sandbox over real HTTP: rate, duplicates, faults, resume, kills."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.api.errors import BillbeeAuthError
from billbee_provider.imports.account import AccountIndex, contact_emails, customer_emails
from billbee_provider.imports.create import ImportSummary, import_customers
from billbee_provider.imports.files import StagingError
from billbee_provider.imports.ledger import Ledger
from billbee_provider.imports.plan import ExistingCustomersError
from billbee_provider.imports.send import default_in_flight
from billbee_provider.sandbox import Faults
from tests.conftest import REPO, Sandbox
from tests.importer import MemoryPath

CREATE = "/api/v1/customers"
VALIDATE_REJECT = ["7", "8", "kaputt@example", "validate", "Email: not an e-mail address"]


def person(n: int, **extra: Any) -> dict[str, Any]:
    """A realistic German customer body; the e-mail has capitals on purpose."""
    return {
        "Name": f"Jürgen Müßig-Ölschläger {n}",
        "Email": f"Juergen.Muessig{n}@Example.de",
        "Type": 0,
        "Address": {
            "FirstName": "Jürgen",
            "LastName": f"Müßig-Ölschläger {n}",
            "Street": "Straße des 17. Juni",
            "Housenumber": "1a",
            "Zip": "50667",
            "City": "Köln",
            "CountryCode": "DE",
            "AddressType": 1,
        },
        **extra,
    }


def key_of(body: dict[str, Any]) -> str | None:
    email = body.get("Email")
    return email.lower() if email else None


class Job:
    """The files of one import (staging, ledger, results, rejects) in a directory."""

    def __init__(self, directory: Path, bodies: list[dict[str, Any]]) -> None:
        self.bodies = bodies
        self.staging = directory / "staging.jsonl"
        self.ledger = directory / "out" / "ledger.jsonl"
        self.results = directory / "out" / "results.csv"
        self.rejects = directory / "rejects.csv"
        with self.staging.open("w", encoding="utf-8") as out:
            for n, body in enumerate(bodies):
                line = {"row": n + 2, "key": key_of(body), "body": body}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        # What the validate stage leaves: BOM, all quoted, one row it refused itself.
        with self.rejects.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_ALL)
            writer.writerows([["row", "line", "key", "stage", "problems"], VALIDATE_REJECT])

    def run(self, client: BillbeeClient, **options: Any) -> ImportSummary:
        options.setdefault("lock_dir", self.staging.parent / "locks")  # not in /tmp
        with Ledger(self.ledger) as ledger:
            return import_customers(
                self.staging,
                client=client,
                ledger=ledger,
                results_path=self.results,
                rejects_path=self.rejects,
                **options,
            )

    def result_rows(self) -> list[dict[str, str]]:
        assert self.results.read_bytes().startswith("\ufeff".encode())
        with self.results.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    def statuses(self) -> dict[int, str]:
        return {int(r["row"]): r["status"] for r in self.result_rows()}

    def rejects_rows(self) -> list[list[str]]:
        with self.rejects.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))

    def ledger_events(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text("utf-8").splitlines()]


def client_for(sandbox: Sandbox, **overrides: Any) -> BillbeeClient:
    """A client of the sandbox whose backoff waits are short (jitter factor 0.05)."""
    return BillbeeClient(sandbox.client_config(**overrides), rng=lambda: 0.05)


def fast(make_sandbox: Callable[..., Sandbox], **settings: Any) -> tuple[Sandbox, BillbeeClient]:
    """A sandbox allowing 10 requests/s per endpoint and a client using that, for small tests."""
    sandbox = make_sandbox(endpoint_limit=10, **settings)
    return sandbox, client_for(sandbox, endpoint_rate_limit=10)


def emails_in(sandbox: Sandbox) -> Counter[str]:
    return Counter(c["Email"].lower() for c in sandbox.customers())


def posts(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.journal(CREATE, "POST")


def assert_no_personal_data(text: str, bodies: list[dict[str, Any]]) -> None:
    lowered = text.lower()
    for body in bodies:
        assert body["Email"].lower() not in lowered
        assert body["Name"].lower() not in lowered
        assert body["Address"]["LastName"].lower() not in lowered


# -- rate ---------------------------------------------------------------------------


@pytest.mark.slow
def test_thirty_customers_at_the_real_limit(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    job = Job(tmp_path, [person(n) for n in range(30)])
    with client_for(sandbox) as client:
        summary = job.run(client, progress_every=2.0)
    print(f"30 rows at 2/s: create phase {summary.create_seconds:.2f} s, {summary.rate:.2f}/s")
    assert summary.create_seconds <= 17
    assert summary.counts["created"] == 30 and summary.sent == 30 and summary.throttled == 0
    assert all(e["status"] != 429 for e in sandbox.journal())
    assert [e["status"] for e in posts(sandbox)] == [200] * 30
    assert emails_in(sandbox) == Counter(key_of(b) for b in job.bodies)
    results = job.result_rows()
    assert [int(r["row"]) for r in results] == list(range(2, 32))  # the file's order
    assert {r["status"] for r in results} == {"created"}
    stored = {c["Email"].lower(): c["Id"] for c in sandbox.customers()}
    assert all(int(r["billbee_id"]) == stored[r["key"]] for r in results)
    assert "progress: " in caplog.text and "429s seen" in caplog.text
    assert_no_personal_data(caplog.text, job.bodies)
    json.dumps(summary.as_dict())  # XCom-ready


@pytest.mark.slow
def test_slow_answers_overlap_to_keep_two_per_second(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = make_sandbox(faults=Faults(latency=1.5))
    job = Job(tmp_path, [person(n) for n in range(30)])
    with client_for(sandbox) as client:
        summary = job.run(client)
    print(f"30 rows at 2/s, 1.5 s latency: create phase {summary.create_seconds:.2f} s")
    assert summary.create_seconds <= 18
    assert summary.counts["created"] == 30 and summary.throttled == 0
    assert len(posts(sandbox)) == 30


def test_default_in_flight_covers_four_second_answers_at_the_connection_rate(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # rate x 4 s, at least 8 (Billbee's 2/s), at most 64 threads.
    assert [default_in_flight(r) for r in (1, 2, 2.5, 5, 16, 1000)] == [8, 8, 10, 20, 64, 64]
    _, client = fast(make_sandbox)  # endpoint_rate_limit 10
    with client, caplog.at_level(logging.INFO, logger="billbee_provider.imports.create"):
        Job(tmp_path, [person(1)]).run(client, dry_run=True)
    assert "max_in_flight=40" in caplog.text


# -- duplicates ---------------------------------------------------------------------


def duplicate_bodies() -> list[dict[str, Any]]:
    """Rows 2-5: an e-mail already in the account, a new one, the new one again, another."""
    return [person(1), person(2), person(2, Email="JUERGEN.MUESSIG2@example.DE"), person(3)]


def test_if_exists_skip_reports_existing_and_duplicates_and_a_rerun_sends_nothing(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    known_id = client.create_customer(person(1))["Id"]
    job = Job(tmp_path, duplicate_bodies())
    summary = job.run(client)
    assert job.statuses() == {2: "existing", 3: "created", 4: "duplicate_in_file", 5: "created"}
    assert job.result_rows()[0]["billbee_id"] == str(known_id)
    assert len(posts(sandbox)) == 3  # the pre-existing one plus rows 3 and 5
    assert summary.counts["existing"] == 1 and summary.counts["duplicate_in_file"] == 1
    events = {e["row"]: e["event"] for e in job.ledger_events()}
    assert events == {2: "existing", 3: "created", 4: "duplicate_in_file", 5: "created"}
    again = job.run(client)
    assert again.sent == 0 and len(posts(sandbox)) == 3
    assert job.statuses() == {2: "existing", 3: "created", 4: "duplicate_in_file", 5: "created"}
    assert set(emails_in(sandbox).values()) == {1}


def test_if_exists_create_sends_every_row(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox, client = fast(make_sandbox)
    client.create_customer(person(1))
    job = Job(tmp_path, duplicate_bodies())
    summary = job.run(client, if_exists="create")
    assert summary.counts["created"] == 4
    assert sandbox.journal(method="GET") == []  # no existence scan
    assert emails_in(sandbox) == Counter({key_of(person(1)): 2, key_of(person(2)): 2, key_of(person(3)): 1})


def test_if_exists_fail_names_rows_and_sends_nothing(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    client.create_customer(person(1))
    job = Job(tmp_path, duplicate_bodies())
    with pytest.raises(ExistingCustomersError) as err:
        job.run(client, if_exists="fail")
    assert err.value.rows == [2]
    assert "rows 2" in str(err.value) and "@" not in str(err.value)
    assert len(posts(sandbox)) == 1 and not job.results.exists() and job.ledger_events() == []


# -- faults and resume --------------------------------------------------------------


@pytest.mark.slow
def test_lost_answers_and_503s_create_every_row_exactly_once(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox, client = fast(make_sandbox, faults=Faults(drop_rate=0.1, fail_rate=0.1), seed=11)
    job = Job(tmp_path, [person(n) for n in range(30)])
    summary = job.run(client)
    journal = posts(sandbox)
    assert any(e["status"] is None for e in journal), "the seed should drop at least one answer"
    assert any(e["status"] == 503 for e in journal), "the seed should fail at least one create"
    sandbox.set_faults(drop_rate=0.0, fail_rate=0.0)  # so that the checks below can read
    # Each row was committed exactly once (a drop commits, a 503 does not) ...
    assert sum(1 for e in journal if e["status"] in (200, None)) == 30
    # ... and each customer exists exactly once, none lost.
    assert emails_in(sandbox) == Counter(key_of(b) for b in job.bodies)
    assert summary.counts["created"] == 30 and set(job.statuses().values()) == {"created"}
    stored = {c["Email"].lower(): c["Id"] for c in sandbox.customers()}
    assert all(int(r["billbee_id"]) == stored[r["key"]] for r in job.result_rows())
    assert "in-doubt row(s)" in caplog.text
    assert_no_personal_data(caplog.text, job.bodies)


def test_resume_resolves_sending_rows_by_email_and_sends_the_absent_ones(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    bodies = [person(1), person(2), person(3), person(4), {"Name": "Ohne Mail GmbH", "Type": 1}]
    job = Job(tmp_path, bodies)
    # A killed run: rows 2-4 and the row without e-mail (6) were "sending"; only 2 and 3 arrived.
    created = {2: client.create_customer(bodies[0])["Id"], 3: client.create_customer(bodies[1])["Id"]}
    job.ledger.parent.mkdir(parents=True)
    with Ledger(job.ledger) as ledger:
        for row in (2, 3, 4, 6):
            ledger.record(row, key_of(bodies[row - 2]), "sending")
    before = len(posts(sandbox))
    summary = job.run(client)
    sent = [json.loads(e["body"])["Email"] for e in posts(sandbox)[before:]]
    assert sorted(sent) == sorted([bodies[2]["Email"], bodies[3]["Email"]])  # rows 4 and 5 only
    assert job.statuses() == {2: "created", 3: "created", 4: "created", 5: "created", 6: "in_doubt"}
    results = {int(r["row"]): r for r in job.result_rows()}
    assert int(results[2]["billbee_id"]) == created[2] and int(results[3]["billbee_id"]) == created[3]
    assert summary.counts["in_doubt"] == 1 and summary.sent == 2
    assert set(emails_in(sandbox).values()) == {1} and len(emails_in(sandbox)) == 4


@pytest.mark.slow
def test_killed_runs_then_rerun_create_each_customer_exactly_once(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # 4/s and 0.3 s answers: a kill right after a create committed finds it unanswered.
    sandbox = make_sandbox(endpoint_limit=4, faults=Faults(latency=0.3))
    job = Job(tmp_path, [person(n) for n in range(16)])
    config = sandbox.client_config(endpoint_rate_limit=4)
    spec = {
        "config": {
            "base_url": config.base_url,
            "api_key": config.api_key,
            "user": config.user,
            "password": config.password,
            "endpoint_rate_limit": 4,
        },
        "staging": str(job.staging),
        "ledger": str(job.ledger),
        "results": str(job.results),
        "rejects": str(job.rejects),
        "lock_dir": str(tmp_path / "locks"),
        "jitter": 0.05,
    }
    command = [sys.executable, "-m", "tests.reliability.runner", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for kill in (1, 2):
        target = len(posts(sandbox)) + 5
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while len(posts(sandbox)) < target:
            assert child.poll() is None, child.communicate()[1].decode()
            assert time.monotonic() < deadline
            time.sleep(0.03)
        child.kill()  # SIGKILL: no cleanup, no results file
        child.wait()
        assert not job.results.exists(), f"kill {kill} came too late"
    final = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=60, check=False)
    assert final.returncode == 0, final.stderr.decode()
    summary = json.loads(final.stdout)
    assert summary["counts"]["created"] == 16
    # A fresh process has a fresh rate limiter while the sandbox still counts the killed
    # one's last second: a few 429s are expected (and retried). None of them created anything.
    statuses = Counter(e["status"] for e in posts(sandbox))
    assert set(statuses) <= {200, 429} and statuses[200] == 16  # no create was committed twice
    assert emails_in(sandbox) == Counter(key_of(b) for b in job.bodies)
    assert job.statuses() == dict.fromkeys(range(2, 18), "created")
    found = [
        e
        for e in job.ledger_events()
        if e["event"] == "created" and "found by e-mail" in e.get("message", "")
    ]
    assert found, "a create in flight at a kill should have been resolved by the scan"


def test_torn_ledger_line_from_a_kill_is_tolerated(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    job = Job(tmp_path, [person(n) for n in range(3)])
    job.run(client)
    with job.ledger.open("ab") as raw:
        raw.write(b'{"row":3,"key":"juergen.muessig1@exa')
    again = job.run(client)
    assert again.sent == 0 and again.counts["created"] == 3 and len(posts(sandbox)) == 3
    Ledger(job.ledger).load()  # still readable after appending behind the torn line


def test_failed_rows_are_sent_again_by_a_rerun(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox, _ = fast(make_sandbox, faults=Faults(fail_rate=1.0))
    client = client_for(sandbox, endpoint_rate_limit=10, max_retries=1)
    job = Job(tmp_path, [person(n) for n in range(3)])
    summary = job.run(client, if_exists="create")
    assert summary.counts["failed"] == 3 and set(job.statuses().values()) == {"failed"}
    sandbox.set_faults(fail_rate=0.0)
    again = job.run(client)
    assert again.counts["created"] == 3 and again.sent == 3
    assert emails_in(sandbox) == Counter(key_of(b) for b in job.bodies)


def test_refused_credentials_abort_the_run(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = make_sandbox(endpoint_limit=10)
    client = client_for(sandbox, endpoint_rate_limit=10, password="wrong-password")
    job = Job(tmp_path, [person(n) for n in range(20)])
    with pytest.raises(BillbeeAuthError):
        job.run(client, if_exists="create")
    assert sandbox.customers() == [] and not job.results.exists()
    assert len(posts(sandbox)) < 20  # stopped early, not one refusal per row
    last = Ledger(job.ledger).load()
    assert last and all(e.event == "failed" for e in last.values())  # nothing left in doubt


# -- dry run and rejections ---------------------------------------------------------


def test_dry_run_sends_nothing_and_says_what_would_happen(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    client.create_customer(person(1))
    job = Job(tmp_path, duplicate_bodies())
    rejects_before = job.rejects.read_bytes()
    summary = job.run(client, dry_run=True)
    assert len(posts(sandbox)) == 1
    assert job.statuses() == {2: "existing", 3: "would_create", 4: "duplicate_in_file", 5: "would_create"}
    assert summary.dry_run and summary.sent == 0 and summary.counts["would_create"] == 2
    assert job.ledger_events() == [] and job.rejects.read_bytes() == rejects_before


def test_billbee_rejections_go_to_the_rejects_file_once_and_the_run_continues(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    # Type 7 binds but is not a customer type (ErrorCode 11); "abc" cannot bind (400 ModelState).
    job = Job(tmp_path, [person(1), person(2, Type=7), person(3, Type="abc"), person(4)])
    summary = job.run(client)
    assert job.statuses() == {2: "created", 3: "rejected", 4: "rejected", 5: "created"}
    assert summary.counts["rejected"] == 2 and summary.rejects_added == 2
    rows = job.rejects_rows()
    assert rows[:2] == [["row", "line", "key", "stage", "problems"], VALIDATE_REJECT]
    added = {int(r[0]): r for r in rows[2:]}
    assert set(added) == {3, 4}
    assert added[3][1:4] == ["", key_of(person(2)), "billbee"] and "Type" in added[3][4]
    assert "ErrorCode 11" in added[3][4]
    assert added[4][3] == "billbee" and "model.Type" in added[4][4]
    rejected = {e["row"]: e for e in job.ledger_events() if e["event"] == "rejected"}
    assert rejected[3]["error_code"] == 11
    content = job.rejects.read_bytes()
    assert content.count("\ufeff".encode()) == 1 and content.count(b'"') % 2 == 0
    again = job.run(client)
    assert again.rejects_added == 0 and job.rejects.read_bytes() == content
    assert len(posts(sandbox)) == 4


def test_object_store_locations_for_every_file(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    """Staging, ledger, results and rejects as object-store paths (like ObjectStoragePath)."""
    sandbox, client = fast(make_sandbox)
    base = f"/{tmp_path.name}"
    staging, results, rejects, ledger_at = (
        MemoryPath(f"{base}/{name}")
        for name in ("staging.jsonl", "results.csv", "rejects.csv", "ledger.jsonl")
    )
    local = Job(tmp_path, [person(1), person(2, Type=7)])
    staging.fs.pipe(staging.path, "\ufeff".encode() + local.staging.read_bytes())  # a BOM is tolerated
    summary = import_customers(
        staging,
        client=client,
        ledger=Ledger(ledger_at),
        results_path=results,
        rejects_path=rejects,
        lock_dir=tmp_path / "locks",
    )
    assert summary.counts["created"] == 1 and summary.counts["rejected"] == 1
    assert summary.results_path == f"memory://{base}/results.csv"
    result_text = results.fs.cat(results.path).decode("utf-8-sig")
    assert result_text.splitlines()[0] == '"row","key","billbee_id","status"'
    assert result_text.splitlines()[2].endswith('"rejected"')
    # No rejects file from the validate stage: it is created, with BOM and header.
    reject_text = rejects.fs.cat(rejects.path)
    assert reject_text.startswith('\ufeff"row","line","key","stage","problems"\r\n'.encode())
    assert b'"3","","juergen.muessig2@example.de","billbee"' in reject_text
    assert [e.event for e in Ledger(ledger_at).load().values()] == ["created", "rejected"]
    assert len(posts(sandbox)) == 2


def test_own_emails_are_matched_and_contact_emails_only_for_resolving() -> None:
    customer = {
        "Id": 5,
        "Email": " Anna@Example.de ",
        "DefaultMailAddress": {"TypeId": 1, "Value": "anna@example.de"},
        "DefaultCommercialMailAddress": {"TypeId": 1, "Value": "Buchhaltung@Example.de"},
        "MetaData": [{"TypeId": 1, "Value": "alt@example.de"}, {"TypeId": 2, "Value": "+49 221 1"}],
        "Addresses": [{"Email": "Lager@Example.de"}, "junk"],
    }
    # What "already exists" matches: Email and the Default*MailAddress values only.
    assert customer_emails(customer) == {"anna@example.de", "buchhaltung@example.de"}
    # Every e-mail, for resolving a lost answer of a row keyed by Address.Email.
    assert contact_emails(customer) == {
        "anna@example.de",
        "buchhaltung@example.de",
        "alt@example.de",
        "lager@example.de",
    }


def test_an_email_many_customers_share_keeps_its_ids_ascending_and_once() -> None:
    index = AccountIndex()
    for customer_id in [*range(1000, 0, -3), *range(1, 1001, 3), 7, 7]:  # any order, repeats
        index.add({"Id": customer_id, "Email": "Laden@Example.de"})
    expected = sorted({*range(1000, 0, -3), *range(1, 1001, 3)})
    assert index.existing("laden@example.de") == expected
    assert index.find("laden@example.de", exclude={expected[0]}) == expected[1]


def test_empty_staging_file_and_bad_options(tmp_path: Path) -> None:
    job = Job(tmp_path, [])
    config = BillbeeConfig(base_url="http://127.0.0.1:9", api_key="k", user="u", password="p")
    with BillbeeClient(config) as client:  # nothing is sent: create mode, no rows
        summary = job.run(client, if_exists="create")
        assert summary.total_rows == 0 and summary.sent == 0 and job.result_rows() == []
        with pytest.raises(ValueError, match="if_exists"):
            job.run(client, if_exists="update")
        job.staging.write_text('{"row": 2, "key": null, "body": []}\n')
        with pytest.raises(StagingError, match="staging line 1"):
            job.run(client, if_exists="create")
