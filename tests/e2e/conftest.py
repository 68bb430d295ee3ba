"""Browser fixtures: one Streamlit server for the session, Debian's Chromium, a wide page.

The server runs the real app on the bundled sample (MLPDASH_DATA=sample) with its runs in a temporary
folder, on a free port; its output goes to a file that is printed when a test fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from streamlit_page import VIEWPORT, full_page_screenshot, open_app, served, stop_any_run, streamlit_warnings

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("MLPDASH_CHROMIUM", "/usr/lib/chromium/chromium")
# An expectation given no time of its own waits this long, not Playwright's 5 s: on 2 cores shared by
# the server, its training and Chromium, a rerun can take seconds (status lines here read 2,400
# samples/s under load against 13,000 alone). Times that matter are given where they are checked, or
# measured by the benchmarks.
expect.set_options(timeout=15_000)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the item, so fixtures can tell whether a test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared server's runs, drawings and log, outside pytest's numbered temp folders (which a
    concurrent pytest run may prune)."""
    path = Path(tempfile.mkdtemp(prefix="mlpdash-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_server(shared_dir: Path):
    """The URL of the Streamlit server most modules share, running app.py on the sample."""
    with served(shared_dir / "server.log") as url:
        yield url
    _no_streamlit_warnings(shared_dir / "server.log")


def _no_streamlit_warnings(log: Path) -> None:
    """Fails the module (or the session) whose server logged a Streamlit warning: a fragment's
    callback drawing elements, a widget given a value twice and the like (issue 21 found 16)."""
    warnings = streamlit_warnings(log)
    assert not warnings, "Streamlit warned in the server log:\n" + "\n".join(warnings)


def _own_server(request) -> bool:
    """Whether the module asks for a server of its own (`OWN_SERVER = True`): one that trains or saves
    drawings before the page tests run, which expect an idle first view and an empty drawings folder."""
    return bool(getattr(request.module, "OWN_SERVER", False))


@pytest.fixture(scope="module")
def server_dir(request, tmp_path_factory) -> Path:
    """The folder of the server this module's pages talk to: its runs, drawings and log."""
    if _own_server(request):
        return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    return request.getfixturevalue("shared_dir")


@pytest.fixture(scope="module")
def server_log(server_dir: Path) -> Path:
    return server_dir / "server.log"


@pytest.fixture(scope="module")
def app_url(request, server_log: Path):
    """The URL of the server this module's pages talk to (the shared one, or the module's own)."""
    if _own_server(request):
        with served(server_log) as url:
            yield url
        _no_streamlit_warnings(server_log)
    else:
        yield request.getfixturevalue("shared_server")


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    # Streamlit saves a dataframe's CSV through the File System Access picker where the browser has one;
    # without it, it falls back to a plain download that Playwright can catch.
    context.add_init_script("delete window.showSaveFilePicker;")
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, app_url: str, server_log: Path, request) -> Page:
    """A fresh tab on the app, waited on until the first script run has finished.

    Afterwards: on failure a screenshot, the browser's page errors and the server log tail; always,
    any run still going is stopped, so the next test starts from an idle server.
    """
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    open_app(page, app_url)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            full_page_screenshot(page, SCREENSHOTS / f"FAILED-{request.node.name}.png")
        except Exception:  # noqa: BLE001 - a failure shot must never hide the real failure
            pass
        print(f"\n--- browser page errors: {errors or 'none'}")
        print(f"--- streamlit server log (tail) {server_log}:\n{server_log.read_text()[-6000:]}")
    stop_any_run(context, app_url)


@pytest.fixture(scope="session")
def screenshot():
    """shot(page, name): a full-page PNG under artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        full_page_screenshot(page, path)
        return path

    return shot
