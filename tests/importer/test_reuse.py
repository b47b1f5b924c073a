"""A ledger entry belongs to one row of one input; "already exists" means a customer's own e-mail.

An output folder reused with another source (a nightly import into a fixed folder, a SQL
sync whose row 1 is another shop row every night) must neither skip the new rows nor
report the old rows' customers for them; a row's e-mail that is only another customer's
address or extra e-mail is not that customer, and an e-mail of several customers is
``ambiguous``. All against the sandbox over loopback.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.imports.account import contact_emails
from billbee_provider.imports.files import iter_staging, row_digest
from billbee_provider.imports.ledger import Ledger, LedgerEntry, LedgerState
from billbee_provider.imports.plan import ExistingCustomersError
from billbee_provider.imports.report import billbee_ids_by_row, key_id_pairs
from tests.importer.test_importer import Job, emails_in, fast, person, posts
from tests.sandbox_client import Sandbox


def key_of(body: dict[str, Any]) -> str:
    """The row's key: every body here has an ``Email``."""
    return str(body["Email"]).lower()


def sent_emails(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [json.loads(e["body"])["Email"].lower() for e in posts(sandbox)[since:]]


def ids_by_email(sandbox: Sandbox) -> dict[str, int]:
    return {c["Email"].lower(): c["Id"] for c in sandbox.customers() if c["Email"]}


def results_by_row(job: Job) -> dict[int, tuple[str, str, str]]:
    return {int(r["row"]): (r["key"], r["billbee_id"], r["status"]) for r in job.result_rows()}


# -- the rule, on the loaded ledger -------------------------------------------------------


def test_an_entry_matches_only_its_row_number_and_digest_and_older_records_by_key() -> None:
    state = LedgerState()
    state.add(1, LedgerEntry(2, "a@example.de", "created", "t", 10, digest="d-a"))
    state.add(2, LedgerEntry(3, "b@example.de", "sending", "t"))  # written before digests existed
    state.add(3, LedgerEntry(2, "c@example.de", "created", "t", 30, digest="d-c"))
    assert state.match(2, "a@example.de", "d-a") == LedgerEntry(
        2, "a@example.de", "created", "t", 10, digest="d-a"
    )
    assert state.match(2, "c@example.de", "d-c").billbee_id == 30  # type: ignore[union-attr]
    assert state.match(2, "a@example.de", "d-other") is None  # a changed row is another row
    assert state.match(3, "b@example.de", "anything").event == "sending"  # type: ignore[union-attr]
    assert state.match(3, "x@example.de", "anything") is None  # an older record of another key
    assert state[2].key == "c@example.de" and len(state) == 2  # as a mapping: the last per row
    assert sorted(e.billbee_id or 0 for e in state.entries()) == [0, 10, 30]
    # An older record followed by a new one of the same row: the later one applies.
    state.add(4, LedgerEntry(3, "b@example.de", "created", "t", 40, digest="d-b"))
    assert state.match(3, "b@example.de", "d-b").billbee_id == 40  # type: ignore[union-attr]


def test_the_digest_is_of_key_and_body_whatever_the_formatting() -> None:
    body = {"Name": "Jürgen", "Address": {"City": "Köln", "Zip": "50667"}}
    same = {"Address": {"Zip": "50667", "City": "Köln"}, "Name": "Jürgen"}
    assert row_digest("j@example.de", body) == row_digest("j@example.de", same)
    assert row_digest("j@example.de", body) != row_digest("k@example.de", body)
    assert row_digest("j@example.de", body) != row_digest("j@example.de", {**body, "Name": "Jurgen"})
    assert len(row_digest(None, {"Name": "\ud800"})) == 32  # a lone surrogate does not break it


# -- (a) the same file again: a resume ------------------------------------------------------


def test_the_same_file_again_sends_nothing_and_every_record_names_its_row_and_input(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    job = Job(tmp_path, [person(n) for n in range(4)])
    first = job.run(client)
    assert first.sent == 4
    results = job.result_rows()
    again = job.run(client)
    assert again.sent == 0 and again.counts["created"] == 4 and job.result_rows() == results
    digests = {s.row: s.digest for s in iter_staging(job.staging)}
    records = job.ledger_events()
    assert all(r["digest"] == digests[r["row"]] for r in records)
    assert len({r["input"] for r in records}) == 1
    assert len(posts(sandbox)) == 4


def test_resume_after_a_kill_mid_create_sends_nothing_twice(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """What a kill leaves: rows 2-3 ``sending`` (with digests); only row 2 reached Billbee."""
    sandbox, client = fast(make_sandbox)
    bodies = [person(n) for n in range(4)]
    job = Job(tmp_path, bodies)
    staged = {s.row: s for s in iter_staging(job.staging)}
    arrived = client.create_customer(bodies[0])["Id"]
    job.ledger.parent.mkdir(parents=True)
    with Ledger(job.ledger) as ledger:
        for row in (2, 3):
            ledger.record(row, staged[row].key, "sending", digest=staged[row].digest)
    summary = job.run(client)
    assert sorted(sent_emails(sandbox, 1)) == sorted(key_of(b) for b in bodies[1:])  # rows 3-5 only
    assert results_by_row(job)[2] == (key_of(bodies[0]), str(arrived), "created")
    assert summary.counts["created"] == 4 and set(emails_in(sandbox).values()) == {1}


# -- (b) another file in the same folder ---------------------------------------------------


def test_another_file_in_the_same_folder_sends_each_new_row_once_and_reports_only_its_rows(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox, client = fast(make_sandbox)
    day_a = [person(n) for n in range(3)]
    day_b = [person(n) for n in range(10, 14)]
    Job(tmp_path, day_a).run(client)
    ids_a = ids_by_email(sandbox)
    job = Job(tmp_path, day_b)  # same staging, ledger, results and rejects paths
    summary = job.run(client)
    assert summary.sent == 4 and summary.counts["created"] == 4
    assert sorted(sent_emails(sandbox, 3)) == sorted(key_of(b) for b in day_b)
    stored = ids_by_email(sandbox)
    results = results_by_row(job)
    assert set(results) == {2, 3, 4, 5}
    for row, body in enumerate(day_b, start=2):
        key = key_of(body)
        assert results[row] == (key, str(stored[key]), "created")
    assert not set(ids_a.values()) & {int(r[1]) for r in results.values()}  # no day A Id
    assert emails_in(sandbox) == Counter(key_of(b) for b in day_a + day_b)  # each customer once
    assert "3 row(s) whose entries were for other content" in caplog.text  # rows 2-4; 5 is new
    # Day A's file again: its own entries still apply; nothing is sent, its own Ids come back.
    again = Job(tmp_path, day_a)
    assert again.run(client).sent == 0
    assert {r[1] for r in results_by_row(again).values()} == {str(i) for i in ids_a.values()}
    assert len(Ledger(again.ledger).load().inputs) == 2 and len(posts(sandbox)) == 7


def test_an_in_doubt_row_of_another_file_is_not_taken_for_the_new_row(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Day A's row 2 was sent and its answer lost (it did arrive); day B's row 2 is another customer."""
    sandbox, client = fast(make_sandbox)
    day_a, day_b = [person(1)], [person(2)]
    old = client.create_customer(day_a[0])["Id"]
    staged_a = next(iter_staging(Job(tmp_path, day_a).staging))
    job = Job(tmp_path, day_b)
    job.ledger.parent.mkdir(parents=True)
    with Ledger(job.ledger) as ledger:
        ledger.record(2, staged_a.key, "sending", digest=staged_a.digest, input_id="day-a")
    summary = job.run(client)
    new = ids_by_email(sandbox)[key_of(day_b[0])]
    assert summary.sent == 1 and results_by_row(job) == {2: (key_of(day_b[0]), str(new), "created")}
    assert new != old and emails_in(sandbox) == Counter({key_of(day_a[0]): 1, key_of(day_b[0]): 1})


def test_a_lost_answer_is_not_resolved_to_a_customer_an_older_row_may_have_created(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """if_exists=create: day A's in-doubt row 2 created x@; day B's changed row 2 (x@ too) loses
    its answer: the scan finds two x@ customers, and the row is the new one, not day A's."""
    sandbox, client = fast(make_sandbox)
    before = person(1)
    old = client.create_customer(before)["Id"]
    staged_a = next(iter_staging(Job(tmp_path, [before]).staging))
    job = Job(tmp_path, [person(1, Name="Jürgen Müßig-Ölschläger, umgezogen")])
    job.ledger.parent.mkdir(parents=True)
    with Ledger(job.ledger) as ledger:
        ledger.record(2, staged_a.key, "sending", digest=staged_a.digest, input_id="day-a")
    sandbox.set_faults(drop_rate=1.0)  # every create commits, then loses its answer
    summary = job.run(client, if_exists="create")
    sandbox.set_faults(drop_rate=0.0)
    ours = [c["Id"] for c in sandbox.customers() if c["Name"].endswith("umgezogen")]
    assert summary.sent == 1 and len(ours) == 1 and ours[0] != old
    assert results_by_row(job)[2] == (key_of(before), str(ours[0]), "created")


# -- (c) a changed row at the same position ------------------------------------------------


def test_a_changed_row_at_the_same_position_is_a_new_row(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    first = [person(0), person(1), person(2)]
    Job(tmp_path, first).run(client)
    ids = ids_by_email(sandbox)
    changed = [person(0), person(21), person(2, Name="Jürgen Müßig-Ölschläger, umgezogen")]
    job = Job(tmp_path, changed)
    summary = job.run(client)
    results = results_by_row(job)
    k0, k21, k2 = key_of(person(0)), key_of(person(21)), key_of(person(2))
    assert results[2] == (k0, str(ids[k0]), "created")  # unchanged: carried over
    assert results[3] == (k21, str(ids_by_email(sandbox)[k21]), "created")  # another e-mail: sent
    assert results[4] == (k2, str(ids[k2]), "existing")  # same e-mail, new body: checked, not carried
    assert summary.sent == 1 and sent_emails(sandbox, 3) == [k21]
    # With if_exists=create the changed rows are sent; the unchanged one still is not.
    job = Job(tmp_path, [person(0), person(22), person(2, Name="Jürgen Müßig-Ölschläger, 2. Umzug")])
    summary = job.run(client, if_exists="create")
    assert summary.sent == 2 and sorted(sent_emails(sandbox, 4)) == sorted([key_of(person(22)), k2])


def test_records_of_an_older_version_apply_to_the_same_row_and_key_only(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox, client = fast(make_sandbox)
    bodies = [person(0), person(5)]
    known = client.create_customer(bodies[0])["Id"]
    job = Job(tmp_path, bodies)
    job.ledger.parent.mkdir(parents=True)
    old = [
        {"row": 2, "key": key_of(bodies[0]), "event": "created", "billbee_id": known, "at": "x"},
        {"row": 3, "key": "someone.else@example.de", "event": "created", "billbee_id": 999, "at": "x"},
    ]
    job.ledger.write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    summary = job.run(client)
    results = results_by_row(job)
    assert results[2] == (key_of(bodies[0]), str(known), "created")
    assert results[3][2] == "created" and results[3][1] != "999"
    assert summary.sent == 1 and sent_emails(sandbox, 1) == [key_of(bodies[1])]


# -- "already exists": a customer's own e-mails; several customers: ambiguous ---------------


def test_an_address_or_extra_email_of_a_customer_is_not_that_customer(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox, client = fast(make_sandbox)
    shared = "lager@example.de"
    owner = client.create_customer(
        {
            "Name": "Anna Agentur",
            "Email": "anna@example.de",
            "Type": 1,
            "Address": {"Email": shared, "City": "Köln", "CountryCode": "DE"},
            "MetaData": [{"TypeId": 1, "Value": shared}],
        }
    )["Id"]
    twins = [client.create_customer(person(7))["Id"] for _ in range(2)]  # one e-mail, two customers
    [scanned] = [c for c in sandbox.customers() if c["Id"] == owner]
    assert shared in contact_emails(scanned)  # the scan does see it (the old rule matched it)
    bodies = [person(1, Email=shared.upper()), person(7), person(8)]
    job = Job(tmp_path, bodies)
    summary = job.run(client)
    results = results_by_row(job)
    created = [c["Id"] for c in sandbox.customers() if c["Email"] == shared.upper()]
    assert results[2] == (shared, str(created[0]), "created") and created[0] != owner
    assert results[3] == (key_of(person(7)), "", "ambiguous")
    assert summary.counts["ambiguous"] == 1 and summary.counts["created"] == 2
    assert sorted(sent_emails(sandbox, 3)) == sorted([shared, key_of(person(8))])  # not row 3
    assert "row 3: 2 Billbee customers have this e-mail" in caplog.text
    assert key_of(person(7)) not in caplog.text.lower()
    # Not in the ledger: the next run decides again (here: still ambiguous, still not sent).
    assert 3 not in Ledger(job.ledger).load()
    assert job.run(client).counts["ambiguous"] == 1 and len(posts(sandbox)) == 5
    # The SQL write-back links no Id to it (source rows 1-4 <-> results rows 2-4 here).
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps({"id": 100 + n}) + "\n" for n in range(1, 5)), encoding="utf-8")
    linked = dict(key_id_pairs(source, job.results, "id"))
    assert 103 not in linked and set(linked) == {102, 104}
    assert 3 not in billbee_ids_by_row(job.results) and not set(twins) & set(linked.values())
    # if_exists=fail names the ambiguous row too; a dry run reports it.
    (tmp_path / "fail").mkdir()
    (tmp_path / "dry").mkdir()
    with pytest.raises(ExistingCustomersError) as err:
        Job(tmp_path / "fail", [person(7)]).run(client, if_exists="fail")
    assert err.value.rows == [2]
    dry = Job(tmp_path / "dry", [person(7), person(9)])
    assert dry.run(client, dry_run=True).counts["ambiguous"] == 1
    assert dry.statuses() == {2: "ambiguous", 3: "would_create"}


def test_a_row_without_own_email_match_is_resolved_after_a_lost_answer_to_its_own_customer(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """The scan's other customer with the row's e-mail as extra e-mail is never the answer."""
    sandbox, client = fast(make_sandbox)
    shared = "lager@example.de"
    owner = client.create_customer(
        {"Name": "Anna Agentur", "Email": "anna@example.de", "MetaData": [{"TypeId": 1, "Value": shared}]}
    )["Id"]
    sandbox.set_faults(drop_rate=1.0)
    job = Job(tmp_path, [person(1, Email=shared)])
    summary = job.run(client)
    sandbox.set_faults(drop_rate=0.0)
    [ours] = [c["Id"] for c in sandbox.customers() if c["Email"] == shared]
    assert summary.sent == 1 and results_by_row(job)[2] == (shared, str(ours), "created") and ours != owner


def test_summary_table_puts_the_outcomes_under_their_own_heading() -> None:
    from billbee_provider.imports.report import format_table

    summary = {
        "rows_read": 36,
        "rejected_by_validation": 5,
        "rejected_by_billbee": 0,
        "counts": {"created": 29, "existing": 1, "duplicate_in_file": 1, "failed": 0, "ambiguous": 0},
        "create_seconds": 14.71,
        "files": {"results": "/out/results.csv", "ledger": None},
    }
    lines = format_table(summary).splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("valid rows, by outcome:"))
    assert lines[heading - 1].split() == ["rejected", "(validation)", "5"]
    assert [line.split() for line in lines[heading + 1 : heading + 4]] == [
        ["created", "29"],
        ["existing", "1"],
        ["duplicate_in_file", "1"],
    ]
    assert all(line.startswith("  ") for line in lines[heading + 1 : heading + 4])
    assert not any("failed" in line or "ambiguous" in line for line in lines)  # none of those rows
    assert lines[-1].split() == ["results", "file", "/out/results.csv"]
