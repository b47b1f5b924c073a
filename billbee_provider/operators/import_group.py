"""validate -> create -> report as one TaskGroup, wired by XComArgs, and the import DAGs' form.

Both example import DAGs (a file, a SQL table) and users' own DAGs differ only in how
the rows are extracted. Everything after that is the same three tasks::

    extract = BillbeeExtractCustomersOperator(task_id="extract", source=...)
    tasks = customer_import_group(extract.output, template=..., dry_run="{{ params.dry_run }}")

The tasks are wired by XComArgs (``validate.output["staging"]``), so Airflow draws the
dependencies from the data that flows, and no ``xcom_pull`` string names a task id. The
group keeps the task ids ``validate``, ``create`` and ``report`` (no group prefix), the
names the docs, logs and the ledger's files use.

:func:`import_params` is the trigger form those DAGs share, with titles and
descriptions a shop owner can follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from billbee_provider.operators.create import BillbeeCreateCustomersOperator
from billbee_provider.operators.report import BillbeeReportImportOperator
from billbee_provider.operators.validate import BillbeeValidateCustomersOperator

if TYPE_CHECKING:
    from airflow.sdk import Param, TaskGroup, XComArg

#: The run's output directory as the import DAGs' form gives it (empty when left blank:
#: Jinja would render a blank, ``None``, as the text "None").
OUTPUT_DIR_PARAM = "{{ params.output_dir or '' }}"

#: The create task's retries: a try that failed (Billbee unreachable past the client's own
#: retries, rows left ``failed``) or whose worker died is tried again, 30 s, 60 s, 120 s
#: later. Safe because of the ledger: a retry never sends a row again whose outcome is
#: known, and resolves rows left in doubt by a scan of the account. What a retry cannot
#: fix (bad credentials, ``if_exists="fail"`` with existing customers, a bad file) is an
#: ``AirflowFailException``, which Airflow does not retry.
CREATE_RETRY_ARGS: Final[Mapping[str, Any]] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
}


class CustomerImportTasks(NamedTuple):
    """The tasks :func:`customer_import_group` made, for wiring more tasks to them."""

    group: TaskGroup
    validate: BillbeeValidateCustomersOperator
    create: BillbeeCreateCustomersOperator
    report: BillbeeReportImportOperator


def customer_import_group(
    extracted: XComArg,
    *,
    group_id: str = "billbee_import",
    template: Mapping[str, Any] | str | None = None,
    required_fields: Sequence[str] = ("Email",),
    max_rejects: int | float | str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    if_exists: str = "skip",
    dry_run: bool | str = False,
    output_dir: str | None = None,
    billbee_conn_id: str = "billbee_default",
    create_args: Mapping[str, Any] | None = None,
) -> CustomerImportTasks:
    """Add validate -> create -> report for the rows of ``extracted`` to the DAG being defined.

    :param extracted: the extract task's output (``{"path", "format", ...}``); the provider's
        operators push each key of their result as its own XCom (``multiple_outputs``), so
        ``extracted["path"]`` is the path.
    :param group_id: the TaskGroup's id (task ids are not prefixed with it).
    :param template: the body template (see :class:`BillbeeValidateCustomersOperator`).
    :param required_fields: dotted paths every row must have.
    :param max_rejects: most rejects allowed before nothing is sent (templated).
    :param encoding: the CSV encoding (templated); ``None``: UTF-8.
    :param delimiter: the CSV delimiter (templated); ``None``: detected.
    :param if_exists: ``skip``, ``create`` or ``fail`` (templated).
    :param dry_run: validate and decide, send nothing (templated).
    :param output_dir: the run's output directory (templated), the same for all three tasks.
    :param billbee_conn_id: the Billbee connection.
    :param create_args: more arguments of the create task, over :data:`CREATE_RETRY_ARGS`
        (e.g. ``{"retries": 0}``, ``{"pool": "billbee_shop2"}``).
    :return: the group and its three tasks.
    """
    from airflow.sdk import TaskGroup

    with TaskGroup(group_id, prefix_group_id=False, tooltip="validate -> create -> report") as group:
        validate = BillbeeValidateCustomersOperator(
            task_id="validate",
            source=_item(extracted, "path"),
            source_format=_item(extracted, "format"),
            template=template,
            required_fields=required_fields,
            max_rejects=max_rejects,
            encoding=encoding,
            delimiter=delimiter,
            output_dir=output_dir,
        )
        create = BillbeeCreateCustomersOperator(
            task_id="create",
            staging=_item(validate.output, "staging"),
            rejects=_item(validate.output, "rejects"),
            if_exists=if_exists,
            dry_run=dry_run,
            output_dir=output_dir,
            billbee_conn_id=billbee_conn_id,
            **{**CREATE_RETRY_ARGS, **(create_args or {})},
        )
        report = BillbeeReportImportOperator(
            task_id="report", validated=validate.output, created=create.output, output_dir=output_dir
        )
    return CustomerImportTasks(group, validate, create, report)


def _item(output: XComArg, key: str) -> Any:
    """``output[key]``: one key of a task's XCom dict, resolved when the task runs.

    ``Any``, because the operators' arguments are typed as what they hold when they run.
    """
    return cast(Any, output)[key]


def import_params(**extra: Param) -> dict[str, Param]:
    """The trigger form of an import DAG: output folder, dry run, if the e-mail exists.

    :param extra: more params (e.g. ``source``), placed first in the form.
    :return: the params by name, for ``@dag(params=...)``.
    """
    from airflow.sdk import Param

    return {
        **extra,
        # None and "null" allowed: the trigger form treats an empty required string as
        # missing and keeps Trigger disabled.
        "output_dir": Param(
            None,
            type=["null", "string"],
            title="Output folder",
            description=(
                "Where this run's files go (extract snapshot, rejects.csv, results.csv, ledger, "
                "summary.json): a folder or an object-storage URL. Empty: a new folder for this run "
                "under AIRFLOW_HOME/billbee-imports."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description=(
                "Tick to check every row and see what would be created (rejects, duplicates, "
                "existing customers) without creating anything in Billbee."
            ),
        ),
        "if_exists": Param(
            "skip",
            enum=["skip", "create", "fail"],
            title="If the e-mail is already a Billbee customer",
            description=(
                "skip (recommended): leave that row out and report the existing customer's Id; "
                "create: create a second customer anyway; fail: stop before anything is sent."
            ),
        ),
    }


def source_file_params() -> dict[str, Param]:
    """The trigger-form fields of a file import: the file's encoding and delimiter.

    Both default to ``auto``, which the validate task detects (see
    :class:`BillbeeValidateCustomersOperator`); pass them on with
    ``customer_import_group(..., encoding="{{ params.encoding }}",
    delimiter="{{ params.delimiter }}")``.

    :return: the params by name, for ``@dag(params=import_params(..., **source_file_params()))``.
    """
    from airflow.sdk import Param

    return {
        "encoding": Param(
            "auto",
            type="string",
            title="Character encoding of the file",
            description=(
                "auto: UTF-8 (Excel's 'CSV UTF-8') or Unicode text (UTF-16, Excel's 'Unicode-Text'). "
                "Choose cp1252 for Excel's 'CSV (Trennzeichen-getrennt)' and other older Windows "
                "exports, if umlauts like ä, ö, ü, ß are refused. If the file turns out to be UTF-8 "
                "after all, cp1252 is refused so that 'Müller' does not arrive as 'MÃ¼ller'; "
                "cp1252! reads it as cp1252 anyway."
            ),
            examples=["auto", "cp1252", "utf-8", "utf-16", "iso-8859-15", "cp1252!"],
            minLength=1,
        ),
        "delimiter": Param(
            "auto",
            type="string",
            title="Column separator (CSV only)",
            description=(
                "auto: whichever of semicolon, comma or tab the header line uses most. "
                "Or one character, e.g. ; or , or |, or tab."
            ),
            examples=["auto", ";", ",", "tab", "|"],
            pattern="^(auto|tab|.)$",
        ),
    }
