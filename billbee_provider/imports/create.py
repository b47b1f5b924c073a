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
    indexes the customers' lower-cased e-mails before anything is sent; a row exists when
    its e-mail is one of a customer's own e-mails (``Email`` and the
    ``Default*MailAddress`` values, not address e-mails: see
    :mod:`~billbee_provider.imports.account`).

``if_exists``
    ``skip`` (default): a row whose key is the own e-mail of one customer is ``existing``
    (with that customer's Id), of several customers ``ambiguous`` (no Id: it is not
    linked to one of them at random, and not recorded in the ledger, so every run
    decides again); a later row with the key of an earlier row of the file is
    ``duplicate_in_file``; none of them is sent. ``fail``: if any row's key is in the
    account, :class:`ExistingCustomersError` names the rows (never the e-mails) before
    anything is sent; in-file duplicates are skipped as for ``skip``. ``create``: no
    check, every row is sent.

Exactly once
    A worker writes ``sending`` to the ledger immediately before its request leaves and
    the outcome after the answer. A ledger entry applies only to the row it was recorded
    for: the same row number with the same key and body (its digest, see
    :mod:`~billbee_provider.imports.ledger`); a run of another file in the same output
    folder treats rows that differ as new. On start, rows whose final outcome is in the
    ledger (created, existing, duplicate_in_file, rejected) are carried over, not sent.
    Rows whose last event is ``sending`` or ``in_doubt`` were sent without a known answer:
    the scan (made after loading the ledger, so it sees what the killed run created)
    decides; a customer with the row's e-mail, not already claimed by another row of
    the ledger, means it was created; none means it provably was not, and the row is
    sent again. A row without an e-mail cannot be looked up: it is reported
    ``in_doubt`` and never sent again. Creates that lose their answer during the run
    (:class:`~billbee_provider.api.errors.BillbeeInDoubtError`) are resolved the same way
    by one more scan at the end (up to :data:`RESOLVE_ROUNDS` rounds), which passes over
    customers that existed at the first scan. ``failed`` rows
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
    flight (rate x answer time). Creates run in a thread pool of ``max_in_flight`` workers
    sharing the one client, whose rate limiter paces the starts; by default as many as
    keep the connection's ``endpoint_rate_limit`` with answers of up to 4 s
    (:func:`~billbee_provider.imports.send.default_in_flight`: 8 at 2/s, at most 64).
    Each worker first waits for a slot of the same rate (a window of the client's limiter
    under the importer's own key), so that ``sending`` is written just before the request
    leaves and not seconds before, while the worker queues for the limit: a kill then
    leaves few rows in doubt (about rate x answer time, whatever ``max_in_flight`` is).
    The staging file is streamed: only ``max_in_flight`` rows are pending at any time, and
    the run's per-row state is on disk (:mod:`~billbee_provider.imports.row_store`).

Progress
    Every ``progress_every`` seconds a progress line goes to the log and, with a
    ``progress_path``, the same numbers to ``progress.json`` (one small replace per tick;
    see :mod:`~billbee_provider.imports.progress`), which ends as ``done`` or ``failed``.

Personal data
    Log lines and exception texts name row numbers, counts and Billbee Ids, never
    e-mails, names or Billbee's messages (which may quote the data). Those go only into
    the ledger, results and rejects files, which hold the data anyway.

Modules
    The stage is split by concern, each module under ~400 lines (the issue's layout has
    planner and sending in this module; together they were 600 lines, so they are in
    :mod:`~billbee_provider.imports.plan` (statuses, deciding per row) and
    :mod:`~billbee_provider.imports.send` (the create phases and workers)); the account
    scan and lock are :mod:`~billbee_provider.imports.account`, the files
    :mod:`~billbee_provider.imports.files`, the run's per-row state (on disk, so that a
    million-row file does not hold a million outcomes in memory)
    :mod:`~billbee_provider.imports.row_store`. This module is the entry point and the summary.

This module does not import Airflow.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, get_args

from billbee_provider.api.client import BillbeeClient, Logger
from billbee_provider.imports.account import (
    AccountIndex,
    account_lock,
    account_lock_path,
    scan_account,
)
from billbee_provider.imports.files import (
    BILLBEE_STAGE,
    Reject,
    add_rejects,
    inspect_staging,
    iter_staging,
    write_results,
)
from billbee_provider.imports.ledger import Ledger
from billbee_provider.imports.plan import (
    STATUSES,
    ExistingCustomersError,
    IfExists,
    Planner,
    existing_rows,
    unique_rows,
)
from billbee_provider.imports.progress import DONE, FAILED, RUNNING, Progress, ProgressFile
from billbee_provider.imports.send import Run, default_in_flight
from billbee_provider.imports.storage import Location, describe_location

