"""The fault matrix's shared case runner: imports against a misbehaving sandbox, then the books.

Every case builds N customers with distinct e-mails, writes the staging file the validate
stage would write, runs :func:`~billbee_provider.imports.create.import_customers` against a
sandbox with a fault switched on (in this process, or in child processes that get
killed), and then compares what the sandbox stored with the input (:func:`audit`):

* **created**: input e-mails with a stored customer;
* **duplicates**: stored customers with an e-mail beyond the first;
* **lost**: rows with no stored customer that no results file accounts for as
  ``rejected`` or ``in_doubt``;
* every staging row appears exactly once in every results file, and every ``created`` /
  ``existing`` row names the Id of a stored customer with its e-mail.

The stored customers are read straight from the sandbox's SQLite file (a second
connection; WAL mode), the ground truth that no fault switch touches, also while the
sandbox is down. :class:`Tally` is one line of the table printed after the session
(``tests/reliability/conftest.py``) and by the soak (``tests/reliability/soak.py``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import requests

from billbee_provider.api.client import BillbeeClient
from billbee_provider.api.config import BillbeeConfig
from billbee_provider.imports.create import ImportSummary, import_customers
from billbee_provider.imports.ledger import Ledger
from billbee_provider.sandbox import Faults, SandboxConfig, SandboxServer

REPO = Path(__file__).resolve().parents[2]
#: Sandbox limits scaled up from Billbee's 2/10/50 per second, so that a case takes seconds.
LIMITS: dict[str, int] = {"endpoint_limit": 20, "user_limit": 50, "key_limit": 100}
#: The client's limits matching :data:`LIMITS`.
CLIENT_LIMITS: dict[str, int] = {"endpoint_rate_limit": 20, "account_rate_limit": 50}
#: Statuses that account for a row without a stored customer.
ACCOUNTED = frozenset({"rejected", "in_doubt"})
_POLL = 0.01


# -- input --------------------------------------------------------------------------


def person(n: int, tag: str = "m") -> dict[str, Any]:
    """A German customer body; the e-mail (distinct per ``n`` and ``tag``) has capitals."""
    return {
        "Name": f"Jürgen Müßig-Ölschläger {n}",
        "Email": f"Juergen.Muessig.{tag}{n}@Example.de",
        "Type": 0,
        "Address": {
            "FirstName": "Jürgen",
            "LastName": f"Müßig-Ölschläger {n}",
            "Street": "Straße des 17. Juni",
            "Housenumber": str(1 + n % 200),
            "Zip": "50667",
            "City": "Köln",
            "CountryCode": "DE",
            "AddressType": 1,
        },
    }


def people(count: int, tag: str = "m") -> list[dict[str, Any]]:
    """``count`` customers with distinct e-mails."""
    return [person(n, tag) for n in range(count)]


def key_of(body: Mapping[str, Any]) -> str:
    """The row key the validate stage writes: the lower-cased e-mail."""
    return str(body["Email"]).lower()


def write_staging(path: Path, bodies: Sequence[Mapping[str, Any]]) -> None:
    """The validate stage's staging file: rows numbered from 2 (line 1 is the CSV header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for n, body in enumerate(bodies):
            out.write(
                json.dumps({"row": n + 2, "key": key_of(body), "body": body}, ensure_ascii=False) + "\n"
            )


# -- one import's files -------------------------------------------------------------


