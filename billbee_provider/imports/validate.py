"""The validate stage of an import: split source rows into valid bodies and rejects.

:func:`prepare` streams the rows once. Each row is turned into a customer body, checked
against Billbee's schema and the import's own rules, and written either to the staging
file (JSON Lines, one ``{"row": n, "key": ..., "body": {...}}`` per valid row) or to the
rejects file (CSV: ``row, line, key, stage, problems``); both formats and their writers
are in :mod:`billbee_provider.imports.files`. A location is replaced as a whole
(:func:`~billbee_provider.imports.storage.replace`): a reader never sees half a file. Only
counts and paths come back, never rows, so the summary can go to XCom. Log lines name counts only: rows hold
personal data.

This module does not import Airflow.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, TypeAlias

from billbee_provider.customers.mapping import body_key
from billbee_provider.customers.schema import CustomerValidator, get_validator
from billbee_provider.imports.extract import SourceRow
from billbee_provider.imports.files import VALIDATE_STAGE, RejectsWriter, csv_target, staging_line
from billbee_provider.imports.storage import Location, binary_target, target_name

log = logging.getLogger(__name__)

_PROGRESS_SECONDS: Final = 30.0

#: Turns a source row into a body and its conversion or template problems.
ToBody: TypeAlias = Callable[[SourceRow], tuple[dict[str, Any], list[str]]]


class Validator(Protocol):
    """Anything that lists a body's problems, like :class:`~.customers.schema.CustomerValidator`."""

    def problems(self, body: object) -> list[str]:
        """List every problem of ``body`` as ``<dotted path>: <reason>``."""


@dataclass(frozen=True, slots=True)
class PrepareSummary:
    """What :func:`prepare` did: counts and where the files are.

    :param rows_read: rows read from the source.
    :param valid: rows written to the staging file.
    :param rejected: rows written to the rejects file.
    :param staging: the staging file's location, if known.
    :param rejects: the rejects file's location, if known.
    """

    rows_read: int
    valid: int
    rejected: int
    staging: str | None
    rejects: str | None

    def as_dict(self) -> dict[str, Any]:
        """The summary as a plain dict for XCom: counts and paths, never rows.

        :return: the fields by name.
        """
        return dataclasses.asdict(self)


class TooManyRejects(ValueError):
    """More rows were rejected than ``max_rejects`` allows; nothing may be sent.

    :param summary: the complete summary (the rejects file is complete as well).
    :param limit: the ``max_rejects`` that was exceeded.
    """

    def __init__(self, summary: PrepareSummary, limit: int | float) -> None:
        share = f" ({summary.rejected / summary.rows_read:.1%})" if summary.rows_read else ""
        allowed = f"{limit:.1%} of the rows" if isinstance(limit, float) else str(limit)
        super().__init__(
            f"{summary.rejected} of {summary.rows_read} rows rejected{share}, more than max_rejects "
            f"allows ({allowed}); nothing will be sent. "
            f"Every reason is in {summary.rejects or 'the rejects file'}"
        )
        self.summary = summary
        self.limit = limit


class _Checks:
    """Every check of a body: the schema, ``extra_schema`` and ``required_fields``."""

    def __init__(
        self, validator: Validator, required_fields: Sequence[str], extra_schema: Mapping[str, Any] | None
    ) -> None:
        self._validators = [validator]
        if extra_schema is not None:
            # Same draft, same "<path>: <reason>" wording as the Billbee schema.
            self._validators.append(CustomerValidator(extra_schema))
        self._required = (required_fields,) if isinstance(required_fields, str) else tuple(required_fields)

    def problems(self, body: dict[str, Any]) -> list[str]:
        found = [problem for validator in self._validators for problem in validator.problems(body)]
        found += [
            f"{path}: required by this import but missing" for path in self._required if _missing(body, path)
        ]
        return found


