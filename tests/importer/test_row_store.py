"""The run's per-row state on disk (``imports.row_store``), and what the importer builds on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from billbee_provider.imports.files import StagingError
from billbee_provider.imports.plan import RowOutcome, unique_rows
from billbee_provider.imports.row_store import RowStore
from tests.conftest import Sandbox
from tests.importer.test_importer import Job, client_for, person, posts


def test_outcomes_keep_the_place_of_their_first_placing_and_report_the_status_before() -> None:
    with RowStore() as store:
        assert store.put(RowOutcome(7, "a@example.de", "in_doubt")) is None
        assert store.put(RowOutcome(3, None, "would_create")) is None
        assert store.put(RowOutcome(5, "b@example.de", "in_doubt")) is None
        # A later outcome of row 7 replaces it in place, digest dropped, whatever its fields.
        assert store.put(RowOutcome(7, "a@example.de", "created", 4711, digest="d" * 64)) == "in_doubt"
        assert store.put(RowOutcome(5, "b@example.de", "rejected", None, 3, "Email: ungültig")) == "in_doubt"
        assert [(o.row, o.status) for o in store.outcomes()] == [
            (7, "created"),
            (3, "would_create"),
            (5, "rejected"),
        ]
        assert store.get(7) == RowOutcome(7, "a@example.de", "created", 4711)
        assert store.get(5) == RowOutcome(5, "b@example.de", "rejected", None, 3, "Email: ungültig")
        assert store.get(4) is None and store.status_of(4) is None
        assert [o.row for o in store.outcomes("rejected")] == [5]
        assert len(store) == 3
        assert store.status_counts() == {"created": 1, "would_create": 1, "rejected": 1}
        assert store.count("would_create") == 1 and store.count("would_create", keyed=True) == 0
        # Rows below the highest one placed are looked up; above it they cannot be there.
        assert 3 in store and 5 in store and 4 not in store and 8 not in store and "3" not in store


def test_keys_seen_and_claimed_ids() -> None:
    with RowStore() as store:
        assert store.first_sighting("jürgen@example.de")
        assert not store.first_sighting("jürgen@example.de")
        assert store.first_sighting("juergen@example.de")
        store.claimed.update([12, 10, 12])
        store.claimed.add(11)
        assert 10 in store.claimed and 13 not in store.claimed and "10" not in store.claimed
        assert list(store.claimed) == [10, 11, 12] and len(store.claimed) == 3


def test_the_store_is_a_temporary_file_gone_with_close() -> None:
    store = RowStore()
    store.put(RowOutcome(2, None, "would_create"))
    store.close()
    store.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        store.get(2)


def test_unique_rows_refuses_a_row_number_placed_before_also_out_of_order() -> None:
    rows = [RowOutcome(n, None, "would_create") for n in (5, 3, 4, 3)]
    with RowStore() as store:
        seen = []
        with pytest.raises(StagingError, match="row 3 appears twice"):
            for outcome in unique_rows(rows, store):  # type: ignore[arg-type]  # only .row is read
                seen.append(outcome.row)
                store.put(outcome)
        assert seen == [5, 3, 4]


def test_results_follow_the_staging_order_and_a_repeated_row_number_stops_the_run(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = make_sandbox(endpoint_limit=10)
    bodies = [person(n) for n in range(4)]
    job = Job(tmp_path, bodies)
    lines = job.staging.read_text("utf-8").splitlines()
    job.staging.write_text("\n".join([lines[2], lines[0], lines[3], lines[1]]) + "\n", "utf-8")
    with client_for(sandbox, endpoint_rate_limit=10) as client:
        summary = job.run(client)
        assert summary.counts["created"] == 4 and summary.total_rows == 4
        assert [int(r["row"]) for r in job.result_rows()] == [4, 2, 5, 3]
        again = json.loads(lines[0]) | {"body": person(9)}
        job.staging.write_text("\n".join([*lines, json.dumps(again)]) + "\n", "utf-8")
        sent_before = len(posts(sandbox))
        with pytest.raises(StagingError, match="row 2 appears twice"):
            job.run(client)
        # Rows 2 to 5 were created by the first run (ledger); the repeated row 2 is never sent.
        assert len(posts(sandbox)) == sent_before
