"""Stopped and saved runs read right in the real page (issue 21): Stop says "Stopped" at once, with
where the run stopped, and its charts span what it did instead of waiting for an epoch that will never
come; a saved run picked under Runs shows its own result, the status line naming the current job's as
the current job's.

Runs its own small runs on the shared server (see conftest.py), in slow motion where it must stop a run
inside its first epoch."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from streamlit_page import FRESH
from test_page import (FINISHED, RUN_TIMEOUT_MS, STOPPED, button, chart, open_tab, result_metrics, runs_csv,
                       set_input, start_run, status, status_text, step, wait_counter_past)
from test_runs_compared_page import choose

# "Stopped" shows 0.1-0.2 s after the click here (the issue found 3.9 s, and asks for 1 s); the time
# is printed.
STOP_SHOWN_S = 1.0
HEADER_PX, ROW_PX = 36, 35  # the runs grid's header and row heights
ACCURACY = re.compile(r"test accuracy (0\.\d{4})")


def x_range(page: Page, key: str) -> list[float]:
    """The x axis range Plotly drew for chart `key`."""
    return chart(page, key).evaluate("plot => plot._fullLayout.xaxis.range.map(Number)")


def watch_for_stopped(page: Page) -> None:
    """From now on, note on the page's clock when the status line first says "Stopped" (Playwright's
    own polling is too coarse to time it)."""
    page.evaluate(f"""() => {{
        window.__stoppedAt = null;
        const check = () => {{
            const line = document.querySelector(".st-key-status{FRESH}");
            if (window.__stoppedAt === null && line && line.innerText.trim().startsWith("Stopped"))
                window.__stoppedAt = performance.now();
        }};
        new MutationObserver(check).observe(document.body, {{subtree: true, childList: true, characterData: true}});
    }}""")


def test_a_run_stopped_in_its_first_epoch_says_stopped_at_once_and_draws_what_it_did(page: Page, screenshot):
    set_input(page, "hidden", "32")
    choose(page, "Speed", "An epoch a minute")  # Stop lands inside the first epoch
    first = start_run(page, 200)
    wait_counter_past(page, max(first, 2))
    watch_for_stopped(page)
    # When the button was clicked, on the page's clock: Playwright's own checks before a click take a
    # while and are no part of the page's lag.
    page.evaluate("""() => {
        window.__clicked = null;
        document.querySelector('.st-key-stop_training button').addEventListener(
            'click', () => { window.__clicked = performance.now(); }, {capture: true, once: true});
    }""")
    button(page, "stop_training").click()
    expect(status(page)).to_contain_text(STOPPED, timeout=30_000)
    clicked = page.evaluate("window.__clicked")
    assert clicked is not None, "the click did not reach the button"
    shown_s = (page.evaluate("window.__stoppedAt") - clicked) / 1000
    line = status_text(page).splitlines()[0]
    step(f"Stop -> 'Stopped' on screen: {shown_s:.2f} s ({line})")
    assert shown_s < STOP_SHOWN_S, f"'Stopped' took {shown_s:.2f} s: {line}"
    # Where it stopped, not a test accuracy beside "after 0 of 200 epochs".
    assert re.search(r"^Stopped in epoch 1 of 200, at batch \d+/47 \(no epoch finished\) — the model as it "
                     r"stopped: test accuracy", line), line
    assert "after 0 of" not in line

    # Once saved (Start is back), the page reran: the charts span what the run did, the same on both,
    # and say that no epoch finished instead of waiting for one.
    expect(button(page, "start_training")).to_be_enabled(timeout=60_000)
    charts = page.locator(f".st-key-live_charts{FRESH}")
    expect(charts).to_contain_text("stopped before its first epoch finished", timeout=30_000)
    expect(charts).not_to_contain_text("waiting for the first")
    batch, per_epoch = map(int, re.search(r"at batch (\d+)/(\d+)", status_text(page)).groups())
    page.wait_for_function(
        """span => ['loss_chart', 'accuracy_chart'].every(key => {
            const plot = [...document.querySelectorAll(`.st-key-${key} .js-plotly-plot`)].pop();
            const range = plot && plot._fullLayout && plot._fullLayout.xaxis.range;
            return range && Math.abs(range[0]) < 1e-9 && Math.abs(range[1] - span) < 1e-3;
        })""", arg=batch / per_epoch, timeout=30_000)
    loss, accuracy = x_range(page, "loss_chart"), x_range(page, "accuracy_chart")
    assert loss == accuracy and loss[0] == 0 and 0 < loss[1] < 1, (loss, accuracy)
    screenshot(page, "40-stopped-in-the-first-epoch")


def finish_a_run(page: Page, learning_rate: str) -> str:
    """Train a one-epoch run at `learning_rate` to its end; returns its test accuracy as shown."""
    set_input(page, "learning_rate", learning_rate)
    start_run(page, 1)
    expect(status(page)).to_contain_text(FINISHED, timeout=RUN_TIMEOUT_MS)
    return ACCURACY.search(status_text(page)).group(1)


def test_a_saved_run_picked_shows_its_own_result_and_the_current_jobs_is_named_as_such(page: Page, screenshot):
    set_input(page, "hidden", "16")
    choose(page, "Speed", "An epoch in 5 seconds")  # the status line shows it training
    older = finish_a_run(page, "0.001")
    current = finish_a_run(page, "0.05")
    assert older != current, "the two runs must differ for the page to tell them apart"
    expect(status(page)).to_contain_text(f"Finished — test accuracy {current}")
    open_tab(page, "Runs")
    rows = runs_csv(page)
    assert [rows[0]["test accuracy"], rows[1]["test accuracy"]] == [current, older], rows[:2]
    grid = page.locator(".st-key-runs_table [data-testid='data-grid-canvas']")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + HEADER_PX + ROW_PX + 17)  # the older run's tick
    expect(page.locator(f".st-key-run_banner{FRESH}")).to_contain_text(f"Showing saved run {rows[1]['run']}",
                                                                      timeout=30_000)
    # The result is the picked run's; the status line's numbers are labelled as the current job's.
    expect(result_metrics(page).filter(has_text="Test accuracy")).to_contain_text(older, timeout=30_000)
    expect(status(page)).to_contain_text(re.compile(rf"^Current job: Finished — test accuracy {current}"))
    page.locator(".st-key-control_bar").scroll_into_view_if_needed()
    screenshot(page, "41-saved-run-in-focus")
