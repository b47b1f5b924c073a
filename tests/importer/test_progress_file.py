"""progress.json of an import run against the sandbox: written at start, per tick, at the end."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from billbee_provider.imports.plan import ExistingCustomersError
from billbee_provider.imports.progress import read_progress
from tests.importer.test_importer import Job, fast, person
from tests.sandbox_client import Sandbox


class RecordingPath:
    """An object-store location that keeps every version written to it (one per PUT)."""

    protocol = "memory"
    path = "/recorded/progress.json"

    def __init__(self) -> None:
        self.versions: list[dict[str, Any]] = []

    def open(self, mode: str = "rb") -> io.BytesIO:
        if mode == "rb":
            if not self.versions:
                raise FileNotFoundError(self.path)
            return io.BytesIO(json.dumps(self.versions[-1]).encode())
        assert mode == "wb", mode
        versions = self.versions

        class Put(io.BytesIO):
            def close(self) -> None:
                versions.append(json.loads(self.getvalue()))
                super().close()

        return Put()

    def __str__(self) -> str:
        return f"memory://{self.path}"


def test_an_import_ends_with_done_and_the_summarys_counts(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    _, client = fast(make_sandbox)
    client.create_customer(person(1))  # exists already
    job = Job(tmp_path, [person(1), person(2), person(3, Type=7), person(4), person(2)])
    target = tmp_path / "out" / "progress.json"
    summary = job.run(client, progress_path=target)
    progress = read_progress(target)
    assert progress is not None
    assert progress["state"] == "done"
    assert progress["rows_total"] == progress["rows_done"] == 5
    assert progress["created"] == summary.counts["created"] == 2
    assert progress["counts"] == summary.counts
    assert progress["counts"]["existing"] == 1 and progress["counts"]["rejected"] == 1
    assert progress["counts"]["duplicate_in_file"] == 1
    assert progress["throttled_429"] == summary.throttled == 0
    assert progress["eta_s"] == 0.0 and progress["creates_per_s"] > 0
    assert progress["started_at"] <= progress["updated_at"]
    assert set(progress) == {
        "state",
        "rows_total",
        "rows_done",
        "created",
        "creates_per_s",
        "throttled_429",
        "eta_s",
        "started_at",
        "updated_at",
        "counts",
    }
    text = target.read_text("utf-8")
    assert "example.de" not in text.lower() and "Müßig" not in text  # counts only


def test_running_moments_are_written_at_the_progress_ticks_only(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    _, client = fast(make_sandbox)
    rows = 14
    job = Job(tmp_path, [person(n) for n in range(1, rows + 1)])
    target = RecordingPath()
    every = 0.25
    summary = job.run(client, progress_path=target, progress_every=every)
    states = [v["state"] for v in target.versions]
    print(f"{len(target.versions)} progress writes in {summary.elapsed_seconds:.1f} s: {states}")
    assert states[0] == "running" and states[-1] == "done" and set(states[1:-1]) == {"running"}
    first = target.versions[0]
    assert (first["rows_total"], first["rows_done"], first["created"], first["eta_s"]) == (rows, 0, 0, None)
    done = [v["rows_done"] for v in target.versions]
    assert done == sorted(done) and done[-1] == rows  # never backwards
    assert any(0 < n < rows for n in done)
    for version in target.versions:
        assert sum(version["counts"].values()) == version["rows_done"]
        assert version["created"] == version["counts"]["created"]
    # At most one write per tick: start, end, and one per `every` seconds between.
    assert len(target.versions) <= 2 + summary.elapsed_seconds / every + 1


def test_an_import_that_stops_ends_with_failed(make_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    _, client = fast(make_sandbox)
    client.create_customer(person(1))
    job = Job(tmp_path, [person(1), person(2)])
    target = tmp_path / "progress.json"
    with pytest.raises(ExistingCustomersError):
        job.run(client, if_exists="fail", progress_path=target)
    progress = read_progress(target)
    assert progress is not None and progress["state"] == "failed"
    assert progress["rows_total"] == 2 and progress["rows_done"] == 0 and progress["eta_s"] is None

    job.staging = tmp_path / "gone.jsonl"  # before anything is known: counts are zero
    with pytest.raises(FileNotFoundError):
        job.run(client, progress_path=target)
    progress = read_progress(target)
    assert progress is not None and progress["state"] == "failed" and progress["rows_total"] == 0


def test_a_progress_file_that_cannot_be_written_does_not_stop_the_import(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = fast(make_sandbox)
    job = Job(tmp_path, [person(1), person(2)])
    blocked = tmp_path / "progress.json"
    blocked.mkdir()  # a folder where the file should be
    with caplog.at_level(logging.INFO):
        summary = job.run(client, progress_path=blocked)
    assert summary.counts["created"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "progress: could not write" in warnings[0]
