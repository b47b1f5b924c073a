"""What the panel's routes answer: one task instance's request, response, import files and rights.

Between the routes (:mod:`.app`) and the plain-Python core (:mod:`.request_view`, the
import readers): this module finds the task instance's rendered fields and XComs
(:mod:`.task_records`), its Billbee connection, and the run's files, and decides what
the signed-in user may do with them.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import HTTPException, status

from billbee_provider.api.config import BillbeeConfig, is_loopback
from billbee_provider.api.errors import BillbeeConfigError, BillbeeError, shorten
from billbee_provider.operators.customers import RESPONSE_XCOM_KEY
from billbee_provider.operators.run_files import FILES_XCOM_KEY, PROGRESS_FILE, RESULTS_FILE, SUMMARY_FILE
from billbee_provider.ui import task_records
from billbee_provider.ui.request_view import RequestView, customer_request, send_test_request
from billbee_provider.ui.task_records import TaskRef

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from sqlalchemy.orm import Session

    from billbee_provider.api.throttle import RateLimiter

#: Operators whose tab shows a customer request (by the class name Airflow records).
CUSTOMER_OPERATORS = frozenset({"BillbeeCreateCustomerOperator", "BillbeeValidateCustomerOperator"})
#: Customer operators that only check the body and never send it.
VALIDATE_ONLY_OPERATORS = frozenset({"BillbeeValidateCustomerOperator"})
#: Operators whose tab shows an import's progress, summary and rejects.
IMPORT_OPERATORS = frozenset(
    {
        "BillbeeExtractCustomersOperator",
        "BillbeeExtractCustomersSqlOperator",
        "BillbeeValidateCustomersOperator",
        "BillbeeCreateCustomersOperator",
        "BillbeeReportImportOperator",
    }
)
DEFAULT_CONN_ID = "billbee_default"


@functools.cache
def _shared_limiter() -> RateLimiter:
    """One rate limiter for every request of this API server process (clicks are paced too)."""
    from billbee_provider.api.throttle import RateLimiter

    return RateLimiter()


@dataclass
class PanelTask:
    """One task instance as the panel sees it."""

    ref: TaskRef
    task_instance: Any
    fields: dict[str, Any] | None

    @property
    def operator(self) -> str:
        """The operator's class name, as Airflow recorded it."""
        return str(getattr(self.task_instance, "operator", "") or "")

    @property
    def kind(self) -> str:
        """``customer``, ``import`` or ``other``."""
        if self.operator in CUSTOMER_OPERATORS or (self.fields and "customer" in self.fields):
            return "customer"
        if self.operator in IMPORT_OPERATORS:
            return "import"
        return "other"

    @property
    def conn_id(self) -> str:
        """The task's Billbee connection id: rendered, else the operators' default."""
        rendered = (self.fields or {}).get("billbee_conn_id")
        return rendered if isinstance(rendered, str) and rendered else DEFAULT_CONN_ID

    @cached_property
    def config(self) -> BillbeeConfig | str:
        """The connection, validated; or why it cannot be used (a text without secrets)."""
        from airflow.models.connection import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException

        from billbee_provider.hooks.billbee import config_from_connection

        # The metadata DB's connection: outside a task, the hook's Task SDK lookup finds
        # only connections in environment variables.
        try:
            conn = Connection.get_connection_from_secrets(self.conn_id)
        except AirflowNotFoundException:
            return f"The connection {self.conn_id!r} does not exist (Admin > Connections)."
        try:
            return config_from_connection(conn, self.conn_id)
        except BillbeeConfigError as exc:
            return str(exc)

    @property
    def host(self) -> str | None:
        """The host name requests go to (``None`` when the connection is not usable)."""
        return urlsplit(self.config.base_url).hostname if isinstance(self.config, BillbeeConfig) else None

    def request(self) -> RequestView:
        """The create request of the rendered body (see :func:`customer_request`)."""
        base_url = self.config.base_url if isinstance(self.config, BillbeeConfig) else None
        return customer_request(base_url, (self.fields or {}).get("customer"))

    def send(self) -> dict[str, Any]:
        """Send the body once; Billbee's answer as data (see :func:`send_test_request`)."""
        from billbee_provider.api.client import BillbeeClient

        config = self.config
        view = self.request()
        if not isinstance(config, BillbeeConfig) or not view.valid:
            raise HTTPException(status.HTTP_409_CONFLICT, "This request cannot be sent: see its problems")
        with BillbeeClient(config, limiter=_shared_limiter()) as client:
            try:
                return send_test_request(client, view.body).as_dict()
            except BillbeeError as exc:
                return {"outcome": "failed", "status": exc.status, "message": shorten(str(exc), 1000)}

    def test_connection(self) -> tuple[bool, str]:
        """One cheap read through the connection: ``(ok, message)``, the hook's own texts."""
        from billbee_provider.api.client import BillbeeClient
        from billbee_provider.hooks.billbee import check_connection

        config = self.config
        if not isinstance(config, BillbeeConfig):
            return False, config
        with BillbeeClient(config, limiter=_shared_limiter()) as client:
            return check_connection(client)


