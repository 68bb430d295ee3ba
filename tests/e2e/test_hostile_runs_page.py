"""The real page on a runs folder as a colleague's copy might hold it (tests/hostile.py): bzip2 bombs
that unpack to 1.8 GB in a run's model, test answers and timeline, an archive of 20,000 members,
NaN weights, and Markup (an image and links to a remote host, HTML, colour, LaTeX) in a run's data
source, name, note and folder name and in the sweep queue.

With every view opened, on the newest run and on the Markup run picked: the server's peak memory
stays under 1.5 GB, the browser asks no host but the page's own, no link or image to the remote host
is drawn, each damaged run is listed as damaged, and the good runs still answer a drawing.

A server of its own (the shared one starts from an empty runs folder)."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hostile import EVIL, hostile_runs
from playwright.sync_api import Page, expect
from streamlit_page import FRESH, open_app, start_server, stop_server
from test_page import ONE, button, draw, open_tab, prediction_of, runs_csv, settle, step

from mlpdash.ui import WORD_JOINER
from mlpdash.ui.tabs import VIEWS

PEAK_RSS_LIMIT_KB = 1_500 * 1024
ROW_PX, HEADER_PX = 35, 36  # the runs grid's rows, as test_page.py clicks them


@pytest.fixture(scope="module")
def hostile_server():
    folder = Path(tempfile.mkdtemp(prefix="mlpdash-hostile-"))
    runs = hostile_runs(folder / "runs")
    proc, url = start_server(folder / "runs", folder / "server.log", MLPDASH_DRAWINGS=str(folder / "drawings"))
    try:
        yield url, runs, proc, folder / "server.log"
    finally:
        stop_server(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))


def _every_view(page: Page, screenshot, shot: str) -> None:
    for view in VIEWS:
        panel = open_tab(page, view.name)
        settle(page)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(panel).not_to_contain_text("ran into a problem")  # a panel's failure, caught
        step(f"{view.name}: drawn")
    screenshot(page, shot)


def _pick_row(page: Page, row: int, name: str) -> None:
    open_tab(page, "Runs & comparison")
    grid = page.locator(".st-key-runs_table [data-testid='data-grid-canvas']")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + HEADER_PX + ROW_PX * row + 17)
    banner = page.locator(f".st-key-run_banner{FRESH}")
    wanted = f"Showing saved run {name}:"
    deadline = time.monotonic() + 30
    # Shown as written (ui.plain's invisible word joiners aside, which break autolinks).
    while wanted not in (banner.inner_text() if banner.count() == 1 else "").replace(WORD_JOINER, ""):
        assert time.monotonic() < deadline, f"the banner does not say {wanted!r}"
        page.wait_for_timeout(200)


def test_a_hostile_runs_folder_costs_little_asks_no_other_host_and_keeps_the_good_runs(
        context, hostile_server, screenshot):
    url, runs, proc, log = hostile_server
    page = context.new_page()
    page.set_default_timeout(60_000)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    try:
        open_app(page, url)
        step("page open on the hostile runs folder")
        # The newest run that answers (its model is good, its answers and timeline are bombs).
        draw(page, ONE)
        prediction_of(page)
        _every_view(page, screenshot, "50-hostile-runs-newest")
        listed = {row["run"]: row for row in runs_csv(page)}
        for name in ("weights-bomb", "many-members", "nan"):
            assert listed[runs[name].name]["status"] == "damaged", listed[runs[name].name]
        for name in ("good", "answers-bomb", "markup"):
            assert listed[runs[name].name]["status"] == "finished", listed[runs[name].name]
        order = [row["run"] for row in runs_csv(page)]
        # The Markup run picked: its name, source and note are drawn as text in every view.
        _pick_row(page, order.index(runs["markup"].name), runs["markup"].name)
        _every_view(page, screenshot, "51-hostile-runs-markup-picked")
        # The good run picked answers a drawing with its own model.
        _pick_row(page, order.index(runs["good"].name), runs["good"].name)
        button(page, "clear_canvas").click()
        expect(page.locator(".st-key-prediction")).not_to_contain_text("Prediction:")
        settle(page)
        draw(page, ONE)
        prediction_of(page)
        assert page.locator(f"a[href*='{EVIL}'], img[src*='{EVIL}'], a[href^='javascript']").count() == 0
        assert page.locator(f".st-key-run_banner{FRESH}").count() == 1
    finally:
        page.close()
    own = urlparse(url).netloc
    foreign = [u for u in asked if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != own]
    assert not foreign, foreign[:5]
    peak = _peak_rss_kb(proc.pid)
    step(f"server peak RSS {peak / 1024:.0f} MB")
    assert peak < PEAK_RSS_LIMIT_KB, f"the server peaked at {peak / 1024:.0f} MB:\n{log.read_text()[-4000:]}"
