"""The Streamlit server shut down (SIGTERM) while a job trains: the job stops and its run is saved
within a bounded time, and nothing half-written is left behind. Uses a server of its own."""

from __future__ import annotations

import signal
import time

from playwright.sync_api import Browser
from streamlit_page import VIEWPORT, open_app, start_server, stop_server
from test_page import TRAINING, start_run, wait_counter_past

from mlpdash.runs import list_runs

SHUTDOWN_LIMIT_S = 30


def test_sigterm_stops_the_job_saves_the_run_and_exits(browser: Browser, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    log = tmp_path / "server.log"
    proc, url = start_server(runs_dir, log)
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(30_000)
        open_app(page, url)
        first = start_run(page, 200)
        wait_counter_past(page, first + 60)  # past the first epoch: there is something to save
        assert TRAINING.search(page.locator(".st-key-status").first.inner_text())
        context.close()
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=SHUTDOWN_LIMIT_S + 15)
        seconds = time.monotonic() - began
    finally:
        if proc.poll() is None:
            stop_server(proc)
    output = log.read_text()
    assert seconds < SHUTDOWN_LIMIT_S, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    [info] = list_runs(runs_dir)
    assert info.status == "stopped", (info.status, info.error, output[-2000:])
    assert info.summary["epochs_completed"] >= 1 and info.summary["test_accuracy"] > 0.1
    assert (info.path / "model" / "saved_model.pb").is_file()
    assert not list(info.path.rglob(".*.tmp*")) and not (info.path / "training.lock").exists()
