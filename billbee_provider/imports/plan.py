"""Deciding per row of the create stage: the statuses, and what happens to rows not sent.

:class:`Planner` goes through the staging file in order and decides, for each row,
whether it is sent or what its outcome is without sending: carried over from the ledger
(only an entry of this very row: same number, key and body, see
:mod:`~billbee_provider.imports.ledger`), found in the account (``existing``), an own
e-mail of several customers (``ambiguous``), an earlier row's e-mail
(``duplicate_in_file``), or, for a row an earlier run sent without a known answer, found
by e-mail (``created``) or re-sent. See :mod:`billbee_provider.imports.create` for the rules (``if_exists``,
exactly once).

This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast, get_args

from billbee_provider.imports.account import AccountIndex
from billbee_provider.imports.files import StagedRow, StagingError, iter_staging
from billbee_provider.imports.ledger import LedgerEntry, LedgerState
from billbee_provider.imports.storage import Location

if TYPE_CHECKING:  # row_store imports this module
    from billbee_provider.imports.row_store import RowStore

Status = Literal[
    "created", "existing", "ambiguous", "duplicate_in_file", "rejected", "in_doubt", "failed", "would_create"
]
STATUSES: tuple[Status, ...] = get_args(Status)
IfExists = Literal["skip", "create", "fail"]
#: The ``problems`` of a row resolved to a customer found by its e-mail.
FOUND = "found by e-mail after a create without answer"
_MAX_ROWS_IN_MESSAGE = 20


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
class RowOutcome:
    """The final status of one row, as the results file reports it.

    :param problems: Billbee's message(s) for ``rejected``; the error for others.
    :param digest: the row's digest, recorded with the outcome in the ledger.
    """

    row: int
    key: str | None
    status: Status
    billbee_id: int | None = None
    error_code: int | None = None
    problems: str | None = None
    digest: str | None = None

    @classmethod
    def from_entry(cls, entry: LedgerEntry, staged: StagedRow) -> RowOutcome:
        """The outcome a final ledger entry stands for, for the staged row it matched."""
        status: Status = cast(Status, entry.event) if entry.final else "in_doubt"
        return cls(
            staged.row, staged.key, status, entry.billbee_id, entry.error_code, entry.message, staged.digest
        )


def unique_rows(rows: Iterable[StagedRow], placed: Container[int]) -> Iterator[StagedRow]:
    """Pass rows through, refusing a row number seen before (results need one line per row).

    :param rows: the staging file's rows.
    :param placed: the rows already taken; the consumer must place each row before it asks
        for the next (the create phase does: every row gets its outcome or a place holder).
    :return: the same rows.
    :raises StagingError: for a row number that appears twice.
    """
    for staged in rows:
        if staged.row in placed:
            raise StagingError(f"row {staged.row} appears twice in the staging file")
        yield staged


@dataclass(frozen=True, slots=True)
class Decision:
    """A row that is not sent: its outcome, and whether the ledger must record it."""

    outcome: RowOutcome
    record: bool


class Planner:
    """Decides, row by row in file order, what happens to a row that is not sent.

    :param previous: the loaded ledger; only the entry that :meth:`LedgerState.match`
        gives for a row applies to it.
    :param index: the account scan (empty when none was made).
    :param store: the run's per-row state: its claimed Ids (Billbee Ids already
        attributed to rows, extended here, so that two rows are never resolved to the same
        customer) and the keys seen (for duplicates in the file).
    """

    def __init__(
        self,
        previous: LedgerState,
        index: AccountIndex,
        if_exists: IfExists,
        store: RowStore,
    ) -> None:
        self.previous = previous
        self.index = index
        self.dedupe = if_exists != "create"
        self.claimed = store.claimed
        self._store = store
        #: Rows whose ledger entry was carried over (final) or resolved (unresolved).
        self.matched = 0
        #: Rows with ledger entries of other content only (another input): treated as new.
        self.superseded = 0

    def decide(self, staged: StagedRow) -> Decision | None:
        """The row's outcome without sending it, or ``None``: send it."""
        key, prev = staged.key, self.previous.match(staged.row, staged.key, staged.digest)
        first = self._first_sighting(key)
        if prev is None and staged.row in self.previous:
            self.superseded += 1
        if prev is not None and prev.final:
            self.matched += 1
            return Decision(RowOutcome.from_entry(prev, staged), record=False)
        if prev is not None and prev.unresolved:
            self.matched += 1
            return self._resolve(staged, prev)
        if key is None or not self.dedupe:
            return None
        if not first:
            return Decision(
                RowOutcome(staged.row, key, "duplicate_in_file", digest=staged.digest), record=True
            )
        existing = self.index.existing(key)
        if len(existing) > 1:
            # Never linked to one of them at random, never sent; decided again by every run
            # (not recorded), so that merging the customers in Billbee settles it.
            problems = f"{len(existing)} Billbee customers have this e-mail"
            return Decision(RowOutcome(staged.row, key, "ambiguous", problems=problems), record=False)
        if existing:
            outcome = RowOutcome(staged.row, key, "existing", existing[0], digest=staged.digest)
            return Decision(outcome, record=True)
        return None

    def _first_sighting(self, key: str | None) -> bool:
        """Whether no earlier row of the file had ``key`` (always true without a key)."""
        return key is None or self._store.first_sighting(key)

    def _resolve(self, staged: StagedRow, prev: LedgerEntry) -> Decision | None:
        """A row sent by an earlier run without a known answer: found, reported, or re-sent."""
        if staged.key is None:
            outcome = RowOutcome(staged.row, None, "in_doubt", problems=prev.message, digest=staged.digest)
            return Decision(outcome, record=prev.event == "sending")
        found = self.index.find(staged.key, self.claimed, own=staged.key_is_email)
        if found is None:
            return None  # the scan came after the earlier run: the customer provably does not exist
        self.claimed.add(found)
        outcome = RowOutcome(staged.row, staged.key, "created", found, problems=FOUND, digest=staged.digest)
        return Decision(outcome, record=True)


def existing_rows(
    staging: Location, previous: LedgerState, index: AccountIndex, claimed: Iterable[int]
) -> list[int]:
    """Rows that ``if_exists="skip"`` would report as existing or ambiguous (a dry pass, nothing recorded).

    :param claimed: the Ids already attributed to rows (copied: the dry pass claims more).
    """
    from billbee_provider.imports.row_store import RowStore  # here: row_store imports this module

    rows: list[int] = []
    with RowStore() as scratch:
        scratch.claimed.update(claimed)
        planner = Planner(previous, index, "fail", scratch)
        for staged in iter_staging(staging):
            decision = planner.decide(staged)
            if decision is None:
                continue
            status = decision.outcome.status
            if (status == "existing" and decision.record) or status == "ambiguous":
                rows.append(staged.row)
    return rows