def load_task(session: Session, ref: TaskRef) -> PanelTask:
    """The task instance, or 404."""
    ti = task_records.find_task_instance(session, ref)
    if ti is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such task instance")
    return PanelTask(ref, ti, task_records.rendered_fields(session, ref))


def customer_task(session: Session, ref: TaskRef) -> PanelTask:
    """A task that sends or checks one customer body, or 400; 409 before it has rendered."""
    task = load_task(session, ref)
    if task.kind != "customer":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "This task does not send a customer body")
    if task.fields is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "The task has not rendered its body yet")
    return task


def customer_or_import_task(session: Session, ref: TaskRef) -> PanelTask:
    """A task of this provider (it has a Billbee connection), or 400."""
    task = load_task(session, ref)
    if task.kind == "other":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "This task is not one of the Billbee operators")
    return task


# -- rights -----------------------------------------------------------------------------


def may_use_connection(user: BaseUser, method: str, conn_id: str) -> bool:
    """Whether the auth manager lets ``user`` do ``method`` on the connection ``conn_id``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails
    from airflow.models.connection import Connection

    details = ConnectionDetails(conn_id=conn_id, team_name=Connection.get_team_name(conn_id))
    return get_auth_manager().is_authorized_connection(method=method, details=details, user=user)  # type: ignore[arg-type]


def test_requests_allowed() -> bool:
    """``[billbee] allow_test_requests`` (off unless set)."""
    from airflow.configuration import conf

    return conf.getboolean("billbee", "allow_test_requests", fallback=False)


def connection_tests_enabled() -> bool:
    """``[core] test_connection`` is ``Enabled``, as Airflow's own connection test requires."""
    from airflow.configuration import conf

    return conf.get("core", "test_connection", fallback="Disabled").strip().lower() == "enabled"


def require_connection_test(user: BaseUser, conn_id: str) -> None:
    """403 unless connection tests are enabled and ``user`` may create connections and read this one."""
    if not connection_tests_enabled():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Testing connections is disabled ([core] test_connection); ask your Airflow admin to enable it",
        )
    if not (may_use_connection(user, "POST", conn_id) and may_use_connection(user, "GET", conn_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not test this connection")


def require_test_request(user: BaseUser, task: PanelTask, confirm_host: str | None) -> None:
    """403 unless sends are allowed and ``user`` may edit the connection; 400 without the host typed."""
    if not test_requests_allowed():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Test requests are off: an admin can allow them with [billbee] allow_test_requests = True",
        )
    if task.operator in VALIDATE_ONLY_OPERATORS:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "This task only validates; send from its create task"
        )
    if not may_use_connection(user, "PUT", task.conn_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"You may not edit the connection {task.conn_id!r}")
    host = task.host
    if host is not None and not is_loopback(host) and (confirm_host or "").strip().lower() != host.lower():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Type the host name {host} to confirm the send")


def _rights(user: BaseUser, task: PanelTask) -> dict[str, Any]:
    allowed = test_requests_allowed()
    can_edit = may_use_connection(user, "PUT", task.conn_id)
    host = task.host
    reason = None
    if not allowed:
        reason = "Test requests are off ([billbee] allow_test_requests = False)."
    elif not can_edit:
        reason = f"You may not edit the connection {task.conn_id!r}."
    return {
        "test_request": allowed and can_edit,
        "test_request_reason": reason,
        "confirm_host": host if host is not None and not is_loopback(host) else None,
        "test_connection": connection_tests_enabled(),
    }


# -- answers ----------------------------------------------------------------------------


def overview(session: Session, ref: TaskRef, user: BaseUser) -> dict[str, Any]:
    """Everything the tab shows of one task instance."""
    task = load_task(session, ref)
    ti = task.task_instance
    data: dict[str, Any] = {
        "task": {
            **asdict(ref),
            "operator": task.operator,
            "state": str(ti.state) if ti.state else None,
            "try_number": ti.try_number,
            "run_state": _run_state(ti),
        },
        "kind": task.kind,
    }
    if task.kind == "other":
        return data
    config = task.config
    data["connection"] = {
        "conn_id": task.conn_id,
        "usable": isinstance(config, BillbeeConfig),
        "problem": None if isinstance(config, BillbeeConfig) else config,
        "base_url": config.base_url if isinstance(config, BillbeeConfig) else None,
    }
    data["rights"] = _rights(user, task)
    if task.kind == "customer":
        data["rendered"] = task.fields is not None
        data["request"] = task.request().as_dict() if task.fields is not None else None
        data["sends"] = task.operator not in VALIDATE_ONLY_OPERATORS
        data["response"] = _response(session, ref) if data["sends"] else None
        data["test_sends"] = sends(session, ref)
    else:
        data["import"] = import_overview(session, ref)
    return data


