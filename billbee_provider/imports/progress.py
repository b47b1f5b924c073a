"""``progress.json``: how far a running create stage is, for a UI to read while it runs.

The create stage (:func:`~billbee_provider.imports.create.import_customers` with a
``progress_path``) writes the file once when it starts, at every progress tick of
:class:`~billbee_provider.imports.send.Run` (every ``progress_every`` seconds, the same
moments as the progress log line), and once at the end with ``state`` ``done`` or
``failed``. Each write replaces the whole file (:func:`~.storage.replace`: an atomic
rename locally, one PUT on an object store), so a reader sees the old or the new
content, never half a file. The content is only counts and times::

    {"state": "running" | "done" | "failed",
     "rows_total": int, "rows_done": int, "created": int,
     "creates_per_s": float, "throttled_429": int, "eta_s": float | null,
     "started_at": "2025-01-31T12:00:00+00:00", "updated_at": "...",
     "counts": {"<status>": int, ...}}

A run that is killed (``SIGKILL``, a lost worker) leaves ``running`` behind with an
``updated_at`` that no longer moves; the task's state in Airflow says what happened.

This module does not import Airflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from billbee_provider.api.client import Logger
from billbee_provider.imports.storage import Location, describe_location, read_json_object, replace

#: ``state`` while the create stage runs.
RUNNING: Final = "running"
#: ``state`` after the create stage wrote its results.
DONE: Final = "done"
#: ``state`` after an exception ended the create stage.
FAILED: Final = "failed"
#: The values of ``state``.
ProgressState = Literal["running", "done", "failed"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Progress:
    """One moment of a create stage, as counts (never rows, keys or names).

    :param state: ``running``, ``done`` or ``failed``.
    :param rows_total: rows of the staging file.
    :param rows_done: rows with an outcome (requests in flight not counted).
    :param created: rows whose status is ``created``.
    :param creates_per_s: rows sent per second of create phase.
    :param throttled_429: 429 answers seen by this run.
    :param eta_s: seconds left at the current rate; ``None`` while unknown.
    :param counts: rows per status.
    """

    state: ProgressState
    rows_total: int
    rows_done: int
    created: int
    creates_per_s: float
    throttled_429: int
    eta_s: float | None
    counts: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self, *, started_at: str, updated_at: str) -> dict[str, Any]:
        """The JSON shape of ``progress.json`` (see the module docstring).

        :param started_at: when the stage started, ISO-8601 UTC.
        :param updated_at: when this moment was taken, ISO-8601 UTC.
        :return: plain JSON values, the rate and ETA rounded.
        """
        return {
            "state": self.state,
            "rows_total": self.rows_total,
            "rows_done": self.rows_done,
            "created": self.created,
            "creates_per_s": round(self.creates_per_s, 3),
            "throttled_429": self.throttled_429,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "started_at": started_at,
            "updated_at": updated_at,
            "counts": dict(self.counts),
        }


def utc_now() -> str:
    """The current time as ISO-8601 UTC, to the second (``2025-01-31T12:00:00+00:00``).

    :return: the time's text.
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_progress(location: Location, progress: Mapping[str, Any]) -> None:
    """Replace ``location`` with ``progress`` as JSON (UTF-8), atomically.

    :param location: the progress file (a local path, URL or ``ObjectStoragePath``).
    :param progress: the JSON-ready content (see :meth:`Progress.as_dict`).
    :raises OSError: when the file cannot be written (:class:`ProgressFile` catches it).
    """
    data = json.dumps(progress, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    with replace(location) as out:
        out.write(data.encode("utf-8") + b"\n")


def read_progress(location: Location) -> dict[str, Any] | None:
    """The content of a progress file, or ``None`` when there is none to show.

    See :func:`~.storage.read_json_object`: ``None`` for a missing or garbled file.

    :param location: the progress file.
    :return: the JSON object, or ``None``.
    :raises OSError: when the file exists but cannot be read (permissions, network).
    """
    return read_json_object(location)


class ProgressFile:
    """The progress file of one create stage: writes that never fail the import.

    A failed write is logged as a warning (the first after a success; later ones at
    debug level, so that a store that is down does not fill the task log) and the run
    goes on.

    :param location: the progress file.
    :param log: where a failed write is reported.
    :param now: the wall clock as ISO-8601 UTC text (injectable for tests).
    """

    def __init__(
        self, location: Location, log: Logger | None = None, *, now: Callable[[], str] = utc_now
    ) -> None:
        self.location = location
        self.log: Logger = log or _log
        self.now = now
        #: When the stage started (this object was made).
        self.started_at = now()
        self._failing = False

    def write(self, progress: Progress) -> bool:
        """Write one moment; never raises (except ``BaseException`` such as a kill).

        :param progress: the moment to write.
        :return: whether the file was written.
        """
        try:
            write_progress(self.location, progress.as_dict(started_at=self.started_at, updated_at=self.now()))
        except Exception as exc:  # any failure of the store: the import goes on
            report = self.log.debug if self._failing else self.log.warning
            report(
                "progress: could not write %s (%s); the import goes on",
                describe_location(self.location),
                type(exc).__name__,
            )
            self._failing = True
            return False
        self._failing = False
        return True
