"""The create stage of a bulk customer import: staged bodies to Billbee, exactly once.

:func:`import_customers` reads the validate stage's staging file (JSONL, one
``{"row", "key", "body"}`` per valid row), creates the customers at Billbee's rate limit,
and writes a results CSV, Billbee's own rejections into the rejects CSV, and an
:class:`ImportSummary`. A :class:`~billbee_provider.imports.ledger.Ledger` records every row's
outcome as the run goes, so that a re-run after a crash, a kill or a task retry never
sends again what was already created.

Knowing what exists: one paged scan, not a search per row
    Billbee has no filter by e-mail on ``GET /api/v1/customers``, and the hits of
    ``POST /api/v1/search`` carry only ``Id, Name, Addresses, Number``, no e-mail
    (API-FACTS): a search per row could not even confirm a match without one more
    ``GET /customers/{id}`` per hit, i.e. two or more requests per row on endpoints
    limited to 2 requests/s. One scan of ``GET /api/v1/customers`` at ``pageSize=250``
    costs ``ceil(N / 250)`` requests for an account of N customers: 40 requests (20 s)
    for 10,000 customers, against 10,000+ requests (83+ minutes) for searches. The scan
    builds a set of lower-cased e-mails (``Email``, the ``Default*MailAddress`` values,
    e-mail ``MetaData`` and address e-mails) before anything is sent.

``if_exists``
    ``skip`` (default): rows whose key is in the account are ``existing``, a later row
    with the key of an earlier row of the file is ``duplicate_in_file``; neither is
    sent. ``fail``: if any row's key is in the account, :class:`ExistingCustomersError`
    names the rows (never the e-mails) before anything is sent; in-file duplicates are
    skipped as for ``skip``. ``create``: no check, every row is sent.

Exactly once
    A worker writes ``sending`` to the ledger immediately before its request leaves and
    the outcome after the answer. On start, rows whose final outcome is in the ledger
    (created, existing, duplicate_in_file, rejected) are carried over, not sent. Rows
    whose last event is ``sending`` or ``in_doubt`` were sent without a known answer:
    the scan (made after loading the ledger, so it sees what the killed run created)
    decides; a customer with the row's e-mail, not already claimed by another row of
    the ledger, means it was created; none means it provably was not, and the row is
    sent again. A row without an e-mail cannot be looked up: it is reported
    ``in_doubt`` and never sent again. Creates that lose their answer during the run
    (:class:`~billbee_provider.api.errors.BillbeeInDoubtError`) are resolved the same way
    by one more scan at the end (up to :data:`RESOLVE_ROUNDS` rounds). ``failed`` rows
    (retryable errors that outlasted the client's retries; Billbee did not process
    them) are sent once more after the create phase, when an outage has had time to
    end, and again by a re-run if they fail again. With ``if_exists="create"`` an in-doubt row whose
    e-mail also belonged to a customer before the import is resolved to that customer:
    without a pre-run scan the two cannot be told apart, and a missing customer is
    preferred over a duplicate one.

One import per account at a time
    Two imports of one account that overlap would both scan before either creates, and
    both create every new row. An exclusive ``flock`` on a lock file named from a hash
    of (base URL, user), in ``lock_dir`` (default: the system's temporary directory), is
    held from before the scan until the last create: a second import on the same
    machine waits, then its scan finds the first one's customers. The kernel drops the
    lock when its holder dies. Across machines the Airflow pool ``billbee_api`` (one slot
    per account) is what serializes imports. A dry run takes no lock.

Throughput
    Billbee allows 2 creates/s; with 1.5 s per answer that needs about 3 requests in
    flight. Creates run in a thread pool of ``max_in_flight`` workers sharing the one
    client, whose rate limiter paces the starts. Each worker first waits for a slot of
    the same rate (a window of the client's limiter under the importer's own key), so
    that ``sending`` is written just before the request leaves and not seconds before,
    while the worker queues for the limit: a kill then leaves few rows in doubt. The
    staging file is streamed: only ``max_in_flight`` rows are pending at any time.

Personal data
    Log lines and exception texts name row numbers, counts and Billbee Ids, never
    e-mails, names or Billbee's messages (which may quote the data). Those go only into
    the ledger, results and rejects files, which hold the data anyway.

This module does not import Airflow.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast, get_args

from billbee_provider.api.client import CREATE_CUSTOMER, MAX_PAGE_SIZE, WINDOW_SECONDS, BillbeeClient, Logger
from billbee_provider.api.errors import (
    BillbeeApiError,
    BillbeeError,
    BillbeeInDoubtError,
    BillbeeInvalidDataError,
    BillbeeRetryableError,
)
from billbee_provider.api.throttle import Window
from billbee_provider.imports.extract import Location, describe_location
from billbee_provider.imports.ledger import Ledger, LedgerEntry, local_path, open_location, read_bytes

Status = Literal["created", "existing", "duplicate_in_file", "rejected", "in_doubt", "failed", "would_create"]
STATUSES: tuple[Status, ...] = get_args(Status)
IfExists = Literal["skip", "create", "fail"]
RESULTS_COLUMNS = ("row", "key", "billbee_id", "status")
REJECTS_COLUMNS = ("row", "line", "key", "stage", "problems")
#: ``stage`` value of the rows this module adds to the rejects file.
BILLBEE_STAGE = "billbee"
#: End-of-run scans to resolve in-doubt rows (each may re-send the rows it finds absent).
RESOLVE_ROUNDS = 3
_MAX_ROWS_IN_MESSAGE = 20

_log = logging.getLogger(__name__)


class StagingError(ValueError):
    """The staging file is not what the validate stage writes (names a line, never data)."""


class ExistingCustomersError(Exception):
    """``if_exists="fail"`` and some rows' e-mails already exist in the account.

    :param rows: the source row numbers concerned (the e-mails are not in the text).
    """

    def __init__(self, rows: list[int]) -> None:
        shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_IN_MESSAGE])
        if len(rows) > _MAX_ROWS_IN_MESSAGE:
            shown += f" and {len(rows) - _MAX_ROWS_IN_MESSAGE} more"
        super().__init__(
            f"{len(rows)} row(s) have an e-mail that already exists in the Billbee account "
            f"(rows {shown}); nothing was sent. Use if_exists='skip' to leave them out or "
            "'create' to create them anyway"
        )
        self.rows = rows


@dataclass(frozen=True, slots=True)
class StagedRow:
    """One line of the staging file.

    :param row: source row number.
    :param key: lower-cased e-mail, or ``None``.
    :param body: the Billbee create body.
    """

    row: int
    key: str | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """The final status of one row, as the results file reports it.

    :param problems: Billbee's message(s) for ``rejected``; the error for others.
    """

    row: int
    key: str | None
    status: Status
    billbee_id: int | None = None
    error_code: int | None = None
    problems: str | None = None

    @classmethod
    def from_entry(cls, entry: LedgerEntry) -> RowOutcome:
        """The outcome a final ledger entry stands for."""
        status: Status = cast(Status, entry.event) if entry.final else "in_doubt"
        return cls(entry.row, entry.key, status, entry.billbee_id, entry.error_code, entry.message)


@dataclass(frozen=True)
class ImportSummary:
    """What a run did; :meth:`as_dict` is small and JSON-ready (for XCom).

    :param counts: rows per status (every status present, zeros included).
    :param elapsed_seconds: the whole run, scans and files included.
    :param create_seconds: time spent in create phases (sending and waiting for answers).
    :param rate: rows sent per second of create phase.
    :param sent: rows sent to Billbee by this run.
    :param throttled: 429 answers the client saw during the run.
    :param retries: retries the client made during the run.
    :param rejects_added: rows this run added to the rejects file.
    """

    total_rows: int
    counts: dict[str, int]
    elapsed_seconds: float
    create_seconds: float
    rate: float
    sent: int
    throttled: int
    retries: int
    rejects_added: int
    dry_run: bool
    if_exists: str
    staging_path: str
    results_path: str
    rejects_path: str
    ledger_path: str

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values, seconds and rate rounded."""
        return {
            "total_rows": self.total_rows,
            "counts": dict(self.counts),
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "create_seconds": round(self.create_seconds, 2),
            "rate": round(self.rate, 3),
            "sent": self.sent,
            "throttled": self.throttled,
            "retries": self.retries,
            "rejects_added": self.rejects_added,
            "dry_run": self.dry_run,
            "if_exists": self.if_exists,
            "staging_path": self.staging_path,
            "results_path": self.results_path,
            "rejects_path": self.rejects_path,
            "ledger_path": self.ledger_path,
        }


