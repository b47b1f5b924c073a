"""The "Billbee request" panel: a FastAPI app mounted on Airflow's API server under ``/billbee``.

The provider's plugin (:mod:`billbee_provider.plugins.billbee_panel`) shows ``/billbee/panel``
as a tab of every task instance. The page (``static/``) calls the JSON routes below, and
they answer from the metadata DB (rendered fields, XComs, the audit log), the run's files,
and, for the two buttons that talk to Billbee, through the task's connection.

Access is Airflow's own: every route resolves the user from the API server's ``_token``
cookie or a bearer token (401 without one) and asks the auth manager, as Airflow's routes
do. Viewing needs read access to the DAG's task instances. Test request needs edit access
to them and to the task's connection, and ``[billbee] allow_test_requests = True``.
Test connection needs what Airflow's own connection test needs: ``[core] test_connection =
Enabled`` and the right to create connections, plus read access to this one. Requests
that change something must be JSON (``Content-Type: application/json``), which a
cross-site form cannot send. Nothing here logs a body, a value or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from billbee_provider.ui import panel_data
from billbee_provider.ui.task_records import TaskRef, find_task_instance, record_test_send

#: The static files of the page, by name, with their media types.
_STATIC = {"panel.js": "text/javascript", "panel.css": "text/css"}

router = APIRouter()


def task_ref(
    dag_id: Annotated[str, Query(max_length=250)],
    run_id: Annotated[str, Query(max_length=250)],
    task_id: Annotated[str, Query(max_length=250)],
    map_index: Annotated[str, Query(max_length=20)] = "-1",
) -> TaskRef:
    """The task instance named by the query string (``map_index`` not an integer: -1)."""
    return TaskRef.from_query(dag_id, run_id, task_id, map_index)


TaskRefDep = Annotated[TaskRef, Depends(task_ref)]
CanRead = Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))
CanEdit = Depends(requires_access_dag("PUT", DagAccessEntity.TASK_INSTANCE))


def json_request(request: Request) -> None:
    """Refuse a request that changes something unless it is JSON (no cross-site form posts)."""
    if not request.headers.get("content-type", "").lower().startswith("application/json"):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Send this request as application/json")


@router.get("/panel", response_class=HTMLResponse, dependencies=[CanRead])
def panel(ref: TaskRefDep) -> HTMLResponse:
    """The tab: a static page that reads its task from the URL and asks the routes below."""
    page = resources.files("billbee_provider.ui").joinpath("static/panel.html").read_text("utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/static/{name}")
def static_file(name: str, user: GetUserDep) -> Response:
    """The page's script and style sheet (for signed-in users only, like every route here)."""
    if name not in _STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No such file")
    content = resources.files("billbee_provider.ui").joinpath(f"static/{name}").read_bytes()
    return Response(content, media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})


@router.get("/api/task", dependencies=[CanRead])
def task_overview(ref: TaskRefDep, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
    """Everything the tab shows about the task instance, as JSON."""
    return panel_data.overview(session, ref, user)


@router.post("/api/validate", dependencies=[CanRead, Depends(json_request)])
def validate(ref: TaskRefDep, session: SessionDep) -> dict[str, Any]:
    """Check the task's body against the Billbee schema now. Never sends anything."""
    task = panel_data.customer_task(session, ref)
    return {"request": task.request().as_dict()}


@router.post("/api/test-connection", dependencies=[CanRead, Depends(json_request)])
def test_connection(ref: TaskRefDep, session: SessionDep, user: GetUserDep) -> dict[str, Any]:
    """One cheap read through the task's connection (like ``airflow connections test``)."""
    task = panel_data.customer_or_import_task(session, ref)
    panel_data.require_connection_test(user, task.conn_id)
    ok, message = task.test_connection()
    return {"ok": ok, "message": message, "conn_id": task.conn_id}


@router.post("/api/test-request", dependencies=[CanEdit, Depends(json_request)])
async def test_request(
    ref: TaskRefDep, request: Request, session: SessionDep, user: GetUserDep
) -> dict[str, Any]:
    """Send the task's body to Billbee once, and answer with Billbee's response.

    Creates a real customer. The JSON body may carry ``confirm_host``: the host name,
    typed by the user, which a send to a host other than loopback requires.
    """
    confirm = await _json_field(request, "confirm_host")
    task = panel_data.customer_task(session, ref)
    panel_data.require_test_request(user, task, confirm)
    result = task.send()
    ti = find_task_instance(session, ref)
    record_test_send(session, ti, user.get_name(), {**result, "host": task.host})
    return {"response": result, "test_sends": panel_data.sends(session, ref)}


@router.get("/api/import", dependencies=[CanRead])
def import_state(ref: TaskRefDep, session: SessionDep) -> dict[str, Any]:
    """Progress, summary and file locations of an import task (polled while it runs)."""
    return panel_data.import_overview(session, ref)


@router.get("/api/rejects", dependencies=[CanRead])
def rejects(
    ref: TaskRefDep,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """One page of the run's rejects: row, line, stage, field and reason (no values)."""
    return panel_data.rejects_page(session, ref, offset, limit)


@router.get("/api/file", dependencies=[CanRead])
def download(
    ref: TaskRefDep, session: SessionDep, name: Annotated[str, Query(pattern="^(results|rejects)$")]
) -> StreamingResponse:
    """The run's ``results.csv`` or ``rejects.csv``, streamed."""
    location, filename = panel_data.run_file(session, ref, name)
    return StreamingResponse(
        _chunks(location),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _chunks(location: Any) -> Iterator[bytes]:
    from billbee_provider.imports.storage import open_read

    with open_read(location) as stream:
        while chunk := stream.read(64 * 1024):
            yield chunk


async def _json_field(request: Request, name: str) -> str | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def create_app() -> FastAPI:
    """Build the panel's app (the plugin builds it on the first request)."""
    app = FastAPI(title="Billbee request panel", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app
