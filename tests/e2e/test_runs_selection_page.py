"""One selection of runs in the real page (issue 21): the runs table's ticks are the only way to tick
runs; the last one ticked is the run every view shows and the banner names, all of them are compared,
and starting a job from the page lets the picked run go. Also the sweep's picker and chart as a
browser shows them: a label that stays current, two thick lines for a 2-run sweep.

Run alone or after the other browser tests: it trains its own small runs (a sweep of two seeds)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import FRESH
from test_page import FINISHED, RUN_TIMEOUT_MS, button, open_tab, runs_csv, set_input, settle, status, step
from test_every_width import SCREENSHOTS
from test_runs_compared_page import SWEEP_TIMEOUT_MS, queue_sweep

# It queues a sweep and reads the runs table row by row: a server of its own, with no runs or sweeps
# of other modules in its table and picker.
OWN_SERVER = True

HEADER_PX, ROW_PX = 36, 35  # the runs grid's header and row heights


def tick_row(page: Page, row: int) -> None:
    """Click the checkbox of the runs table's `row` (from 0, as listed: newest first)."""
    grid = page.locator(".st-key-runs_table [data-testid='data-grid-canvas']")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + HEADER_PX + ROW_PX * row + 17)


def banner(page: Page):
    return page.locator(f".st-key-run_banner{FRESH}")


def compare_caption(page: Page):
    return page.locator(".st-key-compare [data-testid='stCaptionContainer']").first


def sweep_lines(page: Page) -> list[dict]:
    """The sweep chart's run lines as Plotly drew them: their width and colour."""
    return page.locator(".st-key-sweep_chart .js-plotly-plot").evaluate(
        """plot => plot._fullData.filter(t => t.mode === 'lines+markers')
                   .map(t => ({width: t.line.width, color: t.line.color, points: t.y.length}))""")


def test_the_tables_ticks_pick_the_run_shown_and_the_runs_compared(page: Page, screenshot):
    set_input(page, "hidden", "16")
    set_input(page, "epochs", "1")
    open_tab(page, "Runs & comparison")
    settle(page)
    expect(page.get_by_role("combobox", name="Runs to compare")).to_have_count(0)  # one way to tick runs
    queue = queue_sweep(page, "seed", "1, 2")
    picker = page.get_by_role("combobox", name="Queued sweeps")
    expect(picker).to_have_value("Sweep of seed · 2 runs", timeout=30_000)
    step("sweep of two seeds queued")
    expect(queue).to_contain_text("2 finished", timeout=SWEEP_TIMEOUT_MS)
    settle(page)
    # The picker's label said nothing that went stale as the sweep trained.
    expect(picker).to_have_value("Sweep of seed · 2 runs")
    # Its chart: two thick lines, one a run, in two colours.
    expect(queue.locator(".js-plotly-plot")).to_have_count(1, timeout=30_000)
    page.wait_for_function("""() => [...document.querySelectorAll('.st-key-sweep_chart .js-plotly-plot')]
        .some(plot => (plot._fullData || []).filter(t => t.mode === 'lines+markers').length === 2)""",
                           timeout=30_000)
    lines = sweep_lines(page)
    assert all(line["width"] >= 3 and line["points"] == 2 for line in lines), lines
    assert len({line["color"] for line in lines}) == 2, lines
    queue.scroll_into_view_if_needed()
    screenshot(page, "33-sweep-two-runs")

    # Queued from the page: no saved run picked, the page followed the sweep; both runs ticked.
    expect(banner(page)).to_have_count(0)
    expect(compare_caption(page)).to_contain_text("Following Sweep of seed")
    rows = runs_csv(page)
    newest, older = rows[0]["run"], rows[1]["run"]
    tick_row(page, 0)  # unticks the newest: the one still ticked is shown everywhere
    expect(banner(page)).to_contain_text(f"Showing saved run {older}", timeout=15_000)
    expect(compare_caption(page)).to_contain_text("1 run ticked in the table above")
    # The sidebar's settings are the next run's: it says so beside the settings of the run shown.
    expect(page.get_by_test_id("stSidebar")).to_contain_text(re.compile(
        r"These settings are for the next run\. The saved run shown, seed \d, was trained as 784-16-10 relu"))
    page.get_by_test_id("stSidebar").screenshot(path=str(SCREENSHOTS / "33b-sidebar-beside-a-saved-run.png"))
    settle(page)
    tick_row(page, 0)  # ticked again: compared with the other, and the one shown (the last ticked)
    expect(banner(page)).to_contain_text(f"Showing saved run {newest}", timeout=15_000)
    expect(banner(page)).to_contain_text("2 runs are ticked to compare")
    expect(compare_caption(page)).to_contain_text("2 runs ticked in the table above")
    settle(page)
    page.locator(".st-key-runs_table").scroll_into_view_if_needed()
    screenshot(page, "34-runs-ticked")

    # A job started from the page lets the picked run go: the banner leaves, the ticks with it.
    start = button(page, "start_training")
    expect(start).to_be_enabled()
    start.click()
    expect(banner(page)).to_have_count(0, timeout=15_000)
    expect(status(page)).to_contain_text(FINISHED, timeout=RUN_TIMEOUT_MS)
    settle(page)
    expect(banner(page)).to_have_count(0)
    expect(compare_caption(page)).to_contain_text(re.compile("^Tick runs in the table above"))
    expect(page.get_by_test_id("stException")).to_have_count(0)
