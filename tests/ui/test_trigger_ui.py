"""Triggering the example DAGs from their Trigger forms, and reading the outcome in the task logs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sandbox_client import Sandbox
from tests.ui.harness import need_playwright

need_playwright()  # skips this module without it (fails with BILLBEE_UI_TESTS=required)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.ui import pages  # noqa: E402
from tests.ui.harness import AirflowUI  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ui]

Shot = Callable[[Page, str], Path]

CREATE_DAG = "billbee_create_customer"
IMPORT_DAG = "billbee_import_customers"
#: the e-mail of the customer the Trigger form of billbee_create_customer is pre-filled with
EXAMPLE_EMAIL = "juergen.weiss@example.de"


def customers_with_email(sandbox: Sandbox, email: str) -> list[dict[str, object]]:
    return [c for c in sandbox.customers() if str(c.get("Email", "")).lower() == email]


def test_create_customer_dry_run_then_for_real(
    page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    sandbox.reset()  # other tests (an import) may have created the example customer already
    base = airflow_ui.base_url

    # 1. Dry run: the form as it comes, with "Dry run" ticked
    dialog = pages.open_trigger_form(page, base, CREATE_DAG)
    expect(dialog.get_by_text(EXAMPLE_EMAIL)).to_be_visible()  # the pre-filled example customer
    pages.set_switch(dialog, "Dry run", True)
    shot(page, "trigger-form-dry-run")
    dry_run = pages.submit_trigger(page, dialog, CREATE_DAG)
    expect(page.get_by_text(dry_run).first).to_be_visible()
    shot(page, "dry-run-triggered")
    assert airflow_ui.wait_for_run(CREATE_DAG, dry_run) == "success"
    assert airflow_ui.task_states(CREATE_DAG, dry_run) == {"validate": "success", "create": "success"}
    assert customers_with_email(sandbox, EXAMPLE_EMAIL) == []  # nothing sent
    pages.open_task_instance(page, base, CREATE_DAG, dry_run, "create")
    pages.expect_log_lines(page, "Dry run: would POST")
    shot(page, "dry-run-create-log")

    # 2. The real run: the same form, "Dry run" left off
    dialog = pages.open_trigger_form(page, base, CREATE_DAG)
    expect(dialog.get_by_label(pages.label_text("Dry run"))).not_to_be_checked()
    shot(page, "trigger-form-real")
    real_run = pages.submit_trigger(page, dialog, CREATE_DAG)
    assert airflow_ui.wait_for_run(CREATE_DAG, real_run) == "success"
    created = customers_with_email(sandbox, EXAMPLE_EMAIL)
    assert len(created) == 1, created
    pages.open_task_instance(page, base, CREATE_DAG, real_run, "create")
    pages.expect_log_lines(page, str(created[0]["Id"]))
    shot(page, "real-run-create-log")
    page.goto(f"{base}/dags/{CREATE_DAG}/runs/{real_run}")
    expect(page.get_by_text("Success").first).to_be_visible()
    shot(page, "real-run")


def test_invalid_customer_fails_validate_and_its_log_names_the_problems(
    page: Page, airflow_ui: AirflowUI, sandbox: Sandbox, shot: Shot
) -> None:
    base = airflow_ui.base_url
    invalid = {
        "Name": "Erika Mustermann",
        "Email": 42,  # not a string
        "Type": 0,
        "Nickname": "Eri",  # not a Billbee field
        "Address": {"City": "Köln", "CountryCode": "Deutschland"},  # not ISO 3166-1 alpha-2
    }
    dialog = pages.open_trigger_form(page, base, CREATE_DAG)
    pages.set_json_param(page, dialog, "Customer", invalid)
    expect(dialog.get_by_text('"Nickname"')).to_be_visible()
    shot(page, "trigger-form-invalid-customer")
    run_id = pages.submit_trigger(page, dialog, CREATE_DAG)
    assert airflow_ui.wait_for_run(CREATE_DAG, run_id) == "failed"
    assert airflow_ui.task_states(CREATE_DAG, run_id) == {"validate": "failed", "create": "upstream_failed"}

    pages.open_task_instance(page, base, CREATE_DAG, run_id, "validate")
    pages.open_tab(page, "Logs")
    pages.expect_log_lines(
        page,
        "The customer body has 3 problem(s); nothing was sent to Billbee",
        "Address.CountryCode: 'Deutschland' is not an ISO 3166-1 alpha-2 country code",
        "Email: expected a string, got integer 42",
        "Nickname: unknown field",
    )
    shot(page, "validate-log")
    assert customers_with_email(sandbox, "42") == []


def test_import_customers_with_the_form_defaults(page: Page, airflow_ui: AirflowUI, shot: Shot) -> None:
    base = airflow_ui.base_url
    dialog = pages.open_trigger_form(page, base, IMPORT_DAG)
    expect(pages.field(dialog, "Customer file").locator("input")).to_have_value(
        str(Path(__file__).resolve().parents[2] / "dags" / "data" / "customers_sample.csv")
    )
    shot(page, "trigger-form-defaults")
    run_id = pages.submit_trigger(page, dialog, IMPORT_DAG)
    assert airflow_ui.wait_for_run(IMPORT_DAG, run_id, timeout=240) == "success"

    pages.open_task_instance(page, base, IMPORT_DAG, run_id, "report")
    pages.expect_log_lines(page, "Billbee import summary", "rows read", "valid rows, by outcome:", "created")
    shot(page, "report-log")
