"""Helpers for driving the Streamlit page with Playwright, shared by conftest.py and the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from mlpdash.bench import free_port, wait_healthy

VIEWPORT = {"width": 1400, "height": 1000}
# While a fragment reruns, Streamlit keeps its previous elements in the page, marked data-stale and
# collapsed, until the new ones arrive: selectors read only the current ones.
FRESH = ":not([data-stale='true'])"
ACTIVE_STATUS = re.compile(r"^(Loading data|Training|Finishing|Paused|Stopping|Evaluating)")
# Streamlit scrolls inside its main block; a shot grows the viewport to the content, up to this.
MAX_SHOT_HEIGHT = 6000
REPO_ROOT = Path(__file__).resolve().parents[2]


def start_server(runs_dir: Path, log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """A Streamlit server running app.py on the bundled sample, on a free port; (process, URL) once
    it answers its health check. Its output goes to `log_path`."""
    port = free_port()
    environment = dict(os.environ, MLPDASH_DATA="sample", MLPDASH_RUNS=str(runs_dir),
                       TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                       # Each line with its level and logger, which Streamlit leaves out by default:
                       # the suite fails on a warning of Streamlit's (streamlit_warnings).
                       STREAMLIT_LOGGER_MESSAGE_FORMAT=LOG_FORMAT, **env)
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc, log_path)
    except BaseException:
        stop_server(proc)
        raise
    return proc, url


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A line Streamlit's own loggers wrote at WARNING or above ("2026-12-03 20:09:12.345 WARNING
# streamlit.elements.lib.policies: ..."): each is a misuse of Streamlit by the page.
STREAMLIT_WARNING = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL)\s+streamlit[\w.]*: .*$", re.MULTILINE)


def streamlit_warnings(log_path: Path) -> list[str]:
    """The warnings Streamlit logged in a server's log, each once, in order."""
    text = log_path.read_bytes().decode(errors="replace") if log_path.exists() else ""
    # Without the timestamp, so that a warning repeated on every rerun is listed once.
    return list(dict.fromkeys(match.group(0).split(" ", 2)[2] for match in STREAMLIT_WARNING.finditer(text)))


@contextmanager
def served(log_path: Path) -> Iterator[str]:
    """The URL of a server (start_server) whose runs go to a `runs` folder beside `log_path`; the
    server is stopped on leaving."""
    runs_dir = log_path.parent / "runs"
    runs_dir.mkdir()
    proc, url = start_server(runs_dir, log_path)
    try:
        yield url
    finally:
        stop_server(proc)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def open_app(page: Page, url: str) -> None:
    """Go to the app and wait until Streamlit has drawn the page and finished its script run."""
    page.goto(url, wait_until="domcontentloaded")
    wait_for_app(page)


def wait_for_app(page: Page, timeout_ms: float = 90_000) -> None:
    """Wait for the status line (or fail at once on an exception the page shows)."""
    page.locator("[data-testid='stApp']").wait_for(timeout=timeout_ms)
    status = page.locator(f".st-key-status{FRESH}").first
    exception = page.get_by_test_id("stException").first
    status.or_(exception).first.wait_for(timeout=timeout_ms)
    if exception.is_visible():
        raise AssertionError(f"the page shows an exception:\n{exception.inner_text()}")
    page.locator("[data-test-script-state='notRunning']").wait_for(state="attached", timeout=timeout_ms)


def stop_any_run(context: BrowserContext, url: str, timeout_ms: float = 180_000) -> None:
    """Stop the server's run if one is going, from a fresh tab, and wait until Start is enabled again."""
    page = context.new_page()
    try:
        open_app(page, url)
        status = page.locator(f".st-key-status{FRESH}")
        stop = page.locator(".st-key-stop_training button")
        if ACTIVE_STATUS.search(status.inner_text()) and stop.is_enabled():
            stop.click()
        expect(status).not_to_contain_text(ACTIVE_STATUS, timeout=timeout_ms)
        expect(page.locator(".st-key-start_training button")).to_be_enabled(timeout=timeout_ms)
    finally:
        page.close()


def full_page_screenshot(page: Page, path: Path) -> None:
    """Streamlit scrolls inside its main block, so Playwright's full_page stops at the viewport:
    grow the viewport to the content's height for the shot, then put it back."""
    size = page.viewport_size or VIEWPORT
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        const side = document.querySelector('[data-testid="stSidebarContent"]');
        return Math.max(main ? main.scrollHeight : 0, side ? side.scrollHeight : 0,
                        document.documentElement.scrollHeight);
    }""")
    tall = min(max(int(height), size["height"]), MAX_SHOT_HEIGHT)
    if tall > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": tall})
        page.wait_for_timeout(400)  # Plotly re-lays out on resize
    try:
        page.screenshot(path=str(path))
    finally:
        if tall > size["height"]:
            page.set_viewport_size(size)
