"""The data lives in SQLite: it survives a restart; --reset and /_sandbox/reset wipe it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.sandbox_client import MakeSandbox, Sandbox


def test_customers_survive_a_restart_and_ids_go_on(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    db = tmp_path / "kept.sqlite"
    first = make_sandbox(db_path=db)
    created = first.create(Name="Persistent", Address={"City": "Köln"})
    first.server.stop()

    second = make_sandbox(db_path=db)
    assert second.call("GET", f"/customers/{created['Id']}").json()["Data"] == created
    assert second.create(Name="Next")["Id"] == created["Id"] + 1
    assert len(second.journal()) == 3, "the journal survives too"


def test_reset_at_start_wipes_the_database(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    db = tmp_path / "wiped.sqlite"
    first = make_sandbox(db_path=db)
    created = first.create(Name="Gone Soon")
    first.server.stop()

    second = make_sandbox(db_path=db, reset=True)
    assert second.call("GET", f"/customers/{created['Id']}").status_code == 404
    assert second.create(Name="Fresh")["Id"] == created["Id"], "ids start over"
    assert [e["path"] for e in second.journal()] == [
        "/api/v1/customers/" + str(created["Id"]),
        "/api/v1/customers",
    ]


def test_database_is_in_wal_mode(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    db = tmp_path / "wal.sqlite"
    make_sandbox(db_path=db).create(Name="Max")
    with sqlite3.connect(db) as other_reader:
        assert other_reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other_reader.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 1


def test_admin_reset_deletes_data_and_journal(api: Sandbox) -> None:
    api.create(Name="Max")
    assert api.admin("POST", "/reset").json() == {"status": "reset"}
    assert api.call("GET", "/customers").json()["Paging"]["TotalRows"] == 0
    assert [e["path"] for e in api.journal()] == ["/api/v1/customers"]
    assert api.journal()[0]["method"] == "GET"
