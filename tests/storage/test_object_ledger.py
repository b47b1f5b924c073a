"""The ledger on S3 (a real moto_server): one object per record, O(1) per record, two writers."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from billbee_provider.imports.ledger import Ledger
from billbee_provider.imports.object_ledger import ObjectRecords, file_system_of
from tests.storage.moto import MotoServer


class CountingFS:
    """Wraps a file system and counts the calls the ledger makes (and what they move)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        self.calls: list[tuple[str, int]] = []

    def pipe_file(self, path: str, data: bytes) -> None:
        self.calls.append(("pipe_file", len(data)))
        self.fs.pipe_file(path, data)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.fs, name)
        if callable(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                self.calls.append((name, 0))
                return attr(*args, **kwargs)

            return call
        return attr


class S3Path:
    """What an ``ObjectStoragePath`` gives the ledger: its file system and its path."""

    protocol = "s3"

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def open(self, mode: str) -> Any:
        return self.fs.open(self.path, mode)

    def __str__(self) -> str:
        return f"s3://{self.path}"


def test_records_are_objects_and_load_back_in_order(moto: MotoServer, bucket: str) -> None:
    fs = moto.s3fs()
    location = S3Path(fs, f"{bucket}/run1/ledger.jsonl")
    with Ledger(location) as ledger:
        assert ledger.backend == "objects"
        ledger.record(1, "anna@example.de", "sending", digest="d1")
        ledger.record(1, "anna@example.de", "created", billbee_id=11, digest="d1")
        ledger.record(2, None, "sending", digest="d2")
    names = sorted(fs.ls(f"{bucket}/run1/ledger.jsonl.d"))
    assert len(names) == 3 and all(n.endswith(".json") for n in names)
    assert not fs.exists(f"{bucket}/run1/ledger.jsonl")  # no growing object
    state = Ledger(S3Path(moto.s3fs(), f"{bucket}/run1/ledger.jsonl")).load()
    assert state[1].event == "created" and state[1].billbee_id == 11
    assert state[2].unresolved
    assert json.loads(fs.cat_file(names[0]))["event"] == "sending"


def test_each_record_is_one_put_of_its_own_size_whatever_the_ledger_size(
    moto: MotoServer, bucket: str
) -> None:
    counting = CountingFS(moto.s3fs())
    ledger = Ledger(S3Path(counting, f"{bucket}/big/ledger.jsonl"))
    for row in range(1, 201):
        ledger.record(row, f"user{row}@example.de", "sending", digest=f"{row:064x}")
    puts = [size for name, size in counting.calls if name == "pipe_file"]
    assert len(puts) == 200
    assert max(puts) < 250  # one record, never the ledger so far
    # The only other calls: one listing, when the writer first writes (to continue the sequence).
    others = [name for name, _ in counting.calls if name != "pipe_file"]
    assert others.count("find") == 1 and "cat" not in others and "cat_file" not in others
    assert len(Ledger(S3Path(moto.s3fs(), f"{bucket}/big/ledger.jsonl")).load()) == 200


def test_a_retry_continues_the_sequence_and_its_records_win(moto: MotoServer, bucket: str) -> None:
    path = f"{bucket}/retry/ledger.jsonl"
    first = Ledger(S3Path(moto.s3fs(), path))
    for _ in range(11):  # past 10: names must sort as numbers
        first.record(3, "c@example.de", "sending", digest="d3")
    # Another try on another machine: a new writer, after what the first one wrote.
    second = Ledger(S3Path(moto.s3fs(), path))
    assert second.load()[3].event == "sending"
    second.record(3, "c@example.de", "created", billbee_id=33, digest="d3")
    assert Ledger(S3Path(moto.s3fs(), path)).load().match(3, "c@example.de", "d3").billbee_id == 33  # type: ignore[union-attr]
    names = sorted(moto.s3fs().ls(f"{path}.d"))
    assert names[-1].split("/")[-1].startswith("000000000012-")


def test_two_writers_at_once_lose_nothing(moto: MotoServer, bucket: str) -> None:
    path = f"{bucket}/two/ledger.jsonl"
    writers = [Ledger(S3Path(moto.s3fs(), path)) for _ in range(2)]

    def write(index: int) -> None:
        for n in range(30):
            writers[index].record(index * 100 + n, None, "sending", digest=f"d{index}-{n}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Both writers used sequence numbers 1..30: unique names by writer id, nothing overwritten.
    assert len(moto.s3fs().ls(f"{path}.d")) == 60
    assert len(Ledger(S3Path(moto.s3fs(), path)).load()) == 60


def test_threads_of_one_writer_share_its_sequence(moto: MotoServer, bucket: str) -> None:
    path = f"{bucket}/threads/ledger.jsonl"
    ledger = Ledger(S3Path(moto.s3fs(), path))

    def write(worker: int) -> None:
        for n in range(10):
            ledger.record(worker * 1000 + n, None, "sending", digest="x")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [n.split("/")[-1] for n in moto.s3fs().ls(f"{path}.d")]
    assert sorted(int(n.split("-")[0]) for n in names) == list(range(1, 61))
    assert len(Ledger(S3Path(moto.s3fs(), path)).load()) == 60


def test_a_single_object_ledger_of_an_older_version_is_read_first(moto: MotoServer, bucket: str) -> None:
    fs = moto.s3fs()
    path = f"{bucket}/legacy/ledger.jsonl"
    fs.pipe_file(path, b'{"row":1,"key":null,"event":"sending","digest":"a","at":"x"}\n{"row":1,"ev')
    ledger = Ledger(S3Path(fs, path))
    assert ledger.load()[1].event == "sending"
    ledger.record(1, None, "created", billbee_id=5, digest="a")
    state = Ledger(S3Path(moto.s3fs(), path)).load()
    assert state[1].event == "created" and state[1].billbee_id == 5


def test_an_unreadable_record_object_is_skipped_by_number(
    moto: MotoServer, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    fs = moto.s3fs()
    path = f"{bucket}/garbled/ledger.jsonl"
    with Ledger(S3Path(fs, path)) as ledger:
        ledger.record(1, "anna@example.de", "sending", digest="a")
    fs.pipe_file(f"{path}.d/000000000002-0000000000ab.json", b'{"row":1,"key":"anna@exa')
    fs.pipe_file(f"{path}.d/notes.txt", b"not a record name: ignored")
    assert Ledger(S3Path(moto.s3fs(), path)).load()[1].event == "sending"
    assert "anna" not in caplog.text and "skipped 1 unreadable record" in caplog.text


def test_url_strings_resolve_to_the_object_backend(
    moto: MotoServer, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    url = f"s3://{bucket}/url/ledger.jsonl"
    resolved = file_system_of(url)
    assert resolved is not None and resolved[1] == f"{bucket}/url/ledger.jsonl"
    records = ObjectRecords(*resolved)
    records.append(b'{"row":1,"key":null,"event":"failed","at":"x"}\n')
    assert Ledger(url).load()[1].event == "failed"
