"""Sending of the create stage: the rows to be sent, to Billbee, at the rate limit.

:class:`Run` holds one import run's state (outcomes, counters, progress) and runs its
create phases: a thread pool of ``max_in_flight`` workers shares the one client, whose
rate limiter paces the starts. Each worker first waits for a slot of the same rate (a
window of the client's limiter under the run's own key), writes ``sending`` to the
ledger just before its request leaves, and the outcome right after the answer. Every
record carries the row's digest and the input's identity (see
:mod:`~billbee_provider.imports.ledger`). See :mod:`billbee_provider.imports.create` for
the whole picture.

Resolving this run's in-doubt rows
    :meth:`Run.resolve_in_doubt` scans the account again and takes, for each row, the
    lowest Id with its e-mail that is neither claimed by another row (of any input the
    ledger knows) nor in :attr:`Run.preexisting`, the Ids of the scan made before this
    run sent anything: a customer that existed before our request cannot be the one it
    created. So a row is never resolved to an earlier row's customer, nor to another
    customer who merely shares the e-mail, also when an earlier input's row at the same
    position was left in doubt.

This module does not import Airflow.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from billbee_provider.api.client import (
    CREATE_CUSTOMER,
    MAX_CONNECTIONS,
    WINDOW_SECONDS,
    BillbeeClient,
    Logger,
)
from billbee_provider.api.envelope import json_int
from billbee_provider.api.errors import (
    BillbeeApiError,
    BillbeeError,
    BillbeeInDoubtError,
    BillbeeInvalidDataError,
    BillbeeRetryableError,
)
from billbee_provider.api.throttle import Window
from billbee_provider.imports.account import scan_account
from billbee_provider.imports.files import PROBLEM_SEPARATOR, StagedRow, iter_staging
from billbee_provider.imports.ledger import Ledger
from billbee_provider.imports.plan import FOUND, STATUSES, Decision, RowOutcome, Status
from billbee_provider.imports.progress import RUNNING, Progress, ProgressFile, ProgressState
from billbee_provider.imports.row_store import RowStore
from billbee_provider.imports.storage import Location

#: End-of-run scans to resolve in-doubt rows (each may re-send the rows it finds absent).
RESOLVE_ROUNDS = 3
#: The longest answer time, in seconds, at which the default number of requests in flight
#: still keeps the import at the rate limit: requests in flight = rate x answer time.
ANSWER_BUDGET_SECONDS = 4.0
#: The default's bounds: 8 covers Billbee's 2/s up to 4 s answers; the top is what the
#: client's connection pool keeps (64), which also bounds the threads.
MIN_IN_FLIGHT, MAX_IN_FLIGHT = 8, MAX_CONNECTIONS


def default_in_flight(rate_limit: float) -> int:
    """Requests in flight that keep ``rate_limit`` creates/s with answers of up to 4 s.

    More in flight than the rate needs costs nothing on Billbee's side: the workers' starts
    are paced, so only about rate x answer time are ever sent and unanswered at once.

    :param rate_limit: the connection's ``endpoint_rate_limit`` (creates per second).
    :return: ``ceil(rate_limit x 4 s)``, at least 8 and at most 64 (8 at Billbee's 2/s).
    """
    return min(MAX_IN_FLIGHT, max(MIN_IN_FLIGHT, math.ceil(rate_limit * ANSWER_BUDGET_SECONDS)))


class Run:
    """State of one import run: outcomes, counters, progress, and the create phases.

    The per-row state (outcomes, keys seen, claimed Ids) is in :attr:`store`, on disk:
    :meth:`close` drops it.
    """

    def __init__(
        self,
        *,
        client: BillbeeClient,
        ledger: Ledger,
        dry_run: bool,
        max_in_flight: int,
        total: int,
        input_id: str | None,
        progress_every: float,
        log: Logger,
        clock: Callable[[], float],
        progress_file: ProgressFile | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.dry_run = dry_run
        self.max_in_flight = max_in_flight
        self.total = total
        #: The staging file's identity, recorded with every ledger record.
        self.input_id = input_id
        self.progress_every = progress_every
        self.log = log
        self.clock = clock
        #: Where each tick's progress is written as well (``progress.json``), if anywhere.
        self.progress_file = progress_file
        #: Every row's outcome in file order, keys seen and claimed Ids (on disk, see
        #: :mod:`~billbee_provider.imports.row_store`): memory stays flat in the rows.
        self.store = RowStore()
        #: Rows per status of the settled outcomes (kept as they change: a tick is O(1)).
        self.counts: Counter[str] = Counter()
        # Rows sent and not yet answered: their "in_doubt" place holder is no outcome yet.
        self._unanswered: set[int] = set()
        self._throttled_before = client.stats.throttled
        #: Billbee Ids given to rows (of this run, or of any input in the ledger).
        self.claimed = self.store.claimed
        #: Ids of the account scan made before anything was sent (empty without one).
        self.preexisting: set[int] = set()
        self.sent = 0
        self.create_seconds = 0.0
        self._phase_started: float | None = None
        self._next_progress = clock() + progress_every
        self._abort = threading.Event()
        # Same rate and window as the client's own endpoint limit (see module docstring).
        self._pacer = Window(("importer", id(self)), client.config.endpoint_rate_limit, WINDOW_SECONDS)

    def close(self) -> None:
        """Drop the per-row state (:attr:`store`). Idempotent."""
        self.store.close()

    # -- main thread ---------------------------------------------------------------

    def create_phase(self, rows: Iterable[StagedRow], decide: Callable[[StagedRow], Decision | None]) -> None:
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
                        self.settle(decision or Decision(_would_create(staged), False))
                        self.tick()
                        continue
                    while len(pending) >= self.max_in_flight:
                        pending = self._collect(pending)
                    # Until its answer the row is in doubt; this also fixes its place in
                    # the results, which follow the file's order, not the answers' order.
                    if staged.row not in self.store:
                        self.store.put(RowOutcome(staged.row, staged.key, "in_doubt"))
                        self._unanswered.add(staged.row)
                    pending.add(pool.submit(self.send, staged))
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
                self.settle(Decision(outcome, record=False))
        self.tick()
        return rest

    def settle(self, decision: Decision) -> None:
        """Take a row's outcome into the results (and the ledger, if asked and not a dry run)."""
        outcome = decision.outcome
        if decision.record and not self.dry_run:
            _record(self.ledger, outcome, self.input_id)
        before = self.store.put(outcome)
        if before is not None and outcome.row not in self._unanswered:
            self.counts[before] -= 1
        self._unanswered.discard(outcome.row)
        self.counts[outcome.status] += 1
        if outcome.status == "ambiguous":
            _log_outcome(self.log, outcome)
        if outcome.billbee_id is not None and outcome.status == "created":
            self.claimed.add(outcome.billbee_id)

    def tick(self) -> None:
        """Log progress, and write it to :attr:`progress_file`, every ``progress_every`` seconds."""
        now = self.clock()
        if now < self._next_progress:
            return
        self._next_progress = now + self.progress_every
        progress = self.progress(RUNNING, now)
        self.log.info(
            "progress: %d/%d rows done, %.2f creates/s, %d 429s seen, ETA %s",
            progress.rows_done,
            progress.rows_total,
            progress.creates_per_s,
            progress.throttled_429,
            "unknown" if progress.eta_s is None else _hms(progress.eta_s),
        )
        self.write_progress(progress)

    def progress(self, state: ProgressState, now: float | None = None) -> Progress:
        """The run's progress: counts, rate and ETA (O(1) in the number of rows).

        :param state: the run's state.
        :param now: the clock's time, if read already.
        :return: the moment.
        """
        now = self.clock() if now is None else now
        phase = self.create_seconds + (now - self._phase_started if self._phase_started is not None else 0.0)
        rate = self.sent / phase if phase > 0 else 0.0
        done = len(self.store) - len(self._unanswered)
        left = max(self.total - done, 0)
        eta = 0.0 if not left else left / rate if rate > 0 else None
        counts: dict[str, int] = {status: self.counts[status] for status in STATUSES}
        return Progress(
            state=state,
            rows_total=self.total,
            rows_done=done,
            created=counts["created"],
            creates_per_s=rate,
            throttled_429=self.client.stats.throttled - self._throttled_before,
            eta_s=eta,
            counts=counts,
        )

    def write_progress(self, progress: Progress) -> None:
        """Write ``progress`` to :attr:`progress_file`, if there is one (never raises).

        :param progress: the moment to write.
        """
        if self.progress_file is not None:
            self.progress_file.write(progress)

    def retry_failed(self, staging: Location) -> None:
        """Send the rows left ``failed`` once more, after the whole create phase.

        A ``failed`` row met only retryable errors (503, 429, ``ErrorCode`` 8, refused
        connections) that outlasted the client's retries, so Billbee provably did not
        create it and sending it again is safe. Without this round an outage longer
        than one row's retries (about 15 s) left rows ``failed`` in a task that
        succeeded, and nothing sent them again unless someone re-ran it.
        """
        failed = self.store.count("failed")
        if not failed or self.dry_run:
            return
        self.log.info("re-sending %d row(s) whose retries ran out during the run", failed)
        # Read lazily: a row's status changes only when it is sent, after it was read here.
        again = (s for s in iter_staging(staging) if self.store.status_of(s.row) == "failed")
        self.create_phase(again, lambda staged: None)

    def resolve_in_doubt(self, staging: Location) -> None:
        """Resolve this run's in-doubt rows by fresh scans; re-send those provably absent."""
        for round_number in range(1, RESOLVE_ROUNDS + 1):
            doubtful = self.store.count("in_doubt", keyed=True)
            if not doubtful or self.dry_run:
                return
            self.log.info(
                "resolving %d in-doubt row(s) by an account scan (round %d of %d)",
                doubtful,
                round_number,
                RESOLVE_ROUNDS,
            )
            index = scan_account(self.client, self.log)
            taken = _AnyOf(self.claimed, self.preexisting)
            absent = 0
            for staged in self._doubtful(staging):
                assert staged.key is not None  # doubtful rows have a key
                found = index.find(staged.key, taken, own=staged.key_is_email)
                if found is None:
                    absent += 1
                else:
                    outcome = RowOutcome(
                        staged.row, staged.key, "created", found, problems=FOUND, digest=staged.digest
                    )
                    self.settle(Decision(outcome, True))
            if absent:
                # The rows still in doubt now are exactly those the scan did not find.
                self.log.info("re-sending %d row(s) that the scan shows were not created", absent)
                self.create_phase(self._doubtful(staging), lambda staged: None)

    def _doubtful(self, staging: Location) -> Iterable[StagedRow]:
        """The staged rows whose outcome is ``in_doubt`` and that have a key, read lazily."""
        rows = iter_staging(staging)
        return (s for s in rows if s.key is not None and self.store.status_of(s.row) == "in_doubt")

    # -- worker threads ------------------------------------------------------------

    def send(self, staged: StagedRow) -> RowOutcome | None:
        """Create one customer; record ``sending`` first and the outcome after.

        :return: the outcome, or ``None`` if the run was aborted before sending.
        """
        self.client.limiter.acquire([self._pacer])
        if self._abort.is_set():
            return None
        self.ledger.record(staged.row, staged.key, "sending", digest=staged.digest, input_id=self.input_id)
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
        return self._outcome(staged, "created", billbee_id=json_int(created.get("Id")))

    def _outcome(
        self,
        staged: StagedRow,
        status: Status,
        *,
        billbee_id: int | None = None,
        error_code: int | None = None,
        problems: str | None = None,
    ) -> RowOutcome:
        outcome = RowOutcome(staged.row, staged.key, status, billbee_id, error_code, problems, staged.digest)
        _record(self.ledger, outcome, self.input_id)
        _log_outcome(self.log, outcome)
        return outcome


class _AnyOf:
    """``in`` any of several containers (a union without copying them)."""

    def __init__(self, *containers: Container[int]) -> None:
        self._containers = containers

    def __contains__(self, item: object) -> bool:
        return any(item in container for container in self._containers)


def _would_create(staged: StagedRow) -> RowOutcome:
    return RowOutcome(staged.row, staged.key, "would_create", digest=staged.digest)


def _record(ledger: Ledger, outcome: RowOutcome, input_id: str | None) -> None:
    # A dry run's guess, or the account's state (decided again by every run): not outcomes.
    if outcome.status == "would_create" or outcome.status == "ambiguous":  # two ==: mypy narrows
        return
    ledger.record(
        outcome.row,
        outcome.key,
        outcome.status,
        billbee_id=outcome.billbee_id,
        error_code=outcome.error_code,
        message=outcome.problems,
        digest=outcome.digest,
        input_id=input_id,
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
    elif outcome.status == "ambiguous":
        log.warning("row %d: %s; not sent, not linked (see the results file)", row, outcome.problems)


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
        return PROBLEM_SEPARATOR.join(
            f"{name}: {msg}" for name, msgs in sorted(field_errors.items()) for msg in msgs
        )
    text = str(exc).removeprefix(f"{CREATE_CUSTOMER.key}: ")
    return PROBLEM_SEPARATOR.join(part.strip(" -") for part in text.splitlines() if part.strip(" -"))


def _hms(seconds: float) -> str:
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