_log = logging.getLogger(__name__)


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
    max_in_flight: int | None = None,
    progress_every: float = 5.0,
    logger: Logger | None = None,
    clock: Callable[[], float] = time.monotonic,
    lock_dir: str | os.PathLike[str] | None = None,
    progress_path: Location | None = None,
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
    :param max_in_flight: concurrent create requests (about rate x answer time is needed);
        default :func:`~billbee_provider.imports.send.default_in_flight` of the client's
        ``endpoint_rate_limit`` (8 at Billbee's 2/s).
    :param progress_every: seconds between progress log lines.
    :param logger: where progress goes (default: this module's logger).
    :param clock: monotonic clock in seconds (injectable for tests).
    :param lock_dir: directory of the per-account lock file (default: the system's temporary
        directory); imports of one account on this machine run one after the other.
    :param progress_path: where to keep ``progress.json`` (see
        :mod:`~billbee_provider.imports.progress`): written at the start, every
        ``progress_every`` seconds, and at the end as ``done``, or ``failed`` when an
        exception ends the run. A write that fails is logged and does not stop the import.
    :raises ExistingCustomersError: ``if_exists="fail"`` and some rows exist; nothing sent.
    :raises StagingError: a malformed staging file.
    :raises BillbeeError: auth/config errors and failed scans abort the run.
    """
    log: Logger = logger or _log
    started, stats_before = clock(), (client.stats.throttled, client.stats.retries)
    progress = ProgressFile(progress_path, log) if progress_path is not None else None
    run: Run | None = None
    try:
        if max_in_flight is None:
            max_in_flight = default_in_flight(client.config.endpoint_rate_limit)
        _check_options(if_exists, max_in_flight, progress_every)
        info = inspect_staging(staging)
        run = Run(
            client=client,
            ledger=ledger,
            dry_run=dry_run,
            max_in_flight=max_in_flight,
            total=info.rows,
            input_id=info.identity,
            progress_every=progress_every,
            log=log,
            clock=clock,
            progress_file=progress,
        )
        run.write_progress(run.progress(RUNNING))
        # From before the scan until the last create: a second import of the account waits,
        # then its scan sees what this one created. A dry run sends nothing and does not wait.
        lock_path = account_lock_path(client.config.base_url, client.config.user, lock_dir)
        with nullcontext() if dry_run else account_lock(lock_path, log):
            _scan_and_create(run, staging, if_exists)
        write_results(results_path, run.store.outcomes())
        refused = (Reject(o.row, o.key, [o.problems or ""]) for o in run.store.outcomes("rejected"))
        added = add_rejects(rejects_path, BILLBEE_STAGE, refused)
        summary = _summary(run, started, stats_before, added, if_exists, staging, results_path, rejects_path)
        run.write_progress(run.progress(DONE))
    except BaseException:
        if progress is not None:
            # Before the run existed (bad options, no staging file): nothing was done.
            progress.write(
                run.progress(FAILED) if run is not None else Progress(FAILED, 0, 0, 0, 0.0, 0, None)
            )
        raise
    finally:
        if run is not None:
            run.close()
    _log_summary(log, summary)
    return summary


def _check_options(if_exists: str, max_in_flight: int, progress_every: float) -> None:
    if if_exists not in get_args(IfExists):
        raise ValueError(f"if_exists must be one of {get_args(IfExists)}, got {if_exists!r}")
    if max_in_flight < 1 or progress_every <= 0:
        raise ValueError("max_in_flight must be >= 1 and progress_every > 0")


def _scan_and_create(run: Run, staging: Location, if_exists: IfExists) -> None:
    """Load the ledger, scan the account, create the rows to be sent, resolve the in-doubt ones."""
    with run.ledger.load() as previous:
        other_inputs = previous.inputs - {run.input_id}
        run.log.info(
            "import: %d row(s), ledger entries of %d row(s) (%d other input(s)), if_exists=%s, "
            "dry_run=%s, max_in_flight=%d",
            run.total,
            previous.entry_count(),
            len(other_inputs),
            if_exists,
            run.dry_run,
            run.max_in_flight,
        )
        # Unresolved entries of any input: a send of another file may have created a customer
        # that this run must not take for one of its own (see send.Run.preexisting).
        unresolved = previous.has_unresolved()
        index = scan_account(run.client, run.log) if if_exists != "create" or unresolved else AccountIndex()
        run.preexisting = index.ids()
        # Every Id the ledger gave a row, of any input: never the answer for another row.
        run.claimed.update(previous.billbee_ids())
        if if_exists == "fail":
            existing = existing_rows(staging, previous, index, run.claimed)
            if existing:
                raise ExistingCustomersError(existing)
        planner = Planner(previous, index, if_exists, run.store)
        run.create_phase(unique_rows(iter_staging(staging), run.store), planner.decide)
    run.log.info(
        "ledger: %d row(s) taken from an earlier run of the same rows; %d row(s) whose entries "
        "were for other content at the same row number (another input) treated as new",
        planner.matched,
        planner.superseded,
    )
    run.retry_failed(staging)
    run.resolve_in_doubt(staging)


def _summary(
    run: Run,
    started: float,
    stats_before: tuple[int, int],
    added: int,
    if_exists: str,
    staging: Location,
    results_path: Location,
    rejects_path: Location,
) -> ImportSummary:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update(run.store.status_counts())
    return ImportSummary(
        total_rows=len(run.store),
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
