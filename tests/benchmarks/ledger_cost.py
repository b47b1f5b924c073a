"""Cost per ledger record: a local file, S3 one object per record, S3 one growing object.

Run: ``.venv/bin/python -m tests.benchmarks.ledger_cost`` (needs the ``[s3]`` and ``[test]``
extras: s3fs and ``moto_server``). S3 is a real ``moto_server`` on loopback, started and
stopped (by PID) by this script. Prints a Markdown table; ``--json`` prints the numbers.

For each ledger size N (``--sizes 100 2000``) and backend it writes N records as the
importer does (``Ledger.record``, one ``sending`` record of a realistic row each) and
reports:

* ``ms/record``: mean wall time of ``Ledger.record`` over the whole ledger, and over its
  last 100 records (the cost at size N: it must not grow with N);
* ``bytes/record``: bytes sent to the store per record at size N (the record itself for
  a local file and for one object per record; the whole object for a growing object,
  which s3fs downloads and uploads again per append);
* ``load s``: one ``Ledger.load()`` of the N records (what a resume reads once).

"one growing object" is how the provider wrote ledgers on object storage before: it is
measured by filling N - 100 records in one PUT, then appending the last 100 the old way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from billbee_provider.imports.ledger import Ledger, LedgerEntry
from billbee_provider.imports.storage import Appender
from tests.storage.moto import MotoServer, moto_server

TAIL = 100


def record_args(row: int) -> dict[str, Any]:
    return {
        "row": row,
        "key": f"kunde{row:06d}@example.de",
        "event": "sending",
        "digest": f"{row:064x}",
        "input_id": "f" * 64,
    }


def line(row: int) -> bytes:
    args = record_args(row)
    entry = LedgerEntry(
        args["row"],
        args["key"],
        "sending",
        "2026-01-01T00:00:00.000+00:00",
        None,
        None,
        None,
        args["digest"],
        args["input_id"],
    )
    return (entry.to_json() + "\n").encode()


class S3Path:
    """An ``ObjectStoragePath`` stand-in: file system and path (the object backend)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def open(self, mode: str) -> Any:
        return self.fs.open(self.path, mode)

    def __str__(self) -> str:
        return f"s3://{self.path}"


class GrowingObject:
    """An openable without a file system: the old path, ``open("ab")`` per record."""

    def __init__(self, inner: S3Path) -> None:
        self.inner = inner

    def open(self, mode: str) -> Any:
        return self.inner.open(mode)


def timed_records(ledger: Ledger, rows: range) -> list[float]:
    times = []
    for row in rows:
        args = record_args(row)
        start = time.perf_counter()
        ledger.record(args["row"], args["key"], "sending", digest=args["digest"], input_id=args["input_id"])
        times.append(time.perf_counter() - start)
    return times


def measure(backend: str, size: int, server: MotoServer, bucket: str, workdir: Path) -> dict[str, Any]:
    record_bytes = len(line(size))
    if backend == "local file":
        location: Any = workdir / f"{uuid.uuid4().hex}.jsonl"
        with Ledger(location) as ledger:
            times = timed_records(ledger, range(1, size + 1))
        bytes_per_record = record_bytes
        start = time.perf_counter()
        loaded = len(Ledger(location).load())
    elif backend == "S3, one object per record":
        location = S3Path(server.s3fs(), f"{bucket}/{uuid.uuid4().hex}/ledger.jsonl")
        times = timed_records(Ledger(location), range(1, size + 1))
        bytes_per_record = record_bytes
        start = time.perf_counter()
        loaded = len(Ledger(S3Path(server.s3fs(), location.path)).load())
    else:
        fs = server.s3fs()
        path = f"{bucket}/{uuid.uuid4().hex}/ledger.jsonl"
        fs.pipe_file(path, b"".join(line(row) for row in range(1, size - TAIL + 1)))
        location = GrowingObject(S3Path(fs, path))
        ledger = Ledger(location)
        times = timed_records(ledger, range(size - TAIL + 1, size + 1))
        bytes_per_record = 2 * server.s3fs().size(path)  # downloaded and uploaded per append
        start = time.perf_counter()
        loaded = len(Ledger(location).load())
        assert isinstance(Appender, type)
    load_s = time.perf_counter() - start
    assert loaded == size, (backend, loaded, size)
    return {
        "backend": backend,
        "records": size,
        "ms_per_record_mean": round(1000 * statistics.fmean(times), 2),
        "ms_per_record_last_100": round(1000 * statistics.fmean(times[-TAIL:]), 2),
        "bytes_per_record": bytes_per_record,
        "load_s": round(load_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args(argv)
    backends = ["local file", "S3, one object per record", "S3, one growing object (before)"]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp,
        moto_server(Path(tmp) / "moto.log") as server,
    ):
        bucket = "ledger-bench"
        server.create_bucket(bucket)
        for size in args.sizes:
            for backend in backends:
                results.append(measure(backend, size, server, bucket, Path(tmp)))
                print(f"  {backend}, {size} records: done", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| backend | records | ms/record (mean) | ms/record (last 100) | bytes/record at size | load (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        mean = "-" if r["backend"].endswith("(before)") else r["ms_per_record_mean"]
        print(
            f"| {r['backend']} | {r['records']} | {mean} | {r['ms_per_record_last_100']} | "
            f"{r['bytes_per_record']:,} | {r['load_s']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
