"""The import ledger: durable appends, last state per row, torn lines, object stores."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.imports.ledger import Ledger, LedgerEntry
from billbee_provider.imports.storage import local_path
from tests.importer import MemoryPath


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_records_are_appended_and_load_gives_the_last_state_per_row(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.jsonl"
    with Ledger(path) as ledger:
        ledger.record(2, "anna@example.de", "sending")
        ledger.record(3, None, "sending")
        ledger.record(2, "anna@example.de", "created", billbee_id=100000150176895)
        ledger.record(3, None, "rejected", error_code=11, message="Type: 7 is not a customer type")
    records = lines(path)
    assert [r["event"] for r in records] == ["sending", "sending", "created", "rejected"]
    assert set(records[0]) == {"row", "key", "event", "at"}  # None fields are left out
    assert records[2]["billbee_id"] == 100000150176895
    state = Ledger(path).load()
    assert state[2] == LedgerEntry(2, "anna@example.de", "created", records[2]["at"], 100000150176895)
    assert state[3].event == "rejected" and state[3].error_code == 11 and state[3].final
    assert state[3].message == "Type: 7 is not a customer type"


def test_sending_as_last_event_is_in_doubt(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.jsonl") as ledger:
        ledger.record(5, "b@example.de", "sending")
    entry = Ledger(tmp_path / "l.jsonl").load()[5]
    assert entry.unresolved and not entry.final


def test_missing_ledger_loads_empty(tmp_path: Path) -> None:
    assert Ledger(tmp_path / "nothing.jsonl").load() == {}


def test_every_record_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with Ledger(tmp_path / "l.jsonl") as ledger:
        for row in range(3):
            ledger.record(row, None, "sending")
            # Durable before record() returns: another reader sees it already.
            assert len(Ledger(tmp_path / "l.jsonl").load()) == row + 1
    assert len(synced) == 3


def test_torn_last_line_is_ignored_and_the_next_record_starts_a_new_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "l.jsonl"
    with Ledger(path) as ledger:
        ledger.record(2, "anna@example.de", "sending")
    with path.open("ab") as raw:  # what a SIGKILL in the middle of a write leaves
        raw.write(b'{"row":2,"key":"anna@exa')
    assert Ledger(path).load()[2].event == "sending"
    with Ledger(path) as ledger:  # a new process appends after the torn line
        ledger.record(2, "anna@example.de", "created", billbee_id=7)
        ledger.record(3, None, "sending")
    state = Ledger(path).load()
    assert state[2].event == "created" and state[2].billbee_id == 7 and state[3].event == "sending"
    assert "anna" not in caplog.text  # the skipped line is reported by number only
    assert path.read_bytes().count(b"\n") == 4


def test_unknown_event_is_refused(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.jsonl") as ledger, pytest.raises(ValueError, match="unknown ledger event"):
        ledger.record(1, None, "done")  # type: ignore[arg-type]


def test_concurrent_records_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)

    def write(worker: int) -> None:
        for n in range(50):
            ledger.record(worker * 1000 + n, f"user{worker}-{n}@example.de", "sending")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.close()
    assert len(lines(path)) == 400
    assert len(Ledger(path).load()) == 400


def test_object_store_location_gets_one_object_per_record(tmp_path: Path) -> None:
    location = MemoryPath(f"/{tmp_path.name}/objects/ledger.jsonl")
    ledger = Ledger(location)
    assert ledger.backend == "objects"
    ledger.record(1, "a@example.de", "sending")
    ledger.record(1, "a@example.de", "created", billbee_id=11)
    assert Ledger(location).load()[1].billbee_id == 11
    assert location.modes == []  # never opened for append or rewrite
    assert len(location.fs.ls(f"{location.path}.d")) == 2
    assert "memory://" in repr(ledger)


def test_single_object_ledger_with_a_torn_line_is_read_before_the_records(tmp_path: Path) -> None:
    location = MemoryPath(f"/{tmp_path.name}/legacy/ledger.jsonl")
    location.fs.pipe(location.path, b'{"row":1,"key":null,"event":"sending","at":"x"}\n{"row":1,"ev')
    ledger = Ledger(location)
    ledger.record(1, None, "in_doubt")
    ledger.record(2, None, "sending")
    state = Ledger(location).load()
    assert state[1].event == "in_doubt" and state[2].event == "sending"
    assert location.fs.cat(location.path).count(b"\n") == 1  # the old object is left as it was


class PlainOpenable:
    """An openable without a file system behind it (no ``.fs``): the append fallback."""

    def __init__(self, inner: MemoryPath) -> None:
        self.inner = inner

    def open(self, mode: str) -> Any:
        return self.inner.open(mode)

    def __str__(self) -> str:
        return str(self.inner)


def test_openable_without_file_system_is_appended_to(tmp_path: Path) -> None:
    location = PlainOpenable(MemoryPath(f"/{tmp_path.name}/append/ledger.jsonl"))
    ledger = Ledger(location)
    assert ledger.backend == "file"
    ledger.record(1, "a@example.de", "sending")
    ledger.record(1, "a@example.de", "created", billbee_id=11)
    assert Ledger(location).load()[1].billbee_id == 11
    assert location.inner.modes.count("ab") == 2


def test_openable_without_append_is_rewritten_and_torn_line_tolerated(tmp_path: Path) -> None:
    inner = MemoryPath(f"/{tmp_path.name}/rewrite/ledger.jsonl", can_append=False)
    location = PlainOpenable(inner)
    inner.fs.pipe(inner.path, b'{"row":1,"key":null,"event":"sending","at":"x"}\n{"row":1,"ev')
    ledger = Ledger(location)
    ledger.record(1, None, "in_doubt")
    ledger.record(2, None, "sending")
    state = Ledger(location).load()
    assert state[1].event == "in_doubt" and state[2].event == "sending"
    assert inner.fs.cat(inner.path).count(b"\n") == 4


def test_local_path_of_file_object_paths() -> None:
    class FilePath:
        protocol = ("file", "local")
        path = "/tmp/x/ledger.jsonl"

        def open(self, mode: str = "rb") -> Any:
            raise AssertionError("a local file must be opened directly")

    assert local_path(FilePath()) == Path("/tmp/x/ledger.jsonl")
    assert local_path("rel/ledger.jsonl") == Path("rel/ledger.jsonl")
    assert local_path("file:///tmp/a%20b/ledger.jsonl") == Path("/tmp/a b/ledger.jsonl")
    assert local_path("s3://bucket/ledger.jsonl") is None
    assert local_path(MemoryPath("/x")) is None


def test_url_strings_are_opened_through_fsspec(tmp_path: Path) -> None:
    url = f"memory://{tmp_path.name}/url/ledger.jsonl"
    with Ledger(url) as ledger:
        ledger.record(4, None, "sending")
        ledger.record(4, None, "in_doubt", message="answer lost")
    assert Ledger(url).load()[4].message == "answer lost"
    local = tmp_path / "via url.jsonl"
    with Ledger(local.as_uri()) as ledger:
        ledger.record(1, None, "failed")
    assert [json.loads(line)["event"] for line in local.read_text().splitlines()] == ["failed"]