# -- the staging file ---------------------------------------------------------------


def count_rows(staging: Location) -> int:
    """Number of non-blank lines of the staging file (one streaming pass, no parsing)."""
    with open_location(staging, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def iter_staging(staging: Location) -> Iterator[StagedRow]:
    """Stream the staging file's rows.

    :raises StagingError: for a line that is not a staging record (names its number).
    """
    with open_location(staging, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield _parse_staged(number, line)


def _parse_staged(number: int, line: bytes) -> StagedRow:
    try:
        raw = json.loads(line.decode("utf-8-sig"))
    except ValueError:
        raise StagingError(f"staging line {number} is not UTF-8 JSON") from None
    if not isinstance(raw, Mapping):
        raise StagingError(f"staging line {number} is not a JSON object")
    row, key, body = raw.get("row"), raw.get("key"), raw.get("body")
    if not isinstance(row, int) or isinstance(row, bool):
        raise StagingError(f"staging line {number}: 'row' must be an integer")
    if not (key is None or isinstance(key, str)) or not isinstance(body, Mapping):
        raise StagingError(
            f"staging line {number} (row {row}): 'key' must be a string or null, 'body' an object"
        )
    # Defensive: the contract says lower-cased already; matching must not depend on it.
    return StagedRow(row, (key.strip().lower() or None) if key else None, dict(body))


def _unique(rows: Iterable[StagedRow]) -> Iterator[StagedRow]:
    """Pass rows through, refusing a row number seen before (results need one line per row)."""
    seen: set[int] = set()
    for staged in rows:
        if staged.row in seen:
            raise StagingError(f"row {staged.row} appears twice in the staging file")
        seen.add(staged.row)
        yield staged


# -- what exists in the account -----------------------------------------------------


@dataclass
class AccountIndex:
    """Customer Ids of the account by lower-cased e-mail, from one paged scan.

    :param ids_by_email: e-mail -> Ids of the customers having it, ascending.
    :param customers: number of customers scanned.
    """

    ids_by_email: dict[str, list[int]] = field(default_factory=dict)
    customers: int = 0

    def find(self, key: str, exclude: Collection[int] = ()) -> int | None:
        """The lowest Id of a customer with e-mail ``key`` that is not in ``exclude``."""
        return next((i for i in self.ids_by_email.get(key, ()) if i not in exclude), None)

    def add(self, customer: Mapping[str, Any]) -> None:
        """Index one customer as ``GET /api/v1/customers`` answers it."""
        self.customers += 1
        customer_id = _as_id(customer.get("Id"))
        if customer_id is None:
            return
        for email in customer_emails(customer):
            ids = self.ids_by_email.setdefault(email, [])
            if customer_id not in ids:
                ids.append(customer_id)
                ids.sort()


def customer_emails(customer: Mapping[str, Any]) -> set[str]:
    """Every e-mail of a customer, lower-cased: ``Email``, e-mail contacts, address e-mails."""
    values: list[Any] = [customer.get("Email")]
    for name in ("DefaultMailAddress", "DefaultCommercialMailAddress", "DefaultStatusUpdatesMailAddress"):
        contact = customer.get(name)
        if isinstance(contact, Mapping):
            values.append(contact.get("Value"))
    for item in _mappings(customer.get("MetaData")):
        if item.get("TypeId") == 1:  # 1 = e-mail (PHP SDK CustomerMetaData.php)
            values.append(item.get("Value"))
    for address in [customer.get("Address"), *_mappings(customer.get("Addresses"))]:
        if isinstance(address, Mapping):
            values.append(address.get("Email"))
    return {v.strip().lower() for v in values if isinstance(v, str) and v.strip()}


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def scan_account(client: BillbeeClient, log: Logger = _log) -> AccountIndex:
    """Read every customer of the account once, at the largest page size."""
    started = time.monotonic()
    index = AccountIndex()
    for customer in client.iter_customers(page_size=MAX_PAGE_SIZE):
        index.add(customer)
    pages = max(1, -(-index.customers // MAX_PAGE_SIZE))
    log.info(
        "account scan: %d customer(s), %d e-mail(s), %d page(s) in %.1f s",
        index.customers,
        len(index.ids_by_email),
        pages,
        time.monotonic() - started,
    )
    return index


# -- deciding per row ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Decision:
    """A row that is not sent: its outcome, and whether the ledger must record it."""

    outcome: RowOutcome
    record: bool


class _Planner:
    """Decides, row by row in file order, what happens to a row that is not sent.

    :param previous: the ledger's last entry per row.
    :param index: the account scan (empty when none was made).
    :param claimed: Billbee Ids already attributed to rows; shared with the run and
        extended here, so that two rows are never resolved to the same customer.
    """

    def __init__(
        self,
        previous: Mapping[int, LedgerEntry],
        index: AccountIndex,
        if_exists: IfExists,
        claimed: set[int],
    ) -> None:
        self.previous = previous
        self.index = index
        self.dedupe = if_exists != "create"
        self.claimed = claimed
        self._seen: set[str] = set()

    def decide(self, staged: StagedRow) -> _Decision | None:
        """The row's outcome without sending it, or ``None``: send it."""
        key, prev = staged.key, self.previous.get(staged.row)
        first = self._first_sighting(key)
        if prev is not None and prev.final:
            return _Decision(RowOutcome.from_entry(prev), record=False)
        if prev is not None and prev.unresolved:
            return self._resolve(staged, prev)
        if key is None or not self.dedupe:
            return None
        if not first:
            return _Decision(RowOutcome(staged.row, key, "duplicate_in_file"), record=True)
        existing = self.index.find(key)
        if existing is not None:
            return _Decision(RowOutcome(staged.row, key, "existing", existing), record=True)
        return None

    def _first_sighting(self, key: str | None) -> bool:
        """Whether no earlier row of the file had ``key`` (always true without a key)."""
        if key is None:
            return True
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _resolve(self, staged: StagedRow, prev: LedgerEntry) -> _Decision | None:
        """A row sent by an earlier run without a known answer: found, reported, or re-sent."""
        if staged.key is None:
            outcome = RowOutcome(staged.row, None, "in_doubt", problems=prev.message)
            return _Decision(outcome, record=prev.event == "sending")
        found = self.index.find(staged.key, self.claimed)
        if found is None:
            return None  # the scan came after the earlier run: the customer provably does not exist
        self.claimed.add(found)
        return _Decision(RowOutcome(staged.row, staged.key, "created", found, problems=_FOUND), record=True)


_FOUND = "found by e-mail after a create without answer"


def _existing_rows(
    staging: Location, previous: Mapping[int, LedgerEntry], index: AccountIndex, claimed: set[int]
) -> list[int]:
    """Rows that ``if_exists="skip"`` would report as existing (a dry pass, nothing recorded)."""
    planner = _Planner(previous, index, "fail", set(claimed))
    rows: list[int] = []
    for staged in iter_staging(staging):
        decision = planner.decide(staged)
        if decision is not None and decision.outcome.status == "existing" and decision.record:
            rows.append(staged.row)
    return rows


# -- sending ------------------------------------------------------------------------


class _Run:
    """State of one import run: outcomes, counters, progress, and the create phases."""

    def __init__(
        self,
        *,
        client: BillbeeClient,
        ledger: Ledger,
        dry_run: bool,
        max_in_flight: int,
        total: int,
        progress_every: float,
        log: Logger,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.dry_run = dry_run
        self.max_in_flight = max_in_flight
        self.total = total
        self.progress_every = progress_every
        self.log = log
        self.clock = clock
        self.outcomes: dict[int, RowOutcome] = {}
        self.claimed: set[int] = set()
        self.sent = 0
        self.create_seconds = 0.0
        self._phase_started: float | None = None
        self._in_flight = 0
        self._next_progress = clock() + progress_every
        self._abort = threading.Event()
        # Same rate and window as the client's own endpoint limit (see module docstring).
        self._pacer = Window(("importer", id(self)), client.config.endpoint_rate_limit, WINDOW_SECONDS)

    # -- main thread ---------------------------------------------------------------

    def create_phase(
        self, rows: Iterable[StagedRow], decide: Callable[[StagedRow], _Decision | None]
    ) -> None:
        """Decide every row; send those to be sent, at most ``max_in_flight`` at a time.

        :raises BillbeeError: an auth/config error (every row would fail): the run stops
            sending, waits for requests in flight (their outcomes reach the ledger), re-raises.
        """
        self._phase_started = self.clock()
        pending: set[Future[RowOutcome | None]] = set()
        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="billbee-create") as pool:
            try:
                for staged in rows:
                    decision = decide(staged)
                    if decision is not None or self.dry_run:
                        self.settle(
                            decision or _Decision(RowOutcome(staged.row, staged.key, "would_create"), False)
                        )
                        self.tick()
                        continue
                    while len(pending) >= self.max_in_flight:
                        pending = self._collect(pending)
                    # Until its answer the row is in doubt; this also fixes its place in
                    # the results, which follow the file's order, not the answers' order.
                    self.outcomes.setdefault(staged.row, RowOutcome(staged.row, staged.key, "in_doubt"))
                    pending.add(pool.submit(self.send, staged))
                    self._in_flight = len(pending)
                while pending:
                    pending = self._collect(pending)
            except BaseException:
                self._abort.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            finally:
                self.create_seconds += self.clock() - self._phase_started
                self._phase_started = None

    def _collect(self, pending: set[Future[RowOutcome | None]]) -> set[Future[RowOutcome | None]]:
        timeout = max(0.05, self._next_progress - self.clock())
        done, rest = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            outcome = future.result()  # re-raises an abort from the worker
            if outcome is not None:
                self.sent += 1
                self.settle(_Decision(outcome, record=False))
        self._in_flight = len(rest)
        self.tick()
        return rest

    def settle(self, decision: _Decision) -> None:
        """Take a row's outcome into the results (and the ledger, if asked and not a dry run)."""
        outcome = decision.outcome
        if decision.record and not self.dry_run:
            _record(self.ledger, outcome)
        self.outcomes[outcome.row] = outcome
        if outcome.billbee_id is not None and outcome.status == "created":
            self.claimed.add(outcome.billbee_id)

    def tick(self) -> None:
        """Log progress if ``progress_every`` seconds have passed since the last line."""
        now = self.clock()
        if now < self._next_progress:
            return
        self._next_progress = now + self.progress_every
        phase = self.create_seconds + (now - self._phase_started if self._phase_started is not None else 0.0)
        rate = self.sent / phase if phase > 0 else 0.0
        done = len(self.outcomes) - self._in_flight
        eta = _hms((self.total - done) / rate) if rate > 0 else "unknown"
        self.log.info(
            "progress: %d/%d rows done, %.2f creates/s, %d 429s seen, ETA %s",
            done,
            self.total,
            rate,
            self.client.stats.throttled,
            eta,
        )

    def retry_failed(self, staging: Location) -> None:
        """Send the rows left ``failed`` once more, after the whole create phase.

        A ``failed`` row met only retryable errors (503, 429, ``ErrorCode`` 8, refused
        connections) that outlasted the client's retries, so Billbee provably did not
        create it and sending it again is safe. Without this round an outage longer
        than one row's retries (about 15 s) left rows ``failed`` in a task that
        succeeded, and nothing sent them again unless someone re-ran it.
        """
        failed = {o.row for o in self.outcomes.values() if o.status == "failed"}
        if not failed or self.dry_run:
            return
        self.log.info("re-sending %d row(s) whose retries ran out during the run", len(failed))
        self.create_phase((s for s in iter_staging(staging) if s.row in failed), lambda staged: None)

    def resolve_in_doubt(self, staging: Location) -> None:
        """Resolve this run's in-doubt rows by fresh scans; re-send those provably absent."""
        for round_number in range(1, RESOLVE_ROUNDS + 1):
            doubtful = {
                o.row: o.key for o in self.outcomes.values() if o.status == "in_doubt" and o.key is not None
            }
            if not doubtful or self.dry_run:
                return
            self.log.info(
                "resolving %d in-doubt row(s) by an account scan (round %d of %d)",
                len(doubtful),
                round_number,
                RESOLVE_ROUNDS,
            )
            index = scan_account(self.client, self.log)
            absent = set()
            for row, key in doubtful.items():
                found = index.find(key, self.claimed)
                if found is None:
                    absent.add(row)
                else:
                    self.settle(_Decision(RowOutcome(row, key, "created", found, problems=_FOUND), True))
            if absent:
                self.log.info("re-sending %d row(s) that the scan shows were not created", len(absent))
                again = (s for s in iter_staging(staging) if s.row in absent)
                self.create_phase(again, lambda staged: None)

    # -- worker threads ------------------------------------------------------------

    def send(self, staged: StagedRow) -> RowOutcome | None:
        """Create one customer; record ``sending`` first and the outcome after.

        :return: the outcome, or ``None`` if the run was aborted before sending.
        """
        self.client.limiter.acquire([self._pacer])
        if self._abort.is_set():
            return None
        self.ledger.record(staged.row, staged.key, "sending")
        try:
            created = self.client.create_customer(staged.body)
        except BillbeeInDoubtError as exc:
            return self._outcome(staged, "in_doubt", problems=str(exc))
        except (BillbeeInvalidDataError, BillbeeApiError) as exc:
            if not _is_rejection(exc):
                return self._outcome(staged, "in_doubt", problems=str(exc))
            return self._outcome(
                staged, "rejected", error_code=exc.error_code, problems=billbee_problems(exc)
            )
        except BillbeeRetryableError as exc:
            return self._outcome(staged, "failed", problems=str(exc))
        except BillbeeError as exc:
            # Auth, config, not found: Billbee answered (or nothing left), nothing was
            # created; every other row would fail the same way, so the run stops.
            self._abort.set()
            self._outcome(staged, "failed", problems=str(exc))
            raise
        return self._outcome(staged, "created", billbee_id=_as_id(created.get("Id")))

    def _outcome(
        self,
        staged: StagedRow,
        status: Status,
        *,
        billbee_id: int | None = None,
        error_code: int | None = None,
        problems: str | None = None,
    ) -> RowOutcome:
        outcome = RowOutcome(staged.row, staged.key, status, billbee_id, error_code, problems)
        _record(self.ledger, outcome)
        _log_outcome(self.log, outcome)
        return outcome


def _record(ledger: Ledger, outcome: RowOutcome) -> None:
    if outcome.status == "would_create":  # a dry run's guess is not an outcome
        return
    ledger.record(
        outcome.row,
        outcome.key,
        outcome.status,
        billbee_id=outcome.billbee_id,
        error_code=outcome.error_code,
        message=outcome.problems,
    )


def _log_outcome(log: Logger, outcome: RowOutcome) -> None:
    """One line per row that needs attention; row numbers and codes only (no data)."""
    row = outcome.row
    if outcome.status == "created":
        log.debug("row %d: created as Billbee Id %s", row, outcome.billbee_id)
    elif outcome.status == "rejected":
        code = "-" if outcome.error_code is None else outcome.error_code
        log.info("row %d: rejected by Billbee (ErrorCode %s); see the rejects file", row, code)
    elif outcome.status == "failed":
        log.warning("row %d: failed after retries; a re-run will send it again", row)
    elif outcome.status == "in_doubt":
        log.warning("row %d: sent, but the answer was lost; in doubt until resolved", row)


def _is_rejection(exc: BillbeeError) -> bool:
    """Billbee refused the body (4xx or an ErrorCode), so nothing was created.

    A 2xx answer that is not an ApiResult says nothing about the create: in doubt.
    """
    if isinstance(exc, BillbeeInvalidDataError) or exc.error_code is not None:
        return True
    return exc.status is None or exc.status >= 300


def billbee_problems(exc: BillbeeError) -> str:
    """Billbee's own message(s) for a refused create, joined by `` | ``."""
    field_errors: Mapping[str, list[str]] = getattr(exc, "field_errors", None) or {}
    if field_errors:
        return " | ".join(f"{name}: {msg}" for name, msgs in sorted(field_errors.items()) for msg in msgs)
    text = str(exc).removeprefix(f"{CREATE_CUSTOMER.key}: ")
    return " | ".join(part.strip(" -") for part in text.splitlines() if part.strip(" -"))


def _as_id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _hms(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# -- output files -------------------------------------------------------------------


@contextmanager
def _replacing(location: Location) -> Iterator[IO[bytes]]:
    """Write a whole file: locally through a temporary file and an atomic rename (a
    reader never sees half a file), to an object store directly (a put is atomic)."""
    path = local_path(location)
    if path is None:
        with open_location(location, "wb") as handle:
            yield handle
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 lets the umask decide, as for any new file (mkstemp would force 0600).
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as handle:
            if path.exists():  # keep the permissions the file had (e.g. the validate stage's)
                os.fchmod(handle.fileno(), path.stat().st_mode & 0o7777)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _csv_text(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(rows)
    return buffer.getvalue()


def write_results(location: Location, outcomes: Iterable[RowOutcome]) -> None:
    """Write the results CSV (UTF-8 with BOM, all fields quoted), one line per row."""
    with _replacing(location) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writer = csv.writer(text, quoting=csv.QUOTE_ALL)
        writer.writerow(RESULTS_COLUMNS)
        for o in outcomes:
            writer.writerow([o.row, o.key or "", "" if o.billbee_id is None else o.billbee_id, o.status])
        text.flush()
        text.detach()  # the caller closes the binary handle


def add_rejections(location: Location, rejected: Iterable[RowOutcome]) -> int:
    """Add Billbee's rejections to the rejects CSV, skipping rows it already has for stage billbee.

    :return: the number of lines added.
    """
    existing = read_bytes(location)
    known = _billbee_rejected_rows(existing)
    new = [o for o in rejected if str(o.row) not in known]
    if not new:
        return 0
    lines = _csv_text([o.row, "", o.key or "", BILLBEE_STAGE, o.problems or ""] for o in new).encode()
    if not existing.strip():
        existing = "\ufeff".encode() + _csv_text([REJECTS_COLUMNS]).encode()
    elif not existing.endswith(b"\n"):
        existing += b"\r\n"
    with _replacing(location) as handle:
        handle.write(existing + lines)
    return len(new)


def _billbee_rejected_rows(content: bytes) -> set[str]:
    """Row numbers (as text) of the rejects file's lines with ``stage == billbee``."""
    reader = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    header = next(reader, None)
    if not header or "row" not in header or "stage" not in header:
        return set()
    row_at, stage_at = header.index("row"), header.index("stage")
    width = max(row_at, stage_at)
    return {line[row_at] for line in reader if len(line) > width and line[stage_at] == BILLBEE_STAGE}


# -- one import per account and machine ---------------------------------------------


def account_lock_path(base_url: str, user: str, lock_dir: str | os.PathLike[str] | None = None) -> Path:
    """The lock file of one Billbee account: named from a hash of (base URL, user), no data in clear."""
    digest = hashlib.sha256(f"{base_url.lower()}\n{user.strip().casefold()}".encode()).hexdigest()
    return (
        Path(lock_dir if lock_dir is not None else tempfile.gettempdir())
        / f"billbee-import-{digest[:32]}.lock"
    )


@contextmanager
def account_lock(path: Path, log: Logger = _log) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; wait (and say so) while another import holds it.

    The kernel releases the lock when the holder's file is closed, also when its process
    is killed, so a crashed import never leaves the account locked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another import of this Billbee account runs on this machine; waiting for it to end")
            waited = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("account lock acquired after %.1f s", time.monotonic() - waited)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the entry point ----------------------------------------------------------------


def import_customers(
    staging: Location,
    *,
    client: BillbeeClient,
    ledger: Ledger,
    results_path: Location,
    rejects_path: Location,
    if_exists: IfExists = "skip",
    dry_run: bool = False,
    max_in_flight: int = 8,
    progress_every: float = 5.0,
    logger: Logger | None = None,
    clock: Callable[[], float] = time.monotonic,
    lock_dir: str | os.PathLike[str] | None = None,
) -> ImportSummary:
    """Create the staged customers in Billbee, exactly once, at the rate limit.

    :param staging: the validate stage's JSONL file of ``{"row", "key", "body"}``.
    :param client: the account's client; its limiter paces all workers.
    :param ledger: this import's ledger (read first; appended to as rows finish).
    :param results_path: where the results CSV is written (replaced as a whole).
    :param rejects_path: the validate stage's rejects CSV, to which Billbee's refusals are added.
    :param if_exists: ``skip``, ``create`` or ``fail`` (see the module docstring).
    :param dry_run: scan and decide, but send nothing and record nothing in the ledger;
        rows that would be sent get status ``would_create``.
    :param max_in_flight: concurrent create requests (about rate x answer time is needed).
    :param progress_every: seconds between progress log lines.
    :param logger: where progress goes (default: this module's logger).
    :param clock: monotonic clock in seconds (injectable for tests).
    :param lock_dir: directory of the per-account lock file (default: the system's temporary
        directory); imports of one account on this machine run one after the other.
    :raises ExistingCustomersError: ``if_exists="fail"`` and some rows exist; nothing sent.
    :raises StagingError: a malformed staging file.
    :raises BillbeeError: auth/config errors and failed scans abort the run.
    """
    if if_exists not in get_args(IfExists):
        raise ValueError(f"if_exists must be one of {get_args(IfExists)}, got {if_exists!r}")
    if max_in_flight < 1 or progress_every <= 0:
        raise ValueError("max_in_flight must be >= 1 and progress_every > 0")
    log: Logger = logger or _log
    started, stats_before = clock(), (client.stats.throttled, client.stats.retries)
    run = _Run(
        client=client,
        ledger=ledger,
        dry_run=dry_run,
        max_in_flight=max_in_flight,
        total=count_rows(staging),
        progress_every=progress_every,
        log=log,
        clock=clock,
    )
    # From before the scan until the last create: a second import of the account waits,
    # then its scan sees what this one created. A dry run sends nothing and does not wait.
    lock_path = account_lock_path(client.config.base_url, client.config.user, lock_dir)
    with nullcontext() if dry_run else account_lock(lock_path, log):
        _scan_and_create(run, staging, if_exists)
    write_results(results_path, run.outcomes.values())
    added = add_rejections(rejects_path, (o for o in run.outcomes.values() if o.status == "rejected"))
    summary = _summary(run, started, stats_before, added, if_exists, staging, results_path, rejects_path)
    _log_summary(log, summary)
    return summary


def _scan_and_create(run: _Run, staging: Location, if_exists: IfExists) -> None:
    """Load the ledger, scan the account, create the rows to be sent, resolve the in-doubt ones."""
    previous = run.ledger.load()
    carried = sum(1 for e in previous.values() if e.final)
    run.log.info(
        "import: %d row(s), %d already done by an earlier run, if_exists=%s, dry_run=%s",
        run.total,
        carried,
        if_exists,
        run.dry_run,
    )
    unresolved = any(e.unresolved and e.key for e in previous.values())
    index = scan_account(run.client, run.log) if if_exists != "create" or unresolved else AccountIndex()
    run.claimed.update(e.billbee_id for e in previous.values() if e.billbee_id is not None)
    if if_exists == "fail":
        existing = _existing_rows(staging, previous, index, run.claimed)
        if existing:
            raise ExistingCustomersError(existing)
    planner = _Planner(previous, index, if_exists, run.claimed)
    run.create_phase(_unique(iter_staging(staging)), planner.decide)
    run.retry_failed(staging)
    run.resolve_in_doubt(staging)


def _summary(
    run: _Run,
    started: float,
    stats_before: tuple[int, int],
    added: int,
    if_exists: str,
    staging: Location,
    results_path: Location,
    rejects_path: Location,
) -> ImportSummary:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for outcome in run.outcomes.values():
        counts[outcome.status] += 1
    return ImportSummary(
        total_rows=len(run.outcomes),
        counts=counts,
        elapsed_seconds=run.clock() - started,
        create_seconds=run.create_seconds,
        rate=run.sent / run.create_seconds if run.create_seconds > 0 else 0.0,
        sent=run.sent,
        throttled=run.client.stats.throttled - stats_before[0],
        retries=run.client.stats.retries - stats_before[1],
        rejects_added=added,
        dry_run=run.dry_run,
        if_exists=if_exists,
        staging_path=describe_location(staging),
        results_path=describe_location(results_path),
        rejects_path=describe_location(rejects_path),
        ledger_path=describe_location(run.ledger.location),
    )


def _log_summary(log: Logger, summary: ImportSummary) -> None:
    counts = ", ".join(f"{status}={n}" for status, n in summary.counts.items() if n)
    log.info(
        "import done: %d row(s) (%s) in %.1f s; create phase %.1f s, %d sent, %.2f creates/s, "
        "%d 429s, %d retries",
        summary.total_rows,
        counts or "none",
        summary.elapsed_seconds,
        summary.create_seconds,
        summary.sent,
        summary.rate,
        summary.throttled,
        summary.retries,
    )
