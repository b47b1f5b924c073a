"""The extract task of a customer import: a file or a SQL query -> a snapshot in the run folder.

The snapshot is what the later tasks and every retry read, so a source that changes
after the run started cannot change what the ledger refers to.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from billbee_provider.operators.run_files import (
    output_location,
    push_run_files,
    require_shared_storage,
    run_files,
    to_location,
    with_outputs,
)

logger = logging.getLogger(__name__)

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
    :param output_dir: the run's output directory (templated); default: ``[billbee] import_storage``
        ``/<dag_id>/<run_id>``, or a folder under AIRFLOW_HOME (refused under executors that
        can run tasks on different machines).
    :param source_format: ``csv`` or ``jsonl``; default from the extension.

    Returns (XCom) ``{"path", "format", "bytes"}``; pushes the run's file locations as the
    XCom ``billbee_files`` when it starts.
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
        """Snapshot the source.

        :raises AirflowFailException: for what a retry cannot fix: the default run folder
            under an executor that can run tasks on different machines
            (:func:`~.run_files.require_shared_storage`, before anything is read), a web
            address (refused by :func:`~.run_files.to_location` before any request), a
            source that is the snapshot file itself, a missing source or a directory.
        """
        from billbee_provider.imports.storage import describe_location, open_read, replace

        require_shared_storage(self.output_dir, self.log)
        out = output_location(self.output_dir, context)
        push_run_files(context, run_files(out))
        fmt = source_format(self.source, self.source_format)
        target = f"{out}/source.{fmt}"
        refuse_same_file(self.source, target, out)
        with (
            unreadable_source_fails(self.source),
            open_read(to_location(self.source), infer_compression_from_name=True) as src,
            replace(to_location(target)) as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
            size = dst.tell()
        self.log.info("Copied %s (%d bytes) to %s", describe_location(self.source), size, target)
        return {"path": target, "format": fmt, "bytes": size}


def refuse_same_file(source: str, target: str, output_dir: str) -> None:
    """Fail before anything is opened for writing if ``target`` is the file ``source`` names.

    :param source: the file the task reads.
    :param target: a file the task writes.
    :param output_dir: the run's output directory, for the message.
    :raises AirflowFailException: if they are the same file.
    """
    from billbee_provider.imports.storage import describe_location, same_location

    if same_location(source, target):
        raise AirflowFailException(
            f"the source {describe_location(source)} is the file this task writes "
            f"({describe_location(target)}): it would be overwritten. Move the source out of "
            f"{describe_location(output_dir)}, or choose another output folder "
            "(param 'output_dir', 'Output folder' in the trigger form)"
        )


@contextlib.contextmanager
def unreadable_source_fails(source: str) -> Iterator[None]:
    """Turn what a retry cannot fix about a source into :class:`AirflowFailException`.

    A missing file or a directory, a web address, bytes the reader refuses
    (:class:`~billbee_provider.imports.extract.SourceError`), nesting too deep to process
    (:class:`RecursionError`) or a number too long to convert (:class:`ValueError`) fail the
    task once, with a one-line reason; the cause's traceback goes to the log at DEBUG.
    ``ValueError`` messages are not shown: they may quote a cell.

    :param source: the source, for messages.
    """
    from billbee_provider.imports.extract import SourceError
    from billbee_provider.imports.storage import UnsupportedLocationError, describe_location

    name = describe_location(source)
    try:
        yield
    except (SourceError, UnsupportedLocationError) as exc:
        raise AirflowFailException(str(exc)) from None
    except FileNotFoundError:
        _debug_cause()
        raise AirflowFailException(f"{name}: no such file; check the source path") from None
    except (IsADirectoryError, NotADirectoryError):
        _debug_cause()
        reason = "is a folder (or inside a file), not a file; give the file's path"
        raise AirflowFailException(f"{name}: {reason}") from None
    except RecursionError:
        _debug_cause()
        raise AirflowFailException(f"{name}: a value is nested too deeply to be processed") from None
    except ValueError as exc:
        _debug_cause()
        digits = "digits" in str(exc)  # int('1' * 5000): over sys.get_int_max_str_digits()
        reason = "a number has more digits than can be converted" if digits else type(exc).__name__
        raise AirflowFailException(f"{name}: cannot be processed: {reason}") from None


def _debug_cause() -> None:
    logger.debug("the cause", exc_info=True)


class BillbeeExtractCustomersSqlOperator(BaseOperator):
    """Read customers with a SQL query through any Airflow DbApiHook, in chunks, into JSONL.

    :param conn_id: an Airflow database connection (SQLite, Postgres, MySQL, ...).
    :param sql: the query (templated); its column names become the row's fields.
    :param parameters: query parameters.
    :param chunk_size: rows fetched per round trip.
    :param output_dir: the run's output directory (templated).

    Returns (XCom) ``{"path", "format": "jsonl", "rows"}``; pushes the run's file
    locations as the XCom ``billbee_files`` when it starts.
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
        """Run the query and write one JSON object per row.

        :raises AirflowFailException: for the default run folder under an executor that can
            run tasks on different machines (:func:`~.run_files.require_shared_storage`),
            before the query runs.
        """
        from billbee_provider.imports.extract_sql import write_jsonl
        from billbee_provider.imports.storage import replace

        require_shared_storage(self.output_dir, self.log)
        folder = output_location(self.output_dir, context)
        push_run_files(context, run_files(folder))
        hook = db_hook(self.conn_id)
        target = f"{folder}/source.jsonl"
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
