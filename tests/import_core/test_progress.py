"""Tests of :mod:`billbee_provider.imports.progress`: progress.json written and read safely."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest

from billbee_provider.imports.progress import (
    DONE,
    RUNNING,
    Progress,
    ProgressFile,
    read_progress,
    write_progress,
)
from tests.importer import MemoryPath

MOMENT = Progress(
    state=RUNNING,
    rows_total=100,
    rows_done=40,
    created=35,
    creates_per_s=1.98765,
    throttled_429=2,
    eta_s=30.1234,
    counts={"created": 35, "existing": 5},
)


def test_written_progress_reads_back_in_the_documented_shape(tmp_path: Path) -> None:
    target = tmp_path / "run" / "progress.json"  # the folder is made
    content = MOMENT.as_dict(started_at="2025-01-31T12:00:00+00:00", updated_at="2025-01-31T12:00:05+00:00")
    write_progress(target, content)
    assert (
        read_progress(target)
        == read_progress(str(target))
        == {
            "state": "running",
            "rows_total": 100,
            "rows_done": 40,
            "created": 35,
            "creates_per_s": 1.988,
            "throttled_429": 2,
            "eta_s": 30.1,
            "started_at": "2025-01-31T12:00:00+00:00",
            "updated_at": "2025-01-31T12:00:05+00:00",
            "counts": {"created": 35, "existing": 5},
        }
    )
    assert [p.name for p in target.parent.iterdir()] == ["progress.json"]  # no temporary file left


def test_an_object_store_location_is_one_put_per_write() -> None:
    target = MemoryPath(f"/{uuid.uuid4().hex}/progress.json")
    assert read_progress(target) is None
    write_progress(target, {"state": "done", "rows_done": 3})
    write_progress(target, {"state": "done", "rows_done": 4})
    assert read_progress(target) == {"state": "done", "rows_done": 4}
    assert target.modes.count("wb") == 2


def test_a_missing_file_is_none(tmp_path: Path) -> None:
    assert read_progress(tmp_path / "nope.json") is None
    assert read_progress(tmp_path / "no" / "such" / "folder" / "progress.json") is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"state": "running", "rows_to',  # cut off mid-write by a copy
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"null",
        b"[" * 100_000,  # nested past the parser's depth
    ],
)
def test_a_garbled_file_is_none_not_an_error(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "progress.json"
    target.write_bytes(content)
    assert read_progress(target) is None


def test_the_progress_file_stamps_start_and_update_times(tmp_path: Path) -> None:
    times = iter(["2025-01-31T12:00:00+00:00", "2025-01-31T12:00:05+00:00", "2025-01-31T12:00:10+00:00"])
    progress = ProgressFile(tmp_path / "progress.json", now=lambda: next(times))
    assert progress.write(MOMENT)
    assert progress.write(Progress(DONE, 100, 100, 95, 2.0, 2, 0.0, {"created": 95}))
    written = read_progress(tmp_path / "progress.json")
    assert written is not None
    assert written["started_at"] == "2025-01-31T12:00:00+00:00"
    assert written["updated_at"] == "2025-01-31T12:00:10+00:00"
    assert written["state"] == "done" and written["eta_s"] == 0.0


def test_the_real_clock_is_iso_utc(tmp_path: Path) -> None:
    progress = ProgressFile(tmp_path / "progress.json")
    progress.write(MOMENT)
    written = json.loads((tmp_path / "progress.json").read_text("utf-8"))
    assert written["started_at"].endswith("+00:00") and "T" in written["started_at"]


def test_a_write_that_fails_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "progress.json"
    blocked.mkdir()  # a folder where the file should be: every write fails
    progress = ProgressFile(blocked)
    with caplog.at_level(logging.DEBUG, logger="billbee_provider.imports.progress"):
        assert not progress.write(MOMENT)
        assert not progress.write(MOMENT)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG]
    assert "could not write" in caplog.records[0].getMessage()
    assert "the import goes on" in caplog.records[0].getMessage()
    blocked.rmdir()
    assert progress.write(MOMENT)  # the store is back: a later failure warns again
    blocked.unlink()
    blocked.mkdir()
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="billbee_provider.imports.progress"):
        assert not progress.write(MOMENT)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
