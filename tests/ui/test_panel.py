"""The "Billbee request" tab of the task-instance view, in a real browser, as a person uses it.

Create a customer from the Trigger form and read the tab of its ``create`` task (request,
Billbee's answer), press Validate, Test connection and Test request; see the problems of an
invalid customer on the ``validate`` task's tab; watch an import's progress, then its summary
and rejects; and prove that the tab's routes refuse anonymous users and let a viewer look but
not send. The last test reads the API server's log for secrets and customer values.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.sandbox_client import Sandbox
from tests.ui.harness import need_playwright

need_playwright()  # skips this module without it (fails with BILLBEE_UI_TESTS=required)

from playwright.sync_api import FrameLocator, Page, expect  # noqa: E402

from tests.ui import pages  # noqa: E402
from tests.ui.harness import AirflowUI  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ui]

Shot = Callable[[Page, str], Path]

CREATE_DAG = "billbee_create_customer"
IMPORT_DAG = "billbee_import_customers"
TAB = "Billbee request"
EXAMPLE_EMAIL = "juergen.weiss@example.de"
SAMPLE = Path(__file__).resolve().parents[2] / "dags" / "data" / "customers_sample.csv"


def ids_with_email(sandbox: Sandbox, email: str) -> list[int]:
    return sorted(int(c["Id"]) for c in sandbox.customers() if str(c.get("Email", "")).lower() == email)


def open_panel(page: Page, airflow_ui: AirflowUI, dag_id: str, run_id: str, task_id: str) -> FrameLocator:
    pages.open_task_instance(page, airflow_ui.base_url, dag_id, run_id, task_id)
    frame = pages.open_plugin_tab(page, TAB)
    expect(frame.locator("h1")).to_be_visible()
    return frame


def panel_query(run_id: str, task_id: str, dag_id: str = CREATE_DAG) -> str:
    return f"dag_id={dag_id}&run_id={quote(run_id, safe='')}&task_id={task_id}&map_index=-1"


def test_create_tab_shows_the_request_and_the_created_id_and_sends_a_test_request(
    page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    sandbox.reset()
    base = airflow_ui.base_url
    run_id = pages.trigger_via_form(page, base, CREATE_DAG)
    assert airflow_ui.wait_for_run(CREATE_DAG, run_id) == "success"
    [created_id] = ids_with_email(sandbox, EXAMPLE_EMAIL)

    frame = open_panel(page, airflow_ui, CREATE_DAG, run_id, "create")
    expect(frame.locator("#run-answer")).to_contain_text(f"Created: Id {created_id}")
    message = frame.locator("#request-message")
    expect(message).to_contain_text(f"POST {sandbox.base_url}/api/v1/customers")
    expect(message).to_contain_text("X-Billbee-Api-Key: ***")
    expect(message).to_contain_text("Authorization: Basic ***")
    expect(message).to_contain_text('"Name": "Jürgen Weiß"')  # indented UTF-8, no \u00fc escapes
    assert sandbox.config.api_key not in message.inner_text()
    expect(frame.locator("#validation-result")).to_contain_text("Valid against the Billbee schema")
    shot(page, "panel-create")

    frame.get_by_role("button", name="Validate").click()
    expect(frame.locator("#validation-result")).to_contain_text("checked")
    frame.get_by_role("button", name="Test connection").click()
    expect(frame.locator("#connection-result")).to_contain_text(f"Connected to Billbee at {sandbox.base_url}")

    time.sleep(1.1)  # the sandbox keeps Billbee's 2 creates/s per endpoint
    frame.get_by_role("button", name="Test request").click()
    result = frame.locator("#test-result")
    expect(result).to_contain_text("Billbee created customer Id")
    expect(result).to_contain_text("200")
    expect(frame.locator("#test-envelope")).to_contain_text('"ErrorCode": 0')
    expect(frame.locator("#test-sends")).to_contain_text("admin")
    new_ids = [i for i in ids_with_email(sandbox, EXAMPLE_EMAIL) if i != created_id]
    assert len(new_ids) == 1  # one test send, one more customer
    expect(result).to_contain_text(str(new_ids[0]))
    frame.locator("#test-request").scroll_into_view_if_needed()
    shot(page, "panel-test-request")

    # the test send is in Airflow's audit log too
    events = airflow_ui.api("GET", "/api/v2/eventLogs", params={"event": "billbee.test_request"}).json()
    assert any(e["run_id"] == run_id and e["task_id"] == "create" for e in events["event_logs"])

    # Rendered Templates: the body indented, with real umlauts
    pages.open_tab(page, "Rendered Templates")
    expect(page.get_by_text('"Name": "Jürgen Weiß"').first).to_be_visible()
    shot(page, "rendered-templates")


def test_an_invalid_customer_shows_its_problems_on_the_validate_tab(
    page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    invalid = {"Name": "Erika Mustermann", "Email": 42, "Type": 5, "Address": {"CountryCode": "Deutschland"}}
    run_id = pages.trigger_via_form(page, airflow_ui.base_url, CREATE_DAG, json_params={"Customer": invalid})
    assert airflow_ui.wait_for_run(CREATE_DAG, run_id) == "failed"

    frame = open_panel(page, airflow_ui, CREATE_DAG, run_id, "validate")
    problems = frame.locator("#validation-result")
    expect(problems).to_contain_text("3 problem(s)")
    for path in ("Address.CountryCode", "Email", "Type"):
        expect(problems.locator("code", has_text=re.compile(rf"^{re.escape(path)}$"))).to_be_visible()
    expect(frame.locator("#run-answer")).to_contain_text("only validates")
    expect(frame.get_by_role("button", name="Test request")).to_have_count(0)
    shot(page, "panel-invalid")

    pages.open_tab(page, "Logs")
    pages.expect_log_lines(page, "The customer body has 3 problem(s); nothing was sent to Billbee")

    # the create task never ran: its tab says so instead of guessing a request
    frame = open_panel(page, airflow_ui, CREATE_DAG, run_id, "create")
    expect(frame.locator("#request")).to_contain_text("has not rendered its request yet")


def test_import_tab_shows_progress_then_summary_and_rejects(
    page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    sandbox.reset()
    run_id = pages.trigger_via_form(page, airflow_ui.base_url, IMPORT_DAG)
    create = "create"  # the import group keeps plain task ids
    deadline = time.monotonic() + 120
    while airflow_ui.task_states(IMPORT_DAG, run_id).get(create) != "running":
        assert time.monotonic() < deadline, airflow_ui.task_states(IMPORT_DAG, run_id)
        time.sleep(0.5)

    frame = open_panel(page, airflow_ui, IMPORT_DAG, run_id, create)
    progress = frame.locator("#progress-table")
    expect(progress).to_contain_text("running", timeout=20_000)  # the sample takes ~15 s at 2/s
    # a few rows in, the rate and the ETA are known (the tab refreshes itself every 2 s)
    expect(progress.locator("td").nth(1)).not_to_have_text(re.compile(r"^0 / "), timeout=20_000)
    expect(progress).not_to_contain_text("unknown", timeout=20_000)
    shot(page, "panel-import-progress")

    assert airflow_ui.wait_for_run(IMPORT_DAG, run_id) == "success"
    expect(progress).to_contain_text("done", timeout=20_000)  # the tab refreshes by itself
    expect(frame.locator("#summary-facts")).to_contain_text("rows read")
    expect(frame.locator("#summary-counts")).to_contain_text("created")
    rejects = frame.locator("#rejects-table")
    expect(rejects.locator("tbody tr")).to_have_count(5)
    for field in ("Address.CountryCode", "Email", "Type"):
        expect(rejects).to_contain_text(field)
    expect(frame.get_by_role("link", name="results.csv")).to_be_visible()
    frame.locator("#rejects-section").scroll_into_view_if_needed()
    shot(page, "panel-import-rejects")

    answer = airflow_ui.api(
        "GET", f"/billbee/api/file?{panel_query(run_id, create, IMPORT_DAG)}&name=results"
    )
    assert answer.status_code == 200
    assert answer.content.decode("utf-8-sig").startswith('"row","key","billbee_id","status"')


PANEL_ROUTES = [
    ("GET", "/billbee/panel"),
    ("GET", "/billbee/static/panel.js"),
    ("GET", "/billbee/api/task"),
    ("GET", "/billbee/api/import"),
    ("GET", "/billbee/api/rejects"),
    ("GET", "/billbee/api/file?name=results"),
    ("POST", "/billbee/api/validate"),
    ("POST", "/billbee/api/test-connection"),
    ("POST", "/billbee/api/test-request"),
]


def test_anonymous_requests_are_refused_and_a_viewer_may_look_but_not_send(
    make_page: Callable[..., Page], airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    run_id = airflow_ui.api("POST", f"/api/v2/dags/{CREATE_DAG}/dagRuns", json={"logical_date": None}).json()[
        "dag_run_id"
    ]
    assert airflow_ui.wait_for_run(CREATE_DAG, run_id) == "success"
    query = panel_query(run_id, "create")
    customers_before = len(sandbox.customers())

    for method, route in PANEL_ROUTES:
        url = f"{airflow_ui.base_url}{route}{'&' if '?' in route else '?'}{query}"
        anonymous = requests.request(method, url, json={}, timeout=30)
        assert anonymous.status_code == 401, (method, route, anonymous.status_code)
        forged = requests.request(method, url, json={}, headers={"Authorization": "Bearer x.y.z"}, timeout=30)
        assert forged.status_code in (401, 403), (method, route, forged.status_code)

    assert airflow_ui.api("GET", f"/billbee/api/task?{query}", user="viewer").status_code == 200
    for route in ("test-request", "test-connection"):
        answer = airflow_ui.api("POST", f"/billbee/api/{route}?{query}", json={}, user="viewer")
        assert answer.status_code == 403, (route, answer.text)
    # a form post from another site (not JSON) is refused even for an admin
    form = airflow_ui.api("POST", f"/billbee/api/test-request?{query}", data={"confirm_host": "x"})
    assert form.status_code == 415
    assert len(sandbox.customers()) == customers_before

    viewer = make_page("viewer")
    frame = open_panel(viewer, airflow_ui, CREATE_DAG, run_id, "create")
    expect(frame.get_by_role("button", name="Test request")).to_be_disabled()
    expect(frame.locator("#test-request-disabled")).to_contain_text("may not edit the connection")
    shot(viewer, "panel-viewer")


def sample_values() -> set[str]:
    """E-mails and names of the sample file's customers (personal data)."""
    with SAMPLE.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return {row[k] for row in rows for k in ("Email", "Name") if row.get(k) and "@" in row["Email"]}


def test_the_api_servers_log_holds_no_secret_and_no_customer_value(
    airflow_ui: AirflowUI, sandbox: Sandbox
) -> None:
    """Runs last in this module: after the panel's routes have answered every kind of request."""
    log = airflow_ui.log_paths["api-server"].read_text(encoding="utf-8", errors="replace")
    assert "/billbee/api/test-request" in log  # the log is the right one, and it saw the sends
    forbidden = {sandbox.config.api_key, sandbox.config.api_password, EXAMPLE_EMAIL, "Jürgen", "Weiß"}
    found = sorted(value for value in forbidden | sample_values() if value in log)
    assert found == []