def prepare(
    rows: Iterable[SourceRow],
    to_body: ToBody,
    *,
    staging: IO[bytes] | Location,
    rejects: IO[str] | Location,
    validator: Validator | None = None,
    required_fields: Sequence[str] = (),
    extra_schema: Mapping[str, Any] | None = None,
    max_rejects: int | float | None = None,
) -> PrepareSummary:
    """Validate every row; write valid bodies to ``staging`` and the rest to ``rejects``.

    A row is rejected if it has any problem: from the source (a ragged row), from
    ``to_body`` (a cell that is no integer, a template error), from the schema, from
    ``extra_schema``, or a ``required_fields`` path that is missing or blank. A body with
    no field set at all is rejected as well. Both files are always written completely;
    ``max_rejects`` is checked at the end.

    :param rows: the source rows, read once, as a stream.
    :param to_body: turns a row into a body and its problems, e.g.
        ``lambda row: body_from_dotted(row.fields)`` or
        ``lambda row: template.render_row(row.fields)``.
    :param staging: where valid rows go: a binary stream, or a location (URL, path,
        ``ObjectStoragePath``) to create or replace; UTF-8 JSON Lines.
    :param rejects: where rejected rows go: a text stream, or a location to create or
        replace as UTF-8 with a byte order mark.
    :param validator: the schema check; the shared customer validator by default.
    :param required_fields: dotted paths this import requires, e.g. ``["Email", "Address.City"]``.
    :param extra_schema: a JSON Schema (draft 2020-12) every body must meet as well.
    :param max_rejects: the most rejects allowed: an ``int`` count, or a ``float`` in
        (0, 1) as a share of the rows read. ``None``: no limit.
    :return: the counts and the locations of both files.
    :raises TooManyRejects: if more rows were rejected than ``max_rejects`` allows.
    :raises jsonschema.exceptions.SchemaError: if ``extra_schema`` is no valid schema.
    """
    _check_max_rejects(max_rejects)
    checks = _Checks(validator or get_validator(), required_fields, extra_schema)
    with binary_target(staging) as staged, csv_target(rejects) as rejected:
        valid, rejected_count = _split(rows, to_body, checks, staged, RejectsWriter(rejected))
    summary = PrepareSummary(
        rows_read=valid + rejected_count,
        valid=valid,
        rejected=rejected_count,
        staging=target_name(staging),
        rejects=target_name(rejects),
    )
    log.info("Prepared %d rows: %d valid, %d rejected", summary.rows_read, valid, rejected_count)
    if max_rejects is not None and _too_many(summary, max_rejects):
        raise TooManyRejects(summary, max_rejects)
    return summary


def _split(
    rows: Iterable[SourceRow], to_body: ToBody, checks: _Checks, staged: IO[bytes], rejects: RejectsWriter
) -> tuple[int, int]:
    valid = rejected = 0
    next_progress = time.monotonic() + _PROGRESS_SECONDS
    for row in rows:
        if time.monotonic() >= next_progress:
            log.info("Prepared %d rows so far: %d valid, %d rejected", valid + rejected, valid, rejected)
            next_progress = time.monotonic() + _PROGRESS_SECONDS
        body, problems = _checked_body(row, to_body, checks)
        key = body_key(body)
        if not problems:
            encoded = staging_line(row.number, key, body)
            if isinstance(encoded, bytes):
                staged.write(encoded)
                valid += 1
                continue
            problems = [encoded]
        rejects.write(row=row.number, line=row.line, key=key, stage=VALIDATE_STAGE, problems=problems)
        rejected += 1
    return valid, rejected


def _checked_body(row: SourceRow, to_body: ToBody, checks: _Checks) -> tuple[dict[str, Any], list[str]]:
    problems = list(row.problems)
    try:
        body, body_problems = to_body(row)
    except ValueError as exc:  # e.g. RowTemplateError from BodyTemplate.render
        body, body_problems = {}, [str(exc)]
    problems += body_problems
    problems += checks.problems(body)
    if not body and not problems:
        problems.append("<body>: no field is set")
    return body, list(dict.fromkeys(problems))


def _missing(body: Mapping[str, Any], path: str) -> bool:
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return True
        value = value[part]
    return value is None or (isinstance(value, str) and not value.strip())


def _check_max_rejects(limit: int | float | None) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise TypeError(f"max_rejects must be an int, a float or None, not {type(limit).__name__}")
    if isinstance(limit, int) and limit < 0:
        raise ValueError(f"max_rejects must not be negative, got {limit}")
    if isinstance(limit, float) and not 0.0 < limit < 1.0:
        raise ValueError(
            f"max_rejects as a float is a share of the rows, in (0, 1); got {limit}; pass an int count"
        )


def _too_many(summary: PrepareSummary, limit: int | float) -> bool:
    if isinstance(limit, int):
        return summary.rejected > limit
    return summary.rows_read > 0 and summary.rejected / summary.rows_read > limit
