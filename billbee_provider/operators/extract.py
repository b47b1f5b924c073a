"""The extract task of a customer import: a file or a SQL query -> a snapshot in the run folder.

The snapshot is what the later tasks and every retry read, so a source that changes
after the run started cannot change what the ledger refers to.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.operators.run_files import output_location, to_location, with_outputs

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

    from billbee_provider.imports.extract import SourceFormat


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
        super().__init__(**with_outputs(kwargs))
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
        super().__init__(**with_outputs(kwargs))
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
