"""Operators of the bulk customer import: extract -> validate -> create.

Each stage writes files into the run's output directory and passes only counts and
paths through XCom, never rows (personal data, and XComs are not meant to be large):

* ``BillbeeExtractCustomersOperator`` snapshots a CSV/JSONL file into the output dir, so
  that a retried or resumed run reads exactly the rows its ledger refers to;
* ``BillbeeExtractCustomersSqlOperator`` reads a query through any DbApiHook in chunks;
* ``BillbeeValidateCustomersOperator`` maps rows to bodies, validates them and writes
  the staging file and the rejects report; above ``max_rejects`` it fails before
  anything is sent;
* ``BillbeeCreateCustomersOperator`` creates the staged customers at Billbee's rate
  limit, exactly once, with a ledger that makes retries and re-runs safe.

Locations are local paths, ``file://`` URLs, or object-store URLs that Airflow's
``ObjectStoragePath`` understands (``s3://<conn_id>@bucket/prefix``). The Billbee and
file-format logic lives in Airflow-free modules imported inside ``execute``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from billbee_provider.operators.customers import as_bool

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

    from billbee_provider.imports.extract import SourceFormat
    from billbee_provider.imports.storage import Location

#: Pool that keeps one account's imports from running side by side (see docs/import.md).
DEFAULT_POOL = "billbee_api"


def output_location(output_dir: str | None, context: Context) -> str:
    """The run's output directory: ``output_dir`` or ``$AIRFLOW_HOME/billbee-imports/<dag>/<run>``.

    Local directories are created. The run id is made file-name safe.
    """
    if not output_dir:
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        run = re.sub(r"[^A-Za-z0-9._-]", "_", str(context["run_id"]))
        output_dir = str(home / "billbee-imports" / context["dag"].dag_id / run)
    local = _local(output_dir)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
    return output_dir.rstrip("/")


def to_location(text: str) -> Location:
    """A local path stays a string; an object-store URL becomes an ``ObjectStoragePath``."""
    if _local(text) is not None:
        return str(_local(text))
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(text)


def _local(text: str) -> Path | None:
    """The local path of a path or ``file://`` URL (percent-unquoted); ``None`` for other URLs."""
    from billbee_provider.imports.storage import local_path

    return local_path(text)


def source_format(path: str, given: str | None) -> SourceFormat:
    """``csv`` or ``jsonl``, from ``given`` or the file name's extension.

    :raises AirflowFailException: for an unknown format (a retry cannot fix it).
    """
    from billbee_provider.imports.extract import SourceError
    from billbee_provider.imports.extract import source_format as detect

    try:
        return detect(path, given)
    except SourceError as exc:
        raise AirflowFailException(str(exc)) from None


def _with_outputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Each key of the returned dict is pushed as its own XCom too (``task.output["path"]``)."""
    kwargs.setdefault("multiple_outputs", True)
    return kwargs


class BillbeeExtractCustomersOperator(BaseOperator):
    """Copy a CSV or JSONL source into the run's output directory (streaming).

    :param source: path or URL of the file (templated).
    :param output_dir: the run's output directory (templated; default under AIRFLOW_HOME).
    :param source_format: ``csv`` or ``jsonl``; default from the extension.

    Returns (XCom) ``{"path", "format", "bytes"}``.
    """

    template_fields: Sequence[str] = ("source", "output_dir", "source_format")

    def __init__(
        self, *, source: str, output_dir: str | None = None, source_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**_with_outputs(kwargs))
        self.source = source
        self.output_dir = output_dir
        self.source_format = source_format

    def execute(self, context: Context) -> dict[str, Any]:
        """Snapshot the source."""
        from billbee_provider.imports.storage import describe_location, open_read, replace

        fmt = source_format(self.source, self.source_format)
        target = f"{output_location(self.output_dir, context)}/source.{fmt}"
        source = open_read(to_location(self.source), infer_compression_from_name=True)
        with source as src, replace(to_location(target)) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            size = dst.tell()
        self.log.info("Copied %s (%d bytes) to %s", describe_location(to_location(self.source)), size, target)
        return {"path": target, "format": fmt, "bytes": size}


class BillbeeExtractCustomersSqlOperator(BaseOperator):
    """Read customers with a SQL query through any Airflow DbApiHook, in chunks, into JSONL.

    :param conn_id: an Airflow database connection (SQLite, Postgres, MySQL, ...).
    :param sql: the query (templated); its column names become the row's fields.
    :param parameters: query parameters.
    :param chunk_size: rows fetched per round trip.
    :param output_dir: the run's output directory (templated).

    Returns (XCom) ``{"path", "format": "jsonl", "rows"}``.
    """

    template_fields: Sequence[str] = ("sql", "conn_id", "output_dir")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        chunk_size: int = 1000,
        output_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**_with_outputs(kwargs))
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters
        self.chunk_size = chunk_size
        self.output_dir = output_dir

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the query and write one JSON object per row."""
        from billbee_provider.imports.extract_sql import write_jsonl
        from billbee_provider.imports.storage import replace

        hook = db_hook(self.conn_id)
        target = f"{output_location(self.output_dir, context)}/source.jsonl"
        with closing(hook.get_conn()) as conn, closing(conn.cursor()) as cursor:
            cursor.execute(self.sql, self.parameters or ())
            with replace(to_location(target)) as out:
                rows = write_jsonl(cursor, out, self.chunk_size)
        self.log.info("Read %d row(s) from %s into %s", rows, self.conn_id, target)
        return {"path": target, "format": "jsonl", "rows": rows}