@dataclass
class Job:
    """One import of a staging file, with its own output directory (ledger, results, rejects)."""

    staging: Path
    out: Path

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.rejects.exists():  # what the validate stage leaves: the header only
            self.rejects.write_text('"row","line","key","stage","problems"\r\n', encoding="utf-8-sig")

    @property
    def ledger(self) -> Path:
        """The ledger file."""
        return self.out / "ledger.jsonl"

    @property
    def results(self) -> Path:
        """The results CSV."""
        return self.out / "results.csv"

    @property
    def rejects(self) -> Path:
        """The rejects CSV."""
        return self.out / "rejects.csv"

    def run(self, client: BillbeeClient, lock_dir: Path, **options: Any) -> ImportSummary:
        """Run the import in this process."""
        with Ledger(self.ledger) as ledger:
            return import_customers(
                self.staging,
                client=client,
                ledger=ledger,
                results_path=self.results,
                rejects_path=self.rejects,
                lock_dir=lock_dir,
                progress_every=60.0,
                **options,
            )

    def spec(self, config: BillbeeConfig, lock_dir: Path, *, seed: int, max_in_flight: int = 8) -> str:
        """The JSON spec of ``tests.reliability.runner`` for this job."""
        settings = {f.name: getattr(config, f.name) for f in fields(config)}
        return json.dumps(
            {
                "config": settings,
                "staging": str(self.staging),
                "ledger": str(self.ledger),
                "results": str(self.results),
                "rejects": str(self.rejects),
                "lock_dir": str(lock_dir),
                "seed": seed,
                "max_in_flight": max_in_flight,
            }
        )

    def results_rows(self) -> list[dict[str, str]]:
        """The results CSV's rows; ``[]`` when there is none yet."""
        if not self.results.exists():
            return []
        with self.results.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    def ledger_events(self) -> list[dict[str, Any]]:
        """The ledger's readable records, in order (torn lines left out)."""
        events = []
        for line in self.ledger.read_bytes().split(b"\n") if self.ledger.exists() else []:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def tear_ledger(self) -> None:
        """Append half a JSON record without a newline: what a kill in the middle of a write leaves."""
        last = self.ledger_events()[-1]
        record = json.dumps({**last, "event": "created", "billbee_id": 1}).encode()
        with self.ledger.open("ab") as raw:
            raw.write(record[: len(record) // 2])


# -- the sandbox --------------------------------------------------------------------


class Bench:
    """A sandbox in this process on one SQLite file; it can go down and come back on its port.

    :param directory: where the database lives.
    :param faults: the fault switches at start (and after a restart).
    :param seed: seed of the sandbox's fault decisions.
    :param limits: ``endpoint_limit``, ``user_limit``, ``key_limit``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        faults: Faults | None = None,
        seed: int = 7,
        limits: Mapping[str, int] = LIMITS,
    ) -> None:
        self.config = SandboxConfig(
            port=0,
            db_path=directory / "sandbox.sqlite",
            faults=faults or Faults(),
            seed=seed,
            endpoint_limit=limits["endpoint_limit"],
            user_limit=limits["user_limit"],
            key_limit=limits["key_limit"],
        )
        self.db_path = Path(self.config.db_path)
        self._server: SandboxServer | None = None
        self._lock = threading.Lock()

    def start(self) -> Bench:
        """Serve (again): the first start picks a free port, later ones reuse it."""
        with self._lock:
            server = SandboxServer(self.config).start()
            self.config, self._server = server.config, server
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests finish); new connections are refused."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> Bench:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.config.host}:{self.config.port}"

    def client_config(self, **overrides: Any) -> BillbeeConfig:
        """A client configuration for this sandbox at the scaled-up limits."""
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": self.config.api_key,
            "user": self.config.user,
            "password": self.config.api_password,
            "read_timeout": 10.0,
            "connect_timeout": 2.0,
            **CLIENT_LIMITS,
            **overrides,
        }
        return BillbeeConfig(**settings)

    def set_faults(self, **switches: Any) -> bool:
        """Change fault switches with ``PUT /_sandbox/faults``; ``False`` while the sandbox is down."""
        try:
            answer = requests.put(f"{self.base_url}/_sandbox/faults", json=switches, timeout=5)
        except requests.ConnectionError:
            return False
        answer.raise_for_status()
        return True

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)) as db:
            return db.execute(sql).fetchall()

    def stored(self) -> list[dict[str, Any]]:
        """Every stored customer record."""
        return [json.loads(row[0]) for row in self._query("SELECT record FROM customers ORDER BY id")]

    def customer_count(self) -> int:
        """How many customers are stored (committed creates)."""
        return int(self._query("SELECT COUNT(*) FROM customers")[0][0])

    def journal_statuses(self) -> Counter[str]:
        """API answers by status (``dropped`` for lost answers), over the sandbox's whole life."""
        rows = self._query("SELECT status, dropped, COUNT(*) FROM journal GROUP BY status, dropped")
        return Counter({("dropped" if dropped else str(status)): n for status, dropped, n in rows})

    def wait_for_creates(self, count: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
        """Wait until ``count`` customers are stored; ``False`` on timeout or when ``alive()`` turns false."""
        deadline = time.monotonic() + timeout
        while self.customer_count() < count:
            if time.monotonic() > deadline or not alive():
                return False
            time.sleep(_POLL)
        return True


@contextmanager
def latency_pulses(bench: Bench, latency: float, on: float, off: float) -> Iterator[None]:
    """Add ``latency`` to every answer for ``on`` seconds of every ``on + off``, from a background thread.

    The sandbox's latency is global, so it is switched on and off with
    ``PUT /_sandbox/faults``; the first window opens when the first customer is stored
    (creates are under way; the account scan before them is left alone). The client
    paces creates in bursts of up to its limit per second, so a window of more than a
    second always meets creates.
    """
    stop = threading.Event()

    def running() -> bool:
        return not stop.is_set()

    def pulse() -> None:
        if not bench.wait_for_creates(bench.customer_count() + 1, timeout=600, alive=running):
            return
        while running():
            bench.set_faults(latency=latency)
            stop.wait(on)
            bench.set_faults(latency=0.0)
            stop.wait(off)

    thread = threading.Thread(target=pulse, name="latency-pulses", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bench.set_faults(latency=0.0)


@dataclass
class Outage:
    """When the sandbox went down and came back (monotonic seconds; 0 = not yet)."""

    down_at: float = 0.0
    up_at: float = 0.0


@contextmanager
def outage(bench: Bench, after_creates: int, down: float) -> Iterator[Outage]:
    """Stop the sandbox once ``after_creates`` customers are stored; restart it ``down`` s later.

    The restart uses the same port and database, so that clients reconnect to the same
    account; while it is down every connection is refused.
    """
    record = Outage()
    stop = threading.Event()

    def cycle() -> None:
        if not bench.wait_for_creates(after_creates, timeout=120, alive=lambda: not stop.is_set()):
            return
        bench.stop()
        record.down_at = time.monotonic()
        time.sleep(down)
        bench.start()
        record.up_at = time.monotonic()

    thread = threading.Thread(target=cycle, name="sandbox-outage", daemon=True)
    thread.start()
    try:
        yield record
    finally:
        stop.set()
        thread.join()


# -- running imports ----------------------------------------------------------------


class RetryLog:
    """A logger for the client that keeps the retry warnings' reasons (no data in them)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def debug(self, msg: Any, /, *args: Any) -> None:
        """Ignored."""

    def info(self, msg: Any, /, *args: Any) -> None:
        """Ignored."""

    def warning(self, msg: Any, /, *args: Any) -> None:
        """Keep the reason of a retry (the client's second argument)."""
        if len(args) > 1 and "retrying" in str(msg):
            self.reasons.append(str(args[1]))

    def refused(self) -> int:
        """Retries after a refused connection (``NewConnectionError``: nothing was sent)."""
        return sum(1 for r in self.reasons if "NewConnectionError" in r)


def run_in_process(
    job: Job, config: BillbeeConfig, lock_dir: Path, *, seed: int, log: RetryLog | None = None
) -> ImportSummary:
    """Run the import once in this process, with seeded backoff jitter."""
    jitter = random.Random(seed)  # backoff jitter, not security
    with BillbeeClient(config, rng=jitter.random, logger=log) as client:
        return job.run(client, lock_dir)


class Child:
    """``tests.reliability.runner`` in a child process; its output goes to files (no pipe to fill).

    :param spec: the runner's JSON spec.
    :param logs: path prefix of the ``.out`` and ``.err`` files.
    """

    def __init__(self, spec: str, logs: Path) -> None:
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.runner", spec],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
            )

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.alive():  # a test that failed half-way leaves no process behind
            self.kill()

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no results file, maybe a torn ledger line."""
        self.process.kill()
        self.process.wait()

    def finish(self, timeout: float = 600) -> dict[str, Any]:
        """Wait for the end and return the import's summary.

        :raises AssertionError: if the import failed (with the end of its stderr).
        """
        summary = self.result(timeout)
        assert summary is not None, self.err.read_text("utf-8", "replace")[-3000:]
        return summary

    def result(self, timeout: float = 600) -> dict[str, Any] | None:
        """Wait for the end; the import's summary, or ``None`` if it failed (a failed task).

        :raises subprocess.TimeoutExpired: after ``timeout`` seconds (the child is killed).
        """
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        if code != 0:
            return None
        summary: dict[str, Any] = json.loads(self.out.read_text("utf-8").strip().splitlines()[-1])
        return summary


@dataclass
class Kills:
    """What a series of killed runs and the runs completing the import did.

    :param failed_runs: completing runs that ended with an error (a failed task).
    """

    killed: int = 0
    summaries: list[dict[str, Any]] = field(default_factory=list)
    failed_runs: int = 0


def kill_then_complete(
    bench: Bench,
    job: Job,
    spec: Callable[[int], str],
    *,
    kills: int,
    rng: random.Random,
    creates_between: tuple[int, int],
    tear: bool = True,
    completions: int = 1,
) -> Kills:
    """Kill ``kills`` runs at random points, tear the ledger's last line, then complete the import.

    Each run is killed after ``creates_between`` (a random count in that range) more
    customers are stored, plus up to 0.1 s. The completing run is repeated (a re-run of
    the task, up to ``completions`` runs in all) while it fails or leaves rows ``failed``.

    :param spec: the runner spec of the n-th run (a different backoff seed each).
    :raises AssertionError: a run ended before its kill, or a completing run failed.
    """
    report = Kills()
    for n in range(kills):
        with Child(spec(n), job.out / f"run-{n}") as child:
            target = bench.customer_count() + rng.randint(*creates_between)
            bench.wait_for_creates(target, timeout=300, alive=child.alive)
            time.sleep(rng.uniform(0.0, 0.1))
            assert child.alive(), (
                f"run {n} ended before its kill: " + child.err.read_text("utf-8", "replace")[-2000:]
            )
            child.kill()
        report.killed += 1
    if tear:
        job.tear_ledger()
    for n in range(kills, kills + completions):
        child = Child(spec(n), job.out / f"run-{n}")
        summary = child.result() if n + 1 < kills + completions else child.finish()
        if summary is None:
            report.failed_runs += 1
            continue
        report.summaries.append(summary)
        if not summary["counts"]["failed"]:
            break
    return report


# -- the books ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """One line of the table; the first seven fields are its columns."""

    fault: str
    rows: int
    created: int
    duplicates: int
    lost: int
    retries: int
    seconds: float
    in_doubt: int = 0
    failed: int = 0
    wrong_ids: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready."""
        return asdict(self)


COLUMNS = ("fault", "rows", "created", "duplicates", "lost", "retries", "seconds")
#: The table's lines, collected by the tests and printed after the session.
TABLE: list[Tally] = []


def audit(
    fault: str,
    bench: Bench,
    bodies: Sequence[Mapping[str, Any]],
    jobs: Iterable[Job],
    *,
    retries: int,
    seconds: float,
    notes: Mapping[str, Any] | None = None,
) -> Tally:
    """Compare the sandbox's stored customers with the input and the jobs' results.

    :raises AssertionError: a results file misses a row, lists one twice, or is missing.
    """
    rows = {n + 2: key_of(body) for n, body in enumerate(bodies)}
    ids_by_email: dict[str, list[int]] = {}
    for customer in bench.stored():
        ids_by_email.setdefault(str(customer.get("Email") or "").lower(), []).append(int(customer["Id"]))
    statuses: dict[int, list[str]] = {row: [] for row in rows}
    wrong_ids = 0
    for job in jobs:
        results = job.results_rows()
        listed = Counter(int(r["row"]) for r in results)
        assert listed == Counter(rows.keys()), f"{job.results}: rows missing or listed twice"
        for result in results:
            row, status = int(result["row"]), result["status"]
            statuses[row].append(status)
            if status in ("created", "existing"):
                wrong_ids += int(result["billbee_id"] or 0) not in ids_by_email.get(rows[row], [])
    lost = sum(
        1 for row, key in rows.items() if key not in ids_by_email and ACCOUNTED.isdisjoint(statuses[row])
    )
    return Tally(
        fault=fault,
        rows=len(rows),
        created=sum(1 for key in rows.values() if key in ids_by_email),
        duplicates=sum(len(ids) - 1 for ids in ids_by_email.values()),
        lost=lost,
        retries=retries,
        seconds=round(seconds, 1),
        in_doubt=sum(1 for s in statuses.values() if s and s[-1] == "in_doubt"),
        failed=sum(1 for s in statuses.values() if s and s[-1] == "failed"),
        wrong_ids=wrong_ids,
        notes=dict(notes or {}),
    )


def format_table(tallies: Iterable[Tally]) -> str:
    """The tallies as a Markdown table with the :data:`COLUMNS`."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for tally in tallies:
        lines.append("| " + " | ".join(str(getattr(tally, c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


# -- the cases ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A fault-switch case: one import in this process against a sandbox with ``faults`` on.

    :param fault: the label in the table.
    :param faults: the sandbox's fault switches (as in ``PUT /_sandbox/faults``).
    :param client: :class:`BillbeeConfig` overrides (e.g. ``read_timeout``).
    :param pulses: ``(latency, on, off)`` for :func:`latency_pulses`, or ``None``.
    """

    fault: str
    faults: Mapping[str, Any] = field(default_factory=dict)
    rows: int = 30
    client: Mapping[str, Any] = field(default_factory=dict)
    pulses: tuple[float, float, float] | None = None
    seed: int = 7


def ledger_notes(job: Job) -> dict[str, int]:
    """How often the ledger saw rows fail and rows in doubt (how many of those after a refused
    connection: must be none), and how many in-doubt rows the scan found created."""
    events = job.ledger_events()
    doubts = [str(e.get("message") or "") for e in events if e["event"] == "in_doubt"]
    return {
        "failed_events": sum(1 for e in events if e["event"] == "failed"),
        "in_doubt_events": len(doubts),
        "in_doubt_refused": sum(1 for message in doubts if "NewConnectionError" in message),
        "found_by_email": sum(1 for e in events if "found by e-mail" in str(e.get("message") or "")),
    }


def run_case(case: Case, directory: Path) -> Tally:
    """Import ``case.rows`` customers with ``case.faults`` on; audit the result."""
    bodies = people(case.rows)
    write_staging(directory / "staging.jsonl", bodies)
    job = Job(directory / "staging.jsonl", directory / "out")
    log = RetryLog()
    with Bench(directory, faults=Faults(**case.faults), seed=case.seed) as bench:
        config = bench.client_config(**case.client)
        started = time.monotonic()
        with latency_pulses(bench, *case.pulses) if case.pulses else nullcontext():
            summary = run_in_process(job, config, directory, seed=case.seed, log=log)
        seconds = time.monotonic() - started
        answers = dict(bench.journal_statuses())
    notes = {"answers": answers, **ledger_notes(job)}
    return audit(case.fault, bench, bodies, [job], retries=summary.retries, seconds=seconds, notes=notes)


def run_outage(directory: Path, *, rows: int = 30, after_creates: int = 8, down: float = 2.0) -> Tally:
    """The sandbox goes down after ``after_creates`` creates and comes back ``down`` s later."""
    bodies = people(rows)
    write_staging(directory / "staging.jsonl", bodies)
    job = Job(directory / "staging.jsonl", directory / "out")
    log = RetryLog()
    with Bench(directory) as bench:
        started = time.monotonic()
        with outage(bench, after_creates, down) as record:
            summary = run_in_process(job, bench.client_config(), directory, seed=5, log=log)
        seconds = time.monotonic() - started
    notes = {
        "refused_retries": log.refused(),
        "down_seconds": round(record.up_at - record.down_at, 2),
        **ledger_notes(job),
    }
    fault = f"connection refused {down:g} s (sandbox restart)"
    return audit(fault, bench, bodies, [job], retries=summary.retries, seconds=seconds, notes=notes)


def run_kills(directory: Path, *, rows: int = 40, kills: int = 3, seed: int = 3) -> Tally:
    """``kills`` SIGKILLed runs at seeded random points, a torn ledger line, a completing run.

    The answers take 0.2 s, so that a kill often lands on a create that committed but
    whose answer has not arrived: the completing run must find it by e-mail.
    """
    bodies = people(rows)
    write_staging(directory / "staging.jsonl", bodies)
    job = Job(directory / "staging.jsonl", directory / "out")
    with Bench(directory, faults=Faults(latency=0.2)) as bench:
        config = bench.client_config()
        started = time.monotonic()
        report = kill_then_complete(
            bench,
            job,
            lambda n: job.spec(config, directory, seed=seed + n),
            kills=kills,
            rng=random.Random(seed),  # kill points, not security
            creates_between=(4, 9),
        )
        seconds = time.monotonic() - started
    notes = {"killed": report.killed, "runs": report.killed + len(report.summaries), **ledger_notes(job)}
    retries = sum(s["retries"] for s in report.summaries)
    fault = f"SIGKILL x{kills} + torn ledger line"
    return audit(fault, bench, bodies, [job], retries=retries, seconds=seconds, notes=notes)


def run_two_imports(directory: Path, *, rows: int = 30, same_lock_dir: bool = True) -> Tally:
    """Two runs of one staging file against one account, started together, own ledgers and outputs.

    :param same_lock_dir: ``False`` gives each its own lock directory: no guard (a control).
    """
    bodies = people(rows)
    write_staging(directory / "staging.jsonl", bodies)
    jobs = [Job(directory / "staging.jsonl", directory / name) for name in ("a", "b")]
    with Bench(directory, faults=Faults(latency=0.05)) as bench:
        config = bench.client_config()
        lock_dirs = [directory / "locks"] * 2 if same_lock_dir else [job.out / "locks" for job in jobs]
        started = time.monotonic()
        with ExitStack() as stack:
            children = [
                stack.enter_context(Child(job.spec(config, lock_dir, seed=n), job.out / "run"))
                for n, (job, lock_dir) in enumerate(zip(jobs, lock_dirs, strict=True))
            ]
            summaries = [child.finish() for child in children]
        seconds = time.monotonic() - started
    notes = {"counts": [{k: v for k, v in s["counts"].items() if v} for s in summaries]}
    fault = "two imports at once, one account" + ("" if same_lock_dir else " (no lock: control)")
    retries = sum(s["retries"] for s in summaries)
    return audit(fault, bench, bodies, jobs, retries=retries, seconds=seconds, notes=notes)
