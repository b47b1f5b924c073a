"""Fixtures of the browser tests: the Billbee sandbox, Airflow with the UI, chromium, pages.

Session-scoped (started once, stopped at the end): ``sandbox``, ``airflow_ui``, ``browser``.
Per test: ``page`` (admin, logged in through the login form), ``make_page(user)`` for more
pages or other users, ``shot(page, name)`` for screenshots into ``tests/ui/artifacts/``.

Without chromium (``/usr/bin/chromium``, or ``$BILLBEE_UI_CHROMIUM``) or playwright the tests
skip with the reason; with ``BILLBEE_UI_TESTS=required`` (CI) they fail instead. Every test
here is marked ``slow`` and ``ui``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.sandbox_client import Sandbox, sandbox_factory
from tests.ui.harness import (
    CHROMIUM_ARGS,
    AirflowUI,
    browser_problem,
    chromium_path,
    ui_tests_required,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

UI_DIR = Path(__file__).resolve().parent
ARTIFACTS = UI_DIR / "artifacts"
#: Playwright's waits for an element or a navigation (a click, expect(...)); runs are waited
#: for with ``airflow_ui.wait_for_run`` instead.
ACTION_TIMEOUT_MS = 20_000
EXPECT_TIMEOUT_MS = 15_000


# -- every test here: slow, ui --------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if UI_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.ui)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failure: a screenshot of every open page, and the tail of Airflow's logs."""
    outcome = yield
    report = outcome.get_result()
    if report.when not in ("setup", "call") or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    for index, page in enumerate(funcargs.get("_open_pages", [])):
        try:
            path = _artifact_dir(item.name) / f"FAILED-{report.when}-{index}.png"
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("ui screenshot", f"{path} (at {page.url})"))
        except Exception as exc:  # a closed page or browser: the report matters more
            report.sections.append(("ui screenshot", f"none: {exc}"))
    airflow = funcargs.get("airflow_ui")
    if isinstance(airflow, AirflowUI):
        report.sections.append(("airflow server logs (tail)", airflow.logs_tail(25)))


# -- prerequisites ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_prerequisites() -> None:
    """Skip (or, with BILLBEE_UI_TESTS=required, fail) without chromium or playwright."""
    problem = browser_problem()
    if problem is None:
        return
    if ui_tests_required():
        pytest.fail(f"UI tests are required here but cannot run: {problem}", pytrace=False)
    pytest.skip(f"UI tests skipped: {problem}")


# -- servers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox(ui_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The Billbee sandbox of the session on a free loopback port (its default credentials:
    ``sandbox.config.user`` / ``.api_password`` / ``.api_key``; Billbee's real rate limits)."""
    with sandbox_factory(tmp_path_factory.mktemp("ui-sandbox"), seed=7) as start:
        yield start()


@pytest.fixture(scope="session")
def airflow_ui(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUI]:
    """Airflow (API server + scheduler + DAG processor + triggerer) in a temp AIRFLOW_HOME.

    ``billbee_default`` is the sandbox (an ``AIRFLOW_CONN_`` variable: not in the connections
    list), the pool ``billbee_api`` has one slot, users ``admin`` and ``viewer``.
    """
    home = tmp_path_factory.mktemp("ui-airflow-home")
    airflow = AirflowUI(home, extra_env={"AIRFLOW_CONN_BILLBEE_DEFAULT": sandbox.conn_json()})
    try:
        airflow.start()
        airflow.add_pool("billbee_api", 1, "Billbee API: one slot per account")
        print(
            f"\nAirflow UI at {airflow.base_url} up in {airflow.startup_seconds:.1f} s "
            f"(logs: {airflow.logs_dir})"
        )
        yield airflow
    finally:
        airflow.stop()


# -- browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright_instance(ui_prerequisites: None) -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Headless chromium (Debian's, never a downloaded one)."""
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def _open_pages() -> list[Page]:
    """The pages a test opened (the failure screenshot takes them all)."""
    return []


@pytest.fixture
def make_page(
    browser: Browser, airflow_ui: AirflowUI, _open_pages: list[Page]
) -> Iterator[Callable[..., Page]]:
    """``make_page(user="admin", login=True)``: a page in a fresh browser context (own cookies),
    signed in through the login form as ``user``; closed after the test."""
    from playwright.sync_api import expect

    from tests.ui import pages  # imports playwright: not at the top, so that collection works without it

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    contexts = []

    def make(user: str = "admin", login: bool = True) -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=airflow_ui.base_url)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=airflow_ui.base_url)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        _open_pages.append(page)
        if login:
            pages.login(page, airflow_ui.base_url, user, airflow_ui.users[user])
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(make_page: Callable[..., Page]) -> Page:
    """A page signed in as admin through the real login form."""
    return make_page("admin")


@pytest.fixture
def login(airflow_ui: AirflowUI) -> Callable[[Page, str, str], None]:
    """``login(page, user, password)``: sign in through the login form of this Airflow."""

    def sign_in(page: Page, user: str, password: str) -> None:
        from tests.ui import pages

        pages.login(page, airflow_ui.base_url, user, password)

    return sign_in


# -- screenshots ------------------------------------------------------------------------------


def _artifact_dir(test_name: str) -> Path:
    path = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``shot(page, name)``: a full-page PNG in ``tests/ui/artifacts/<test>/NN-<name>.png``."""
    directory = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(directory, ignore_errors=True)  # only this run's steps
    count = 0

    def take(page: Page, name: str) -> Path:
        nonlocal count
        count += 1
        safe = re.sub(r"[^\w.-]+", "_", name)
        path = _artifact_dir(request.node.name) / f"{count:02d}-{safe}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