def db_hook(conn_id: str) -> DbApiHook:
    """The DbApiHook of an Airflow database connection.

    :raises AirflowFailException: when the connection is not a database connection.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(conn_id).get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise AirflowFailException(f"connection {conn_id!r} is not a database connection")
    return hook


class BillbeeValidateCustomersOperator(BaseOperator):
    """Turn source rows into Billbee bodies, validate them, write staging and rejects files.

    :param source: the extracted file (templated; e.g. the extract task's ``path``).
    :param source_format: ``csv`` or ``jsonl``; default from the extension.
    :param encoding: CSV encoding (default UTF-8 with or without BOM; e.g. ``cp1252``).
    :param delimiter: CSV delimiter (default: detected, ``,`` or ``;``).
    :param template: a body template whose leaves are Jinja over ``row`` (not an Airflow
        template field: it is rendered per row, not per task). Without it, CSV headers are
        Billbee's dotted field paths and JSONL lines are Billbee bodies.
    :param required_fields: dotted paths every row must have, e.g. ``["Email"]``.
    :param extra_schema: a JSON Schema every body must meet as well.
    :param max_rejects: most rejects allowed: a count, or a fraction below 1 (templated).
    :param output_dir: the run's output directory (templated).

    Returns (XCom) counts and the paths of ``staging.jsonl`` and ``rejects.csv``.
    """

    template_fields: Sequence[str] = (
        "source",
        "source_format",
        "encoding",
        "delimiter",
        "max_rejects",
        "output_dir",
    )

    def __init__(
        self,
        *,
        source: str,
        source_format: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
        template: Mapping[str, Any] | str | None = None,
        required_fields: Sequence[str] = (),
        extra_schema: Mapping[str, Any] | None = None,
        max_rejects: int | float | str | None = None,
        output_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**_with_outputs(kwargs))
        self.source = source
        self.source_format = source_format
        self.encoding = encoding
        self.delimiter = delimiter
        self.body_template = template
        self.required_fields = list(required_fields)
        self.extra_schema = extra_schema
        self.max_rejects = max_rejects
        self.output_dir = output_dir

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate every row; fail before anything is sent when there are too many rejects."""
        from billbee_provider.imports.extract import SourceError
        from billbee_provider.imports.validate import TooManyRejects, prepare

        out = output_location(self.output_dir, context)
        paths = {"staging": f"{out}/staging.jsonl", "rejects": f"{out}/rejects.csv"}
        try:
            summary = prepare(
                self._rows(),
                self._to_body(),
                staging=to_location(paths["staging"]),
                rejects=to_location(paths["rejects"]),
                required_fields=self.required_fields,
                extra_schema=self.extra_schema,
                max_rejects=parse_max_rejects(self.max_rejects),
            )
        except (TooManyRejects, SourceError) as exc:
            # Too many rejects: the message gives the counts and the rejects file.
            raise AirflowFailException(str(exc)) from None
        self.log.info(
            "Validated %d row(s): %d valid, %d rejected (rejects: %s)",
            summary.rows_read,
            summary.valid,
            summary.rejected,
            paths["rejects"],
        )
        return {**summary.as_dict(), **paths}

    def _rows(self) -> Any:
        from billbee_provider.imports.extract import iter_rows

        fmt = source_format(self.source, self.source_format)
        return iter_rows(
            to_location(self.source), fmt, encoding=self.encoding or None, delimiter=self.delimiter or None
        )

    def _to_body(self) -> Any:
        from billbee_provider.customers.mapping import body_from_dotted
        from billbee_provider.customers.template import TemplateError, template_from_json

        if self.body_template is not None:
            try:
                template = template_from_json(self.body_template)
            except TemplateError as exc:
                raise AirflowFailException(f"the body template is invalid: {exc}") from None
            return lambda row: template.render_row(row.fields)
        if source_format(self.source, self.source_format) == "jsonl":
            return lambda row: (dict(row.fields), [])
        return lambda row: body_from_dotted(row.fields)


def parse_max_rejects(value: int | float | str | None) -> int | float | None:
    """``max_rejects`` as rendered: ``""``/``None`` -> no limit, ``"5"`` -> 5, ``"0.1"`` -> 0.1."""
    if value is None or isinstance(value, int | float):
        return value
    text = str(value).strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        return int(text) if text.isdigit() else float(text)
    except ValueError:
        raise AirflowFailException(f"max_rejects must be a count or a fraction, got {value!r}") from None


class BillbeeCreateCustomersOperator(BaseOperator):
    """Create the staged customers in Billbee at the rate limit, exactly once.

    :param staging: the validate task's staging file (templated).
    :param rejects: the validate task's rejects file, to which Billbee's refusals are added (templated).
    :param output_dir: the run's output directory (templated).
    :param ledger: where the per-row ledger lives (templated; default ``<output_dir>/ledger.jsonl``).
        A retry or re-run with the same ledger never sends a row twice.
    :param if_exists: ``skip`` (default), ``create`` or ``fail``, matched by e-mail (templated).
    :param dry_run: decide everything but send nothing (templated).
    :param max_in_flight: concurrent requests; about rate x answer time is needed.
    :param billbee_conn_id: the Billbee connection (templated).

    The default ``pool`` is ``billbee_api``: create it with one slot per Billbee account.
    Returns (XCom) the summary: counts by status, elapsed seconds, rate, output paths.
    """

    template_fields: Sequence[str] = (
        "staging",
        "rejects",
        "output_dir",
        "ledger",
        "if_exists",
        "is_dry_run",
        "billbee_conn_id",
    )
    ui_color = "#fde9d4"

    def __init__(
        self,
        *,
        staging: str,
        rejects: str | None = None,
        output_dir: str | None = None,
        ledger: str | None = None,
        if_exists: str = "skip",
        dry_run: bool | str = False,
        max_in_flight: int = 8,
        billbee_conn_id: str = "billbee_default",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("pool", DEFAULT_POOL)
        super().__init__(**_with_outputs(kwargs))
        self.staging = staging
        self.rejects = rejects
        self.output_dir = output_dir
        self.ledger = ledger
        self.if_exists = if_exists
        self.is_dry_run = dry_run
        self.max_in_flight = max_in_flight
        self.billbee_conn_id = billbee_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the import and return its summary."""
        from billbee_provider.api.errors import BillbeeAuthError, BillbeeConfigError
        from billbee_provider.hooks.billbee import BillbeeHook
        from billbee_provider.imports.create import ExistingCustomersError, import_customers
        from billbee_provider.imports.ledger import Ledger

        out = output_location(self.output_dir, context)
        client = BillbeeHook(billbee_conn_id=self.billbee_conn_id).client
        try:
            with Ledger(to_location(self.ledger or f"{out}/ledger.jsonl")) as ledger:
                summary = import_customers(
                    to_location(self.staging),
                    client=client,
                    ledger=ledger,
                    results_path=to_location(f"{out}/results.csv"),
                    rejects_path=to_location(self.rejects or f"{out}/rejects.csv"),
                    if_exists=self.if_exists,  # type: ignore[arg-type]  # checked by import_customers
                    dry_run=as_bool(self.is_dry_run, "dry_run"),
                    max_in_flight=self.max_in_flight,
                    logger=self.log,
                )
        except (ExistingCustomersError, BillbeeAuthError, BillbeeConfigError, ValueError) as exc:
            raise AirflowFailException(str(exc)) from None
        failed = summary.counts.get("failed", 0)
        if failed:
            # Billbee did not process these rows (outage, throttling); the ledger makes a
            # task retry safe, so let Airflow's retries send them again.
            raise AirflowException(
                f"{failed} row(s) could not be sent (Billbee unreachable or throttled past all "
                f"retries); results: {summary.results_path}. A retry of this task sends only them."
            )
        return summary.as_dict()
