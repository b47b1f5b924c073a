"""What a person does in the Airflow 3.3.2 UI, as functions on a Playwright ``Page``.

Locators are roles, labels and visible text. DOM facts they rely on (seen in chromium):

- Login: ``/auth/login``, fields labelled "Username" and "Password", button "Sign in".
- Dialogs (Add Connection, Trigger Dag) are ``role=dialog``.
- Switches (e.g. the Trigger form's "Dry run") hide their checkbox: a click goes to its label.
- Object params and "Extra Fields JSON" are Monaco editors: typed text gets auto-closed
  brackets and quotes, so a new value is pasted (clipboard permission granted by the
  ``make_page`` fixture).
- The connection form's extra fields (e.g. "API key") have a ``<label for>`` that does not
  match their input's id: find them through their field group (:func:`field`).
- Task-instance tabs (Logs, Rendered Templates, ..., plugin tabs) are links named by their
  title; Logs is the default tab of ``/dags/<dag>/runs/<run>/tasks/<task>``. A plugin tab is
  ``.../tasks/<task>/plugin/<url_route>`` and shows an iframe titled like the tab
  (:func:`open_plugin_tab`).
- After Trigger the UI goes to the new run's page, ``/dags/<dag>/runs/<run_id>``;
  :func:`submit_trigger` returns the run id from the API's answer.
- Toasts are ``role=status`` with a title and a description line.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from playwright.sync_api import FrameLocator, Locator, Page, Response, expect

#: The titles of the connections list's test toasts (admin.json of the UI: connections.test*).
TEST_OK_TITLE = "Test Connection Successful"
TEST_FAILED_TITLE = "Test Connection Failed"


def login(page: Page, base_url: str, user: str, password: str) -> None:
    """Sign in through the real login form; return on the UI's home page."""
    page.goto(f"{base_url}/")
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(base_url) + r"/?(\?.*)?$"))
    expect(page.get_by_role("button", name="User")).to_be_visible()


def label_text(label: str) -> re.Pattern[str]:
    """Exactly ``label``, with or without the ``*`` a required field's label ends with."""
    return re.compile(rf"^\s*{re.escape(label)}\s*\*?\s*$")


def field(scope: Page | Locator, label: str) -> Locator:
    """The form field group (``role=group``) whose label is exactly ``label`` (``*`` ignored)."""
    pattern = label_text(label)
    page = scope if isinstance(scope, Page) else scope.page  # an inner locator starts at the page
    return scope.locator("[role=group]").filter(has=page.locator("label").filter(has_text=pattern)).first


def set_switch(scope: Page | Locator, label: str, on: bool = True) -> None:
    """Turn a switch (e.g. "Dry run") on or off by clicking it, as a person does."""
    box = scope.get_by_label(label_text(label))
    if box.is_checked() != on:
        box.locator("xpath=..").click()  # the visible switch is the checkbox's label
    expect(box).to_be_checked(checked=on)


def paste_into_editor(page: Page, editor_field: Locator, text: str) -> None:
    """Replace a Monaco editor's whole content with ``text``: click, select all, paste."""
    editor_field.get_by_role("code").click()
    page.keyboard.press("ControlOrMeta+A")
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    page.keyboard.press("ControlOrMeta+V")


# -- connections --------------------------------------------------------------------------


def open_connections(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/connections")
    expect(page.get_by_role("button", name="Add Connection")).to_be_visible()


def fill_billbee_connection_form(
    page: Page,
    conn_id: str,
    *,
    host: str,
    login: str,
    password: str,
    api_key: str | None = None,
    extra_fields: dict[str, str] | None = None,
) -> Locator:
    """Open Add Connection, choose type Billbee and fill it (not saved); return the dialog.

    ``extra_fields`` fills more of the "Extra Fields" by label (e.g. ``{"Max retries": "0"}``).
    The dialog is left with "Extra Fields" open.
    """
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Add Connection")).to_be_visible()
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_role("combobox", name="Connection Type").fill("Billbee")
    page.get_by_role("option", name="Billbee", exact=True).click()
    dialog.get_by_label("Host", exact=True).fill(host)
    dialog.get_by_label("Billbee user name / e-mail").fill(login)
    dialog.get_by_label("API password", exact=True).fill(password)
    fields = {**({"API key": api_key} if api_key is not None else {}), **(extra_fields or {})}
    if fields:
        dialog.get_by_role("button", name="Extra Fields", exact=True).click()
        for label, value in fields.items():
            field(dialog, label).locator("input").first.fill(value)
    return dialog


def save_connection(page: Page, dialog: Locator, conn_id: str) -> None:
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/connections")
    ) as answer:
        dialog.get_by_role("button", name="Save").click()
    assert answer.value.status in (200, 201), f"saving {conn_id}: {answer.value.status} {answer.value.text()}"
    expect(dialog).to_be_hidden()
    expect(connection_row(page, conn_id)).to_be_visible()


def connection_row(page: Page, conn_id: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))


