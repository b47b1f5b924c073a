"""What Airflow's metadata DB holds about one task instance, as the panel needs it.

The panel runs inside the API server, so it reads the metadata DB through Airflow's own
models: the task instance, its rendered fields (``rendered_task_instance_fields``, what the
Rendered Templates tab shows), its XComs, and the audit log (``log``), where every test
send is recorded as an event of its own (:data:`TEST_SEND_EVENT`) and so also shows in
Airflow's Browse > Audit Log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The audit-log event of a test send from the panel.
TEST_SEND_EVENT = "billbee.test_request"
#: How many earlier test sends the panel lists.
TEST_SENDS_SHOWN = 20


@dataclass(frozen=True)
class TaskRef:
    """One task instance, as the panel's URL names it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @classmethod
    def from_query(cls, dag_id: str, run_id: str, task_id: str, map_index: str | int | None) -> TaskRef:
        """Build it from the query string; ``map_index`` that is not an integer is -1.

        Airflow 3.3 leaves the literal text ``{MAP_INDEX}`` in the tab's URL of a task
        that is not mapped.
        """
        return cls(dag_id, run_id, task_id, parse_map_index(map_index))


def parse_map_index(value: str | int | None) -> int:
    """The map index in ``value``, or -1 (not mapped) for anything that is not an integer."""
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return -1


def find_task_instance(session: Session, ref: TaskRef) -> Any:
    """The :class:`~airflow.models.taskinstance.TaskInstance`, or ``None``."""
    from airflow.models.taskinstance import TaskInstance

    return session.scalar(
        select(TaskInstance).where(
            TaskInstance.dag_id == ref.dag_id,
            TaskInstance.run_id == ref.run_id,
            TaskInstance.task_id == ref.task_id,
            TaskInstance.map_index == ref.map_index,
        )
    )


def rendered_fields(session: Session, ref: TaskRef) -> dict[str, Any] | None:
    """The task's rendered template fields (stored when the task starts), or ``None``."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif

    fields = session.scalar(
        select(Rtif.rendered_fields).where(
            Rtif.dag_id == ref.dag_id,
            Rtif.run_id == ref.run_id,
            Rtif.task_id == ref.task_id,
            Rtif.map_index == ref.map_index,
        )
    )
    return dict(fields) if isinstance(fields, dict) else None


def xcom_value(session: Session, ref: TaskRef, key: str) -> Any:
    """The value of the task's XCom ``key`` (``None`` if it has none)."""
    from airflow.models.xcom import XComModel

    row = session.scalar(
        select(XComModel).where(
            XComModel.dag_id == ref.dag_id,
            XComModel.run_id == ref.run_id,
            XComModel.task_id == ref.task_id,
            XComModel.map_index == ref.map_index,
            XComModel.key == key,
        )
    )
    if row is None:
        return None
    value = XComModel.deserialize_value(row)
    if isinstance(value, str):
        try:  # values set through the Task Execution API may arrive as JSON text
            return json.loads(value)
        except ValueError:
            return value
    return value


def record_test_send(session: Session, task_instance: Any, user: str, result: dict[str, Any]) -> None:
    """Add a test send to the audit log: who, when (the record's time), which task, what came back.

    :param result: only the outcome, status, Id and error name are kept: no body, no values.
    """
    from airflow.models.log import Log

    kept = {k: result.get(k) for k in ("outcome", "status", "Id", "error_name", "elapsed_ms", "host")}
    session.add(Log(TEST_SEND_EVENT, task_instance=task_instance, owner=user, extra=json.dumps(kept)))
    session.commit()


def test_sends(session: Session, ref: TaskRef) -> list[dict[str, Any]]:
    """The latest test sends of this task instance, newest first."""
    from airflow.models.log import Log

    rows = session.scalars(
        select(Log)
        .where(
            Log.event == TEST_SEND_EVENT,
            Log.dag_id == ref.dag_id,
            Log.run_id == ref.run_id,
            Log.task_id == ref.task_id,
            Log.map_index == ref.map_index,
        )
        .order_by(Log.dttm.desc())
        .limit(TEST_SENDS_SHOWN)
    )
    sends = []
    for row in rows:
        try:
            extra = json.loads(row.extra or "{}")
        except ValueError:
            extra = {}
        sends.append({"when": row.dttm.isoformat() if row.dttm else None, "who": row.owner, **extra})
    return sends
