"""What every benchmark shares: a sandbox in its own process, data, tables, results.jsonl.

The sandbox runs as a separate process (``python -m billbee_provider.sandbox``) on a free
loopback port, so that the client under test does not share its interpreter (and GIL)
with the server. It is started and stopped by its own ``Popen`` handle, never by name.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).with_name("results.jsonl")
API_KEY, USER, PASSWORD = "sandbox-api-key", "sandbox@example.com", "sandbox-api-password"


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM), in MB.

    Not ``ru_maxrss``: Linux keeps, across ``exec``, the peak of the process a worker was
    forked from (the benchmark runner, hundreds of MB).
    """
    return _status_kib("VmHWM:") / 1024


def rss_mb() -> float:
    """This process's RSS now (VmRSS), in MB."""
    return _status_kib("VmRSS:") / 1024


def _status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith(field))


def run_worker(args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh interpreter in the repo; its last stdout line, as JSON."""
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def memory_table(
    sizes: Sequence[int], peaks: dict[int, float]
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """The "minus the smallest run" column and benchmark 5's two targets (< 50 MB, flat)."""
    base = peaks[sizes[0]]
    extra = [round(peaks[rows] - base, 1) for rows in sizes]
    big, mid = peaks[sizes[-1]] - base, peaks[sizes[1]] - base
    targets = [
        target(f"< 50 MB extra at {sizes[-1]:,} rows", f"{big:.1f} MB", big < 50),
        target(f"flat: {sizes[1]:,} vs {sizes[-1]:,} rows", f"{mid:.1f} vs {big:.1f} MB", big - mid < 10),
    ]
    return [[rows, round(peaks[rows], 1), x] for rows, x in zip(sizes, extra, strict=True)], targets


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "uname": " ".join(platform.uname()),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SandboxProcess:
    """A sandbox server in a child process; admin calls; its Billbee client config."""

    def __init__(
        self,
        db: Path,
        *,
        endpoint_limit: int = 2,
        user_limit: int = 10,
        key_limit: int = 50,
        user: str = USER,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.user = user
        self.endpoint_limit = endpoint_limit
        args = [
            sys.executable,
            "-m",
            "billbee_provider.sandbox",
            "--port",
            str(self.port),
            "--db",
            str(db),
            "--reset",
            "--endpoint-limit",
            str(endpoint_limit),
            "--user-limit",
            str(user_limit),
            "--key-limit",
            str(key_limit),
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "BILLBEE_SANDBOX_USER": user}
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.base_url}/_sandbox/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"sandbox did not start: {self.process.stderr.read() if self.process.stderr else ''}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = requests.request(method, f"{self.base_url}/_sandbox{path}", timeout=60, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def reset(self, latency: float = 0.0) -> None:
        self.admin("POST", "/reset")
        self.admin("PUT", "/faults", json={"latency": latency})

    def creates(self) -> list[dict[str, Any]]:
        """Journal entries of customer creates (any status)."""
        entries: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self.admin("GET", "/requests", params={"since": since, "limit": 5000})
            if not page:
                return [e for e in entries if e["method"] == "POST" and e["path"] == "/api/v1/customers"]
            entries.extend(page)
            since = page[-1]["seq"]

    def client_config(self, **overrides: Any) -> Any:
        return sandbox_client_config(self.base_url, self.user, **overrides)


def sandbox_client_config(base_url: str, user: str = USER, **overrides: Any) -> Any:
    """The ``BillbeeConfig`` of a sandbox (also in a worker process, from its URL alone)."""
    from billbee_provider.api.config import BillbeeConfig

    fields = {
        "base_url": base_url,
        "api_key": API_KEY,
        "user": user,
        "password": PASSWORD,
        "read_timeout": 30.0,
    }
    fields.update(overrides)
    return BillbeeConfig(**fields)


def import_in(workdir: Path, config: Any, **options: Any) -> Any:
    """``import_customers`` over a run folder's ``staging.jsonl``, ``ledger.jsonl``,
    ``results.csv`` and ``rejects.csv`` with a client of ``config``; its summary.

    :param options: more ``import_customers`` options (``dry_run``, ``max_in_flight``).
    """
    from billbee_provider.api.client import BillbeeClient
    from billbee_provider.imports.create import import_customers
    from billbee_provider.imports.ledger import Ledger

    with BillbeeClient(config) as client, Ledger(workdir / "ledger.jsonl") as ledger:
        return import_customers(
            workdir / "staging.jsonl",
            client=client,
            ledger=ledger,
            results_path=workdir / "results.csv",
            rejects_path=workdir / "rejects.csv",
            lock_dir=workdir,
            progress_every=60,
            **options,
        )


@contextmanager
def sandbox(db: Path, **limits: Any) -> Iterator[SandboxProcess]:
    server = SandboxProcess(db, **limits)
    try:
        yield server
    finally:
        server.stop()


def server_rate(entries: Sequence[dict[str, Any]], limit: float) -> float:
    """Creates/s as the server saw them: n / (last - first + 1 / limit) of the 200 answers.

    Exactly ``limit`` for n creates evenly spaced at the limit (the last one's own slot
    counted); a limiter that sends its window's creates at once reads up to 1/n higher.
    """
    from datetime import datetime

    times = sorted(datetime.fromisoformat(e["time"]).timestamp() for e in entries if e["status"] == 200)
    if not times:
        return 0.0
    return len(times) / (times[-1] - times[0] + 1 / limit)


# -- data -------------------------------------------------------------------------------

CSV_HEADER = [
    "Name",
    "Email",
    "Type",
    "Tel1",
    "Address.FirstName",
    "Address.LastName",
    "Address.Street",
    "Address.Housenumber",
    "Address.Zip",
    "Address.City",
    "Address.CountryCode",
    "Address.AddressType",
]


def csv_line(n: int, tag: str = "") -> str:
    return (
        f"Jürgen Müßig {n};kunde{n}{tag}@example.de;0;+49 221 {n:07d};Jürgen;Müßig {n};Straße des 17. Juni;"
        f"{n % 200 + 1}a;{50000 + n % 9999:05d};Köln;DE;1\n"
    )


def write_csv(path: Path, rows: int, tag: str = "") -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(";".join(CSV_HEADER) + "\n")
        for start in range(1, rows + 1, 10_000):
            out.write("".join(csv_line(n, tag) for n in range(start, min(start + 10_000, rows + 1))))
    return path


def body(n: int, tag: str = "") -> dict[str, Any]:
    return {
        "Name": f"Jürgen Müßig {n}",
        "Email": f"kunde{n}{tag}@example.de",
        "Type": 0,
        "Tel1": f"+49 221 {n:07d}",
        "Address": {
            "FirstName": "Jürgen",
            "LastName": f"Müßig {n}",
            "Street": "Straße des 17. Juni",
            "Housenumber": f"{n % 200 + 1}a",
            "Zip": f"{50000 + n % 9999:05d}",
            "City": "Köln",
            "CountryCode": "DE",
            "AddressType": 1,
        },
    }


def write_staging(path: Path, rows: int, tag: str = "") -> Path:
    from billbee_provider.imports.files import staging_line

    with path.open("wb") as out:
        for n in range(1, rows + 1):
            b = body(n, tag)
            line = staging_line(n, b["Email"].lower(), b)
            assert isinstance(line, bytes)
            out.write(line)
    return path


# -- output -----------------------------------------------------------------------------


def report(
    benchmark: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    targets: Sequence[dict[str, Any]],
    params: dict[str, Any],
    smoke: bool = False,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Print the benchmark's table and targets; append one JSON line to results.jsonl."""
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    if targets:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |" for t in targets]
    lines += [f"\n{n}" for n in notes]
    table = "\n".join(lines)
    print(table + "\n", flush=True)
    record = {
        "benchmark": benchmark,
        "title": title,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "smoke": smoke,
        "machine": machine(),
        "params": params,
        "columns": list(columns),
        "rows": [list(r) for r in rows],
        "targets": list(targets),
        "notes": list(notes),
        "table": table,
    }
    results = Path(os.environ.get("BILLBEE_BENCH_RESULTS", RESULTS))
    with results.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def target(text: str, measured: Any, met: bool) -> dict[str, Any]:
    return {
        "target": text,
        "measured": _cell(measured) if not isinstance(measured, str) else measured,
        "met": bool(met),
    }
