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

Where the run folder is, in this order (:func:`output_location`):

1. the task's ``output_dir`` (the import DAGs' param "Output folder"), if given;
2. the provider setting ``[billbee] import_storage`` (env ``AIRFLOW__BILLBEE__IMPORT_STORAGE``)
   plus ``/<dag_id>/<run_id>``: a local folder shared by every worker, or an object-store URL
   with its Airflow connection (``s3://aws_conn@bucket/prefix``, ``gs://...``);
3. ``$AIRFLOW_HOME/billbee-imports/<dag_id>/<run_id>``: a folder on the machine the task
   runs on, which is only right when every task runs on one machine.

:func:`check_shared_storage` decides, before an extract task reads anything, whether the
run folder is one that every task of the run can reach under the configured executor.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

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

#: The provider setting naming where import runs keep their files (see the module docstring).
STORAGE_SECTION: Final = "billbee"
STORAGE_OPTION: Final = "import_storage"
STORAGE_ENV: Final = "AIRFLOW__BILLBEE__IMPORT_STORAGE"
#: Executors that run every task on the machine of the scheduler (class names).
SINGLE_MACHINE_EXECUTORS: Final = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})
#: An example of a shared location, for messages.
STORAGE_EXAMPLE: Final = "s3://aws_default@my-bucket/billbee-imports"

logger = logging.getLogger(__name__)


def _conf_get(section: str, key: str) -> str:
    """``[section] key`` from Airflow's configuration (the Task SDK's in a task), ``""`` if unset."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - Airflow without the Task SDK's configuration
        from airflow.configuration import conf
    try:
        value = conf.get(section, key, fallback="")
    except Exception:  # a broken config must not hide the default's decision
        logger.debug("cannot read [%s] %s", section, key, exc_info=True)
        value = ""
    return str(value or "").strip()


def import_storage() -> str:
    """The setting ``[billbee] import_storage``, ``""`` when unset."""
    return _conf_get(STORAGE_SECTION, STORAGE_OPTION)


def configured_executor() -> str:
    """The setting ``[core] executor`` as written (may be a comma-separated list); ``""`` if unset."""
    return _conf_get("core", "executor")


def multi_machine_executors(executor: str) -> list[str]:
    """The executors of an ``[core] executor`` value that can run tasks on different machines.

    Each comma-separated entry is a class name (``CeleryExecutor``), a module path
    (``airflow.providers.celery.executors.celery_executor.CeleryExecutor``) or an alias
    with a module path (``my_alias:my.module.MyExecutor``); its class name decides. Only
    :data:`SINGLE_MACHINE_EXECUTORS` keep every task on one machine; every other (Celery,
    Kubernetes, Edge, ECS, a custom one) may not. An empty value is Airflow's default,
    ``LocalExecutor``.

    :param executor: the setting's value.
    :return: the entries that may put tasks on different machines, as written.
    """
    found = []
    for entry in executor.split(","):
        entry = entry.strip()
        if not entry:
            continue
        class_name = entry.rsplit(":", 1)[-1].rsplit(".", 1)[-1].strip()
        if class_name not in SINGLE_MACHINE_EXECUTORS:
            found.append(entry)
    return found


StorageVerdict = Literal["ok", "warn", "refuse"]


def check_shared_storage(output_dir: str | None, storage: str, executor: str) -> StorageVerdict:
    """Whether an import may start, given where its run folder is and what runs its tasks.

    * ``ok``: a single-machine executor, or a run folder on object storage;
    * ``warn``: a local folder that was chosen explicitly (``output_dir`` or
      ``[billbee] import_storage``) under an executor that can place tasks on different
      machines: the admin declared it shared (an NFS mount on every worker), but nothing
      here can check that;
    * ``refuse``: the default folder under ``AIRFLOW_HOME`` under such an executor: the
      next task, or a retry, can run on a machine that does not have it.

    :param output_dir: the task's ``output_dir`` (empty: not given).
    :param storage: the ``[billbee] import_storage`` setting (empty: not set).
    :param executor: the ``[core] executor`` setting.
    :return: the verdict.
    """
    from billbee_provider.imports.storage import local_path

    if not multi_machine_executors(executor):
        return "ok"
    chosen = output_dir or storage
    if not chosen:
        return "refuse"
    return "warn" if local_path(chosen) is not None else "ok"


def require_shared_storage(output_dir: str | None, log: logging.Logger | Any = logger) -> None:
    """Refuse, or warn about, a run folder the run's other tasks may not reach.

    See :func:`check_shared_storage`.

    Called by the extract tasks before they read anything, so a run never fails halfway
    on a missing file.

    :param output_dir: the task's ``output_dir``.
    :param log: where the warning goes (the task's logger).
    :raises AirflowFailException: for the local default under a multi-machine executor.
    """
    storage = import_storage()
    executor = configured_executor()
    verdict = check_shared_storage(output_dir, storage, executor)
    if verdict == "ok":
        return
    names = ", ".join(multi_machine_executors(executor))
    if verdict == "warn":
        which = "output_dir" if output_dir else f"[{STORAGE_SECTION}] {STORAGE_OPTION}"
        log.warning(
            "the run folder (%s) is a local folder, but [core] executor %s can run this run's tasks "
            "on different machines: every worker must see the same folder at that path (a shared "
            "mount), or the next task or a retry will not find its files. Object storage needs no "
            "shared mount: e.g. %s",
            which,
            names,
            STORAGE_EXAMPLE,
        )
        return
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        f"[core] executor {names} can run this run's tasks on different machines, but no shared "
        f"place for the run's files is set: the default folder under AIRFLOW_HOME exists only on "
        f"the machine of this task. Set [{STORAGE_SECTION}] {STORAGE_OPTION} (environment variable "
        f"{STORAGE_ENV}) to object storage with its Airflow connection, e.g. {STORAGE_EXAMPLE}, "
        f"or give this run an 'output_dir' param ('Output folder' in the trigger form) there"
    )


def default_folder(context: Context) -> str:
    """``$AIRFLOW_HOME/billbee-imports/<dag_id>/<run>``: the run folder when nothing is configured."""
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return str(home / "billbee-imports" / _run_path(context))


def _run_path(context: Context) -> str:
    """``<dag_id>/<run_id>``, the run id made file-name safe."""
    run = re.sub(r"[^A-Za-z0-9._-]", "_", str(context["run_id"]))
    return f"{context['dag'].dag_id}/{run}"


def output_location(output_dir: str | None, context: Context) -> str:
    """The run's output directory: ``output_dir``, else ``[billbee] import_storage``/<dag>/<run>,
    else ``$AIRFLOW_HOME/billbee-imports/<dag>/<run>``.

    Local directories are created. The run id is made file-name safe.
    """
    if not output_dir:
        storage = import_storage()
        output_dir = f"{storage.rstrip('/')}/{_run_path(context)}" if storage else default_folder(context)
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
