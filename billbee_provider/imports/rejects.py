"""Reading ``rejects.csv`` a page at a time, one entry per problem, for display.

The rejects file (written by :class:`~billbee_provider.imports.files.RejectsWriter`) has
one line per rejected row, its problems joined by
:data:`~billbee_provider.imports.files.PROBLEM_SEPARATOR`. :func:`read_rejects_page`
turns each problem into a :class:`RejectEntry` (row, line, stage, field, reason) and
returns one page of them with the number of entries in the whole file. The file is
streamed: a page of a file of a million lines costs one pass over it, not its size in
memory. The ``key`` column is never read into an entry: it may be a customer's e-mail.

How a problem splits into field and reason
    Both stages write ``<path>: <reason>``, but not every problem has a path:

    ``validate``
        ``<dotted path>: <reason>`` from the schema, the column mapping and the template
        (``<body>`` is the schema's name for the whole body). A problem of the source row
        itself reads ``line <n>: <reason>``: that is no field, so its field is ``""`` and
        the reason is the whole text. The reason may contain ``": "`` itself (an e-mail's
        hints); only the first one splits.
    ``billbee``
        Billbee's field errors are ``<ModelState key>: <message>`` (e.g. ``model.Type``,
        keys have no spaces); its other refusals are messages such as
        ``Billbee ErrorCode 11 InvalidData: Type: 7 is not ...`` or ``HTTP 400: ...``,
        whose text before the first ``": "`` has a space: field ``""``, reason the whole
        text.

    A problem without ``": "`` has field ``""``. A row whose problems cell is empty
    still gives one entry (field and reason ``""``), so that no rejected row is hidden.
    The separator is not escaped by the writer: in the ``validate`` stage, where every
    problem has ``": "``, a piece without one is taken as the rest of the problem before
    it (a value shown in a reason that contained ``" | "``).

This module does not import Airflow.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from billbee_provider.api.envelope import json_int
from billbee_provider.imports.files import (
    BILLBEE_STAGE,
    CSV_ENCODING,
    PROBLEM_SEPARATOR,
    REJECT_LINE,
    REJECT_PROBLEMS,
    REJECT_ROW,
    REJECT_STAGE,
    restore_cell,
)
from billbee_provider.imports.storage import Location, open_read

#: The default and the largest number of entries of one page.
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
#: The reason of an entry for a line the CSV reader cannot read (a cell over its limit).
UNREADABLE_LINE: Final = "this line of the rejects file is too long to show here; open the file itself"
# A problem of the source row itself (extract_csv: "line 7: row has 9 cells, ...").
_SOURCE_LINE: Final = re.compile(r"line [0-9]+")
# Whitespace: Billbee's ModelState keys have none, its messages' heads do.
_SPACE: Final = re.compile(r"\s")
_SPLIT: Final = ": "


@dataclass(frozen=True, slots=True)
class RejectEntry:
    """One problem of one rejected row.

    :param row: the source row number (``None`` if the file has none for it).
    :param line: the physical line of the source the row starts on, if known.
    :param stage: the stage that rejected the row: ``validate`` or ``billbee``.
    :param field: the field's path (``Address.Zip``, Billbee's ``model.Type``), or ``""``.
    :param reason: what is wrong with it.
    """

    row: int | None
    line: int | None
    stage: str
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain JSON values."""
        return {
            "row": self.row,
            "line": self.line,
            "stage": self.stage,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class RejectsPage:
    """One page of a rejects file's entries.

    :param rows: the page's entries, in the file's order.
    :param total: the entries (problems, not rejected rows) of the whole file.
    """

    rows: list[RejectEntry] = field(default_factory=list)
    total: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The page as plain JSON values: ``{"rows": [...], "total": n}``."""
        return {"rows": [entry.as_dict() for entry in self.rows], "total": self.total}


def read_rejects_page(location: Location, offset: int = 0, limit: int = DEFAULT_PAGE_SIZE) -> RejectsPage:
    """Entries ``offset`` to ``offset + limit`` of a rejects file, and how many it has.

    :param location: the rejects file (a local path, URL or ``ObjectStoragePath``).
    :param offset: entries to skip (``0``: from the first).
    :param limit: most entries to return, at most :data:`MAX_PAGE_SIZE`.
    :return: the page; empty, with ``total`` 0, when the file does not exist or is empty.
    :raises ValueError: for a negative ``offset``, a ``limit`` out of range, or a file
        without the rejects columns.
    :raises OSError: when the file exists but cannot be read.
    """
    if offset < 0 or not 0 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"offset must be >= 0 and limit in 0..{MAX_PAGE_SIZE}, got {offset} and {limit}")
    page: list[RejectEntry] = []
    total = 0
    try:
        for entry in iter_reject_entries(location):
            if offset <= total < offset + limit:
                page.append(entry)
            total += 1
    except FileNotFoundError:
        return RejectsPage()
    return RejectsPage(page, total)


def iter_reject_entries(location: Location) -> Iterator[RejectEntry]:
    """Stream a rejects file's entries, one per problem, in the file's order.

    :param location: the rejects file.
    :return: a generator of :class:`RejectEntry`.
    :raises FileNotFoundError: when the file does not exist.
    :raises ValueError: when its header lacks the rejects columns.
    """
    with open_read(location) as binary:
        text = io.TextIOWrapper(binary, encoding=CSV_ENCODING, errors="replace", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        columns = _columns(header)
        width = max(columns)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:  # a cell over csv.field_size_limit(); the reader goes on after it
                yield RejectEntry(None, None, "", "", UNREADABLE_LINE)
                continue
            if not any(cells):
                continue
            cells += [""] * (width + 1 - len(cells))
            row, line, stage, problems = (cells[at] for at in columns)
            for path, reason in split_problems(stage, restore_cell(problems)):
                yield RejectEntry(json_int(row), json_int(line), stage, path, reason)


def _columns(header: list[str]) -> tuple[int, int, int, int]:
    names = (REJECT_ROW, REJECT_LINE, REJECT_STAGE, REJECT_PROBLEMS)
    missing = [name for name in names if name not in header]
    if missing:
        raise ValueError(f"not a rejects file: the header has no column {', '.join(missing)}")
    row, line, stage, problems = (header.index(name) for name in names)
    return row, line, stage, problems


def split_problems(stage: str, problems: str) -> list[tuple[str, str]]:
    """A rejects line's problems cell as ``(field, reason)`` pairs (see the module docstring).

    :param stage: the line's stage, ``validate`` or ``billbee``.
    :param problems: the cell, problems joined by :data:`PROBLEM_SEPARATOR`.
    :return: one pair per problem; one ``("", "")`` for an empty cell.
    """
    pieces: list[str] = []
    for piece in problems.split(PROBLEM_SEPARATOR):
        if pieces and stage != BILLBEE_STAGE and _SPLIT not in piece:
            pieces[-1] += PROBLEM_SEPARATOR + piece
        else:
            pieces.append(piece)
    return [split_problem(stage, piece) for piece in pieces]


def split_problem(stage: str, problem: str) -> tuple[str, str]:
    """One problem as ``(field, reason)``; field ``""`` when the problem names none.

    :param stage: the stage that wrote it, ``validate`` or ``billbee``.
    :param problem: one ``<path>: <reason>``, or a message without a path.
    :return: the field's path (or ``""``) and the reason.
    """
    head, sep, rest = problem.partition(_SPLIT)
    not_a_path = _SPACE.search(head) if stage == BILLBEE_STAGE else _SOURCE_LINE.fullmatch(head)
    if not sep or not_a_path:
        return "", problem.strip()
    return head.strip(), rest.strip()