def _run_state(task_instance: Any) -> str | None:
    """The state of the task instance's DAG run (an import's summary comes at its end)."""
    run = getattr(task_instance, "dag_run", None)
    state = getattr(run, "state", None)
    return str(state) if state else None


def _response(session: Session, ref: TaskRef) -> Any:
    """The create task's record of Billbee's answer, or its return value."""
    answer = task_records.xcom_value(session, ref, RESPONSE_XCOM_KEY)
    if answer is not None:
        return answer
    returned = task_records.xcom_value(session, ref, "return_value")
    return {"outcome": "returned", **returned} if isinstance(returned, dict) else None


def sends(session: Session, ref: TaskRef) -> list[dict[str, Any]]:
    """The task instance's recorded test sends, newest first."""
    return task_records.test_sends(session, ref)


# -- imports ----------------------------------------------------------------------------


#: The file name each run file must have to be read by the tab (a ``.csv`` for the rejects,
#: whose name a DAG may choose). The locations come from an XCom, which a user who may edit
#: the DAG's task instances can also write through the REST API: the API server reads only
#: files that look like the import's own, never any file such a value names.
_NAMES = {"progress": PROGRESS_FILE, "summary": SUMMARY_FILE, "results": RESULTS_FILE}


def _files(session: Session, ref: TaskRef) -> dict[str, str]:
    files = task_records.xcom_value(session, ref, FILES_XCOM_KEY)
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items() if isinstance(v, str) and v and _named_right(str(k), v)}


def _named_right(kind: str, location: str) -> bool:
    name = location.rstrip("/").rsplit("/", 1)[-1]
    if kind in _NAMES:
        return name == _NAMES[kind]
    return kind != "rejects" or name.endswith(".csv")


def _location(text: str) -> Any:
    from billbee_provider.operators.run_files import to_location

    return to_location(text)


def import_overview(session: Session, ref: TaskRef) -> dict[str, Any]:
    """Progress, summary and the files of the import run this task belongs to."""
    from billbee_provider.imports.storage import read_json_object

    files = _files(session, ref)
    if not files:
        return {"files": {}, "progress": None, "summary": None, "note": "The task has not started yet."}
    try:
        progress = read_json_object(_location(files["progress"])) if "progress" in files else None
        summary = read_json_object(_location(files["summary"])) if "summary" in files else None
    except (OSError, ValueError) as exc:
        return {"files": files, "progress": None, "summary": None, "note": _unreachable(exc)}
    return {"files": files, "progress": progress, "summary": summary, "note": None}


def _unreachable(exc: Exception) -> str:
    return f"The run's files cannot be read from the API server: {shorten(str(exc), 300)}"


def rejects_page(session: Session, ref: TaskRef, offset: int, limit: int) -> dict[str, Any]:
    """One page of the rejects file: row, line, stage, field, reason."""
    from billbee_provider.imports.rejects import read_rejects_page

    files = _files(session, ref)
    if "rejects" not in files:
        return {"rows": [], "total": 0, "offset": offset, "limit": limit}
    try:
        page = read_rejects_page(_location(files["rejects"]), offset=offset, limit=limit)
    except (OSError, ValueError) as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, _unreachable(exc)) from None
    rows = [asdict(entry) for entry in page.rows]
    return {"rows": rows, "total": page.total, "offset": offset, "limit": limit}


def run_file(session: Session, ref: TaskRef, name: str) -> tuple[Any, str]:
    """The location and file name of the run's ``results`` or ``rejects`` file, or 404."""
    from billbee_provider.imports.files import REJECT_COLUMNS, RESULTS_COLUMNS
    from billbee_provider.imports.storage import local_path

    files = _files(session, ref)
    if name not in files:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"This run has no {name} file")
    location = _location(files[name])
    path = local_path(location)
    if path is not None and not path.exists():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"The {name} file is not there (yet)")
    if not _has_header(location, RESULTS_COLUMNS if name == "results" else REJECT_COLUMNS):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"This is not the run's {name} file")
    return location, files[name].rstrip("/").rsplit("/", 1)[-1]


def _has_header(location: Any, columns: tuple[str, ...]) -> bool:
    """Whether the file's first line is a CSV header with all of ``columns`` (read no further)."""
    import csv

    from billbee_provider.imports.storage import open_read

    try:
        with open_read(location) as stream:
            first = stream.readline(4096).decode("utf-8-sig")
    except (OSError, ValueError):
        return False
    header = next(csv.reader([first]), [])
    return set(columns) <= set(header)
