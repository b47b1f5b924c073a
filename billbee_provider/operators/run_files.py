"""Where an import run's files live, as the import operators name them.

Every task of one import reads and writes the same run folder; these helpers turn the
``output_dir`` a DAG passes (empty, a path, a ``file://`` URL or an object-store URL) into
that folder and into :data:`~billbee_provider.imports.storage.Location` values the core
understands. The operators return counts and these paths through XCom, one XCom per key
(:func:`with_outputs`), never rows.

The file names of a run folder are named here once (:data:`STAGING_FILE`, ...). Every
import task pushes, when it starts, one more XCom under :data:`FILES_XCOM_KEY`: where
the run's files are (:func:`run_files`), so that a UI can find ``progress.json`` while
the create task is still running.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from airflow.sdk import Context

    from billbee_provider.imports.storage import Location

#: The XCom key of the run's file locations (pushed by every import task when it starts).
FILES_XCOM_KEY: Final = "billbee_files"
#: The file names in a run folder.
STAGING_FILE: Final = "staging.jsonl"
REJECTS_FILE: Final = "rejects.csv"
RESULTS_FILE: Final = "results.csv"
LEDGER_FILE: Final = "ledger.jsonl"
SUMMARY_FILE: Final = "summary.json"
PROGRESS_FILE: Final = "progress.json"


def output_location(output_dir: str | None, context: Context) -> str:
    """The run's output directory: ``output_dir`` or ``$AIRFLOW_HOME/billbee-imports/<dag>/<run>``.

    Local directories are created. The run id is made file-name safe.
    """
    if not output_dir:
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        run = re.sub(r"[^A-Za-z0-9._-]", "_", str(context["run_id"]))
        output_dir = str(home / "billbee-imports" / context["dag"].dag_id / run)
    from billbee_provider.imports.storage import local_path

    local = local_path(output_dir)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    return output_dir.rstrip("/")


def to_location(text: str) -> Location:
    """A local path stays a string; an object-store URL becomes an ``ObjectStoragePath``.

    This is where every location an operator is given becomes one, so a web address is
    refused here, before anything is opened (``ObjectStoragePath`` would fail on it with
    a raw "No filesystem registered for scheme http").

    :raises UnsupportedLocationError: for an ``http(s)://`` URL (a ``ValueError``; the
        operators turn it into a task failure).
    """
    from billbee_provider.imports.storage import check_supported, local_path

    check_supported(text)
    local = local_path(text)
    if local is not None:
        return str(local)
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(text)


def with_outputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Each key of the returned dict is pushed as its own XCom too (``task.output["path"]``)."""
    kwargs.setdefault("multiple_outputs", True)
    return kwargs


def run_files(out: str, *, rejects: str | None = None, ledger: str | None = None) -> dict[str, str]:
    """Where a run's files are: the run folder's names, or a task's own overrides.

    :param out: the run's output directory (:func:`output_location`).
    :param rejects: the rejects file the task was given, if any (default in ``out``).
    :param ledger: the ledger the task was given, if any (default in ``out``).
    :return: ``{"output_dir", "progress", "summary", "results", "rejects", "ledger"}``, strings.
    """
    return {
        "output_dir": out,
        "progress": f"{out}/{PROGRESS_FILE}",
        "summary": f"{out}/{SUMMARY_FILE}",
        "results": f"{out}/{RESULTS_FILE}",
        "rejects": rejects or f"{out}/{REJECTS_FILE}",
        "ledger": ledger or f"{out}/{LEDGER_FILE}",
    }


def push_run_files(context: Context, files: dict[str, str]) -> None:
    """Push ``files`` as the XCom :data:`FILES_XCOM_KEY` of the running task.

    Pushed when the task starts, so it is there while the task runs. Without a task
    instance in ``context`` (an operator's ``execute`` called directly) nothing is pushed.

    :param context: the task's context.
    :param files: the run's files (:func:`run_files`).
    """
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=FILES_XCOM_KEY, value=files)
