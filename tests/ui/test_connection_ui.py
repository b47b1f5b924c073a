"""Admin > Connections in a real browser: add a Billbee connection through the form, test it.

The list's "Test Connection" icon posts the stored connection with ``port: 0`` when its Port
is empty (Billbee's form hides Port), and Airflow 3.3.2 answers 400 "The host or port to
test differs from the stored connection" to that: the toast says "Bad Request". The Billbee
plugin's root middleware fixes this; without it these tests xfail with that reason. The
form flow itself is checked independently of the list action: the stored connection is read
back and tested through ``POST /api/v2/connections/test`` with the typed credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_client import Sandbox
from tests.ui.harness import need_playwright

need_playwright()  # skips this module without it (fails with BILLBEE_UI_TESTS=required)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.ui import pages  # noqa: E402
from tests.ui.harness import AirflowUI, free_port  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ui]

Shot = Callable[[Page, str], Path]


@dataclass(frozen=True)
class Case:
    conn_id: str
    #: what is typed into the form, with the sandbox's values where ``None``
    host: str | None = None
    password: str | None = None
    api_key: str | None = None
    ok: bool = False
    #: the provider's message (BillbeeHook.test_connection / explain_failure), as a regex
    message: str = ""


CASES = [
    Case("billbee_ui_ok", ok=True, message=r"^Connected to Billbee at {host} as {user}\.$"),
    Case(
        "billbee_ui_wrong_key",
        api_key="not-the-api-key",
        message=r"^Billbee rejected the API key \(extra field 'api_key'\)\. \(.*401.*\)$",
    ),
    Case(
        "billbee_ui_wrong_password",
        password="not-the-api-password",
        message=r"^Billbee rejected the user name or API password\. Use the account's API password "
        r"\(set in Billbee under Settings > API\), not the login password\. \(.*401.*\)$",
    ),
    Case(
        "billbee_ui_unreachable",
        host="http://127.0.0.1:{closed_port}",
        message=r"^Billbee is unreachable: .*{host}.*\. Check the Host and this machine's network/proxy\.$",
    ),
]


def typed_values(case: Case, sandbox: Sandbox) -> dict[str, str]:
    return {
        "host": (case.host or sandbox.base_url).format(closed_port=free_port()),
        "login": sandbox.config.user,
        "password": case.password or sandbox.config.api_password,
        "api_key": case.api_key or sandbox.config.api_key,
    }


def api_connection_test(airflow_ui: AirflowUI, conn_id: str, values: dict[str, str]) -> dict[str, Any]:
    """Test ``values`` through ``POST /api/v2/connections/test`` with full credentials (no port):
    the path that reaches the hook without the list action's port-0 problem."""
    body = {
        "connection_id": conn_id,
        "conn_type": "billbee",
        "host": values["host"],
        "login": values["login"],
        "password": values["password"],
        "extra": json.dumps({"api_key": values["api_key"]}),
    }
    answer = airflow_ui.api("POST", "/api/v2/connections/test", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def billbee_middleware_loaded(airflow_ui: AirflowUI) -> bool:
    """Whether a Billbee plugin with a root middleware (the list action's port fix) is loaded."""
    return any(
        "billbee" in name.lower() and plugin.get("fastapi_root_middlewares")
        for name, plugin in airflow_ui.plugin_names().items()
    )


@pytest.mark.parametrize("case", CASES, ids=[c.conn_id for c in CASES])
def test_add_billbee_connection_and_test_it_from_the_list(
    case: Case, page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    values = typed_values(case, sandbox)
    expected = re.compile(
        case.message.format(host=re.escape(values["host"]), user=re.escape(values["login"]))
    )

    # Admin > Connections > Add Connection, type Billbee, the four fields
    pages.open_connections(page, airflow_ui.base_url)
    shot(page, "connections-list")
    dialog = pages.fill_billbee_connection_form(
        page, case.conn_id, host=values["host"], login=values["login"], password=values["password"]
    )
    expect(dialog.get_by_label("Billbee user name / e-mail")).to_have_value(values["login"])
    expect(dialog.get_by_label("Host", exact=True)).to_have_attribute("placeholder", "https://app.billbee.io")
    shot(page, "form-standard-fields")
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    api_key = pages.field(dialog, "API key").locator("input")
    api_key.fill(values["api_key"])
    expect(api_key).to_have_attribute("type", "password")  # masked
    expect(dialog.get_by_text("Sent as X-Billbee-Api-Key")).to_be_visible()
    shot(page, "form-extra-fields")
    pages.save_connection(page, dialog, case.conn_id)
    row = pages.connection_row(page, case.conn_id)
    expect(row.get_by_role("cell", name="billbee", exact=True)).to_be_visible()
    expect(row.get_by_role("cell", name=values["host"], exact=True)).to_be_visible()
    shot(page, "saved")

    # the form stored what was typed (read back through the API), and the hook says so
    stored = airflow_ui.api("GET", f"/api/v2/connections/{case.conn_id}").json()
    assert (stored["conn_type"], stored["host"], stored["login"], stored["port"]) == (
        "billbee",
        values["host"],
        values["login"],
        None,
    )
    assert "api_key" in json.loads(stored["extra"])
    via_api = api_connection_test(airflow_ui, case.conn_id, values)
    assert via_api["status"] is case.ok, via_api
    assert expected.search(via_api["message"]), via_api["message"]

    # the list's "Test Connection" icon, as a person tests it
    toast, answer = pages.click_test_connection(page, airflow_ui.base_url, case.conn_id)
    shot(page, "test-connection-toast")
    if answer.status == 400 and not billbee_middleware_loaded(airflow_ui):
        expect(toast).to_contain_text(pages.TEST_FAILED_TITLE)
        pytest.xfail(
            f"Airflow 3.3.2's list action posts port 0 for a connection without a Port: 400 "
            f"{answer.text()!r} (toast: {toast.inner_text()!r}); "
            "the Billbee plugin's middleware is not loaded"
        )
    assert answer.status == 200, answer.text()
    expect(toast).to_contain_text(pages.TEST_OK_TITLE if case.ok else pages.TEST_FAILED_TITLE)
    expect(pages.toast_description(toast)).to_have_text(expected)
    for secret in (
        sandbox.config.api_password,
        sandbox.config.api_key,
        values["password"],
        values["api_key"],
    ):
        assert secret not in toast.inner_text()
