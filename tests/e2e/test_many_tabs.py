"""Five tabs on one running job: each follows the live status, each gets its drawing answered, and
none holds up another.

The job belongs to the server, so every tab polls the same one; a slow tab (or the figures built for
it) must not stall the others or the training. Uses a server of its own (below); the
`page` fixture stops the run afterwards.

Five tabs redrawing their charts every second saturate this 2-core machine's browser, so that every
Playwright call waits seconds for a tab's busy renderer. The checks therefore run inside the pages
(one call per tab and check, the five tabs progressing side by side), and the answer time is measured
there too, from the stroke's mouse-up to the "Prediction: N" it brings.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect
from streamlit_page import FRESH

from mlpdash.bench import STROKE_SCRIPT

TABS = 5
LONG_RUN_EPOCHS = 200  # never over before the test stops it
START_TIMEOUT_MS = 120_000
ADVANCE_TIMEOUT_MS = 90_000
ANSWER_BOUND_S = 60  # from a tab's mouse-up to its answer
TRAINING = re.compile(r"^Training — epoch (\d+)/(\d+), batch (\d+)/(\d+)")
ONE = [(0.5, 0.18), (0.5, 0.4), (0.5, 0.65), (0.5, 0.88)]  # fractions of the canvas, below its toolbar
CANVAS = f".st-key-canvas .stElementContainer{FRESH}:not([data-retained='true']) canvas.upper-canvas"

# The session's server stays idle for the page tests (their first view is of an idle page), whatever
# order the modules run in: a server of its own (conftest.app_url).
OWN_SERVER = True


# In the page: batches trained so far, read from the status line as the test_page helpers read it.
BATCHES = """() => {
    const line = document.querySelector(".st-key-status:not([data-stale='true'])");
    const m = line && /^Training — epoch (\\d+)\\/\\d+, batch (\\d+)\\/(\\d+)/.exec(line.innerText.trim());
    return m ? (Number(m[1]) - 1) * Number(m[3]) + Number(m[2]) : null;
}"""
# Truthy ([first, now]) once the counter has moved past the first value this tab showed.
ADVANCED = f"""() => {{
    const now = ({BATCHES})();
    if (now === null) return false;
    if (window.__firstBatch === undefined) window.__firstBatch = now;
    return now > window.__firstBatch ? [window.__firstBatch, now] : false;
}}"""
# The bench's stroke (mouse events dispatched to the canvas, which follows a stroke on the document
# once begun), with a probe that notes its mouse-up and the first "Prediction: N" drawn after it. The
# events are dispatched synchronously, so the time right after the stroke is its mouse-up.
STROKE = f"""(canvas, points) => {{
    const probe = window.__answer = {{up: null, seen: null}};
    new MutationObserver(() => {{
        if (probe.up === null || probe.seen !== null) return;
        const box = document.querySelector('.st-key-prediction');
        if (box && /Prediction: \\d/.test(box.innerText)) probe.seen = performance.now();
    }}).observe(document.body, {{subtree: true, childList: true, characterData: true}});
    ({STROKE_SCRIPT})(canvas, points);
    probe.up = performance.now();
}}"""
ANSWERED = """() => {
    const probe = window.__answer;
    return probe.seen !== null && (probe.seen - probe.up) / 1000;
}"""

_T0 = time.monotonic()


def step(what: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f} s] {what}")


def click_start(page: Page) -> None:
    """Start a long run, without waiting for it to train (the other tabs load meanwhile)."""
    field = page.locator(".st-key-epochs input")
    field.fill(str(LONG_RUN_EPOCHS))
    field.press("Enter")
    expect(field).to_have_value(str(LONG_RUN_EPOCHS))
    start = page.locator(".st-key-start_training button")
    expect(start).to_be_enabled(timeout=60_000)
    start.click()
    expect(page.locator(f".st-key-status{FRESH}")).to_contain_text(
        re.compile("^(Loading data|Training)"), timeout=START_TIMEOUT_MS)


def open_tabs(context: BrowserContext, url: str, count: int, errors: list[str]) -> list[Page]:
    tabs = []
    for _ in range(count):
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        tab.on("pageerror", lambda err: errors.append(str(err)))
        tab.goto(url, wait_until="commit")
        tabs.append(tab)
    return tabs


def counters_moved(tab: Page) -> list[int]:
    """[first, later] batch counters of a tab once its status line has advanced."""
    return tab.wait_for_function(ADVANCED, polling=200, timeout=ADVANCE_TIMEOUT_MS).json_value()


def draw(tab: Page, points: list[tuple[float, float]]) -> None:
    """One stroke, as the mouse makes it. Dispatched in the page in one go, to the canvas's own
    drawing library, which sends the drawing to the server as for a real mouse: Playwright's
    page.mouse waits for the busy renderer after every event (five strokes took two minutes)."""
    tab.locator(CANVAS).evaluate(STROKE, points)


def answer_seconds(tab: Page) -> float:
    """Seconds from the tab's mouse-up to its "Prediction: N"; fails past ANSWER_BOUND_S."""
    return tab.wait_for_function(ANSWERED, polling=100, timeout=ANSWER_BOUND_S * 1000).json_value()


def test_five_tabs_follow_one_run_and_answer_drawings(page: Page, context: BrowserContext, app_url: str,
                                                      server_log: Path, screenshot):
    log_from = server_log.stat().st_size
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    click_start(page)
    step("run started")
    # The tab that started the run is the first of the five.
    opened = open_tabs(context, app_url, TABS - 1, errors)
    tabs = [page, *opened]
    try:
        moved = [counters_moved(tab) for tab in tabs]
        step(f"every tab's status line advanced (first seen, later): {moved}")

        # One stroke in every tab before waiting for any answer: the five are in flight together.
        for tab in tabs:
            draw(tab, ONE)
        step("drawn in every tab")
        took = [answer_seconds(tab) for tab in tabs]
        step(f"seconds from each tab's mouse-up to its answer: {[round(s, 2) for s in took]}")
        assert max(took) <= ANSWER_BOUND_S, took

        # Answered mid-run, and every tab still follows the run.
        after = [tab.evaluate(BATCHES) for tab in tabs]
        assert all(now is not None and now > later for now, (_, later) in zip(after, moved)), (moved, after)
        screenshot(tabs[-1], "14-five-tabs-draw-while-training")
        step("screenshot taken")
    finally:
        for tab in opened:
            tab.close()

    assert errors == [], f"page errors: {errors}"
    log = server_log.read_bytes()[log_from:].decode(errors="replace")
    assert "Traceback" not in log, log[-6000:]