def click_test_connection(page: Page, base_url: str, conn_id: str) -> tuple[Locator, Response]:
    """Click the list's "Test Connection" icon of ``conn_id``; return its toast and the API answer.

    The list is opened fresh first, so that no earlier toast is on screen.
    """
    open_connections(page, base_url)
    row = connection_row(page, conn_id)
    expect(row).to_be_visible()
    with page.expect_response(lambda r: "/api/v2/connections/test" in r.url) as answer:
        row.get_by_role("button", name="Test Connection").click()
    toast = page.get_by_role("status").filter(has_text=re.compile(f"{TEST_OK_TITLE}|{TEST_FAILED_TITLE}"))
    expect(toast.first).to_be_visible()
    settle(toast.first)
    return toast.first, answer.value


def settle(locator: Locator) -> None:
    """Wait for the element's animations (a toast sliding in, a dialog opening) to finish."""
    locator.evaluate(
        "e => Promise.all(e.getAnimations({subtree: true}).filter(a => a.playState !== 'idle')"
        ".map(a => a.finished.catch(() => null)))"
    )


def toast_description(toast: Locator) -> Locator:
    """The description line of a toast (under its title)."""
    return toast.locator("[id$=':description']")


# -- DAGs, runs, task instances ---------------------------------------------------------------


def open_trigger_form(page: Page, base_url: str, dag_id: str) -> Locator:
    """Open the DAG's page and its Trigger dialog; return the dialog."""
    page.goto(f"{base_url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(
        dialog.get_by_role("heading", name=re.compile(rf"Trigger Dag\s+-\s+{re.escape(dag_id)}"))
    ).to_be_visible()
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    return dialog


def set_json_param(page: Page, dialog: Locator, label: str, value: Any) -> None:
    """Replace an object param's JSON (e.g. "Customer") in the Trigger form."""
    paste_into_editor(page, field(dialog, label), json.dumps(value, ensure_ascii=False, indent=2))


def submit_trigger(page: Page, dialog: Locator, dag_id: str) -> str:
    """Click Trigger; return the new run's id (from the API's answer; the UI then shows the run)."""
    submit = dialog.get_by_test_id("trigger-dag-submit")
    expect(submit).to_be_enabled()
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/api/v2/dags/{dag_id}/dagRuns")
    ) as answer:
        submit.click()
    assert answer.value.status in (200, 201), f"trigger {dag_id}: {answer.value.status} {answer.value.text()}"
    run_id: str = answer.value.json()["dag_run_id"]
    page.wait_for_url(re.compile(rf"/dags/{re.escape(dag_id)}/runs/"))
    return run_id


def trigger_via_form(
    page: Page,
    base_url: str,
    dag_id: str,
    *,
    switches: dict[str, bool] | None = None,
    json_params: dict[str, Any] | None = None,
) -> str:
    """Trigger ``dag_id`` from its Trigger form, changing only the given fields; return the run id.

    ``switches``: e.g. ``{"Dry run": True}``; ``json_params``: e.g. ``{"Customer": {...}}``
    (by the params' titles).
    """
    dialog = open_trigger_form(page, base_url, dag_id)
    for label, on in (switches or {}).items():
        set_switch(dialog, label, on)
    for label, value in (json_params or {}).items():
        set_json_param(page, dialog, label, value)
    return submit_trigger(page, dialog, dag_id)


def task_instance_url(base_url: str, dag_id: str, run_id: str, task_id: str, tab: str = "") -> str:
    """``/dags/<dag>/runs/<run>/tasks/<task>[/<tab>]`` (``tab`` e.g. ``plugin/billbee-request``)."""
    url = f"{base_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"
    return f"{url}/{tab}" if tab else url


def open_task_instance(
    page: Page, base_url: str, dag_id: str, run_id: str, task_id: str, tab: str = ""
) -> None:
    """Open a task instance's page (its Logs tab unless ``tab``)."""
    page.goto(task_instance_url(base_url, dag_id, run_id, task_id, tab))
    expect(page.get_by_role("link", name="Logs", exact=True)).to_be_visible()


def open_tab(page: Page, name: str) -> None:
    """Click a tab of the task-instance page (Logs, Rendered Templates, a plugin's tab...)."""
    page.get_by_role("link", name=name, exact=True).click()


def open_plugin_tab(page: Page, name: str) -> FrameLocator:
    """Click a plugin's tab (an external view, e.g. "Billbee request"); return its iframe.

    The tab's content is a same-origin ``<iframe title="<name>">`` of the view's ``href``
    (``{DAG_ID}``, ``{RUN_ID}`` (URL-encoded), ``{TASK_ID}`` filled in; ``{MAP_INDEX}`` stays
    literal on a task that is not mapped); it is signed in by the UI's ``_token`` cookie.
    """
    open_tab(page, name)
    expect(page.locator(f"iframe[title={json.dumps(name)}]")).to_be_attached()
    return page.frame_locator(f"iframe[title={json.dumps(name)}]")


def expect_log_lines(page: Page, *texts: str, timeout: float = 30_000) -> None:
    """Each text is visible in the open log (the log view loads and streams after the page)."""
    for text in texts:
        expect(page.get_by_text(text).first).to_be_visible(timeout=timeout)
