"""Chromium tabs on the page, driven by Playwright for `python -m mlpdash bench --tabs`: opening a
tab, starting a run from it, reading its status line, and timing a drawing's round trip in the page
(mouse-up to the answer drawn). The stroke script is shared with tests/e2e/test_many_tabs.py."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mlpdash.bench.common import REPO_ROOT, ms
from mlpdash.bench.streamlit_server import server_drawing_seconds
from mlpdash.bench.throughput import BENCH_EPOCHS

PAGE_TIMEOUT_MS = 120_000
ANSWER_TIMEOUT_MS = 60_000
CHROMIUM = os.environ.get("MLPDASH_CHROMIUM", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}
STATUS = ".st-key-status:not([data-stale='true'])"
PACE_TEXT = re.compile(r"([\d,]+) samples/s")
# One stroke as fractions of the canvas, below its toolbar: a "1".
STROKE = [(0.5, 0.2), (0.5, 0.4), (0.5, 0.6), (0.5, 0.85)]
# In the page: mouse events along the points (fractions of the canvas; its column may clip its right
# side); the canvas follows a stroke on the document once begun.
STROKE_SCRIPT = """(canvas, points) => {
    canvas.scrollIntoView({block: 'center'});
    const rect = canvas.getBoundingClientRect();
    const holder = document.querySelector('.st-key-canvas').getBoundingClientRect();
    const width = Math.min(rect.width, holder.right - rect.left);
    const xy = points.map(([fx, fy]) => [rect.left + fx * width, rect.top + fy * rect.height]);
    const fire = (type, [x, y]) => canvas.dispatchEvent(new MouseEvent(type, {
        bubbles: true, composed: true, cancelable: true, view: window, clientX: x, clientY: y,
        button: 0, buttons: type === 'mouseup' ? 0 : 1}));
    fire('mousedown', xy[0]);
    for (let i = 1; i < xy.length; i++) {
        for (let k = 1; k <= 6; k++) {
            const [x0, y0] = xy[i - 1], [x1, y1] = xy[i];
            fire('mousemove', [x0 + (k / 6) * (x1 - x0), y0 + (k / 6) * (y1 - y0)]);
        }
    }
    fire('mouseup', xy[xy.length - 1]);
}"""
# In the page: the time of the last mouse-up, and of the first "Prediction: N" drawn after it.
ROUND_TRIP_PROBE = """() => {
    const probe = window.__bench = {up: null, seen: null};
    document.addEventListener('mouseup', () => { probe.up = performance.now(); probe.seen = null; }, true);
    new MutationObserver(() => {
        if (probe.up === null || probe.seen !== null) return;
        const box = document.querySelector('.st-key-prediction');
        if (box && /Prediction: \\d/.test(box.innerText)) probe.seen = performance.now();
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def browser_problem() -> str | None:
    """Why the tabs cannot be measured here (no Playwright, no Chromium, no app.py), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (MLPDASH_CHROMIUM names another)"
    if not (REPO_ROOT / "app.py").is_file():
        return f"no app.py in {REPO_ROOT}"
    return None


def chromium(folder: Path, nice: int) -> str:
    """Chromium, or a wrapper that starts it at `nice`: every process and thread it makes inherits
    the level (renicing it once started misses the threads, as Linux nices each thread). Playwright
    starts the browser in a session of its own, which the scheduler weighs as a group against the
    server's: the group is niced too."""
    if not nice:
        return CHROMIUM
    wrapper = folder / "chromium-nice"
    wrapper.write_text(f"#!/bin/sh\necho {nice} > /proc/self/autogroup 2>/dev/null\n"
                       f'exec nice -n {nice} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def open_tab(browser: Any, url: str, viewport: dict[str, int] = VIEWPORT,
             timeout_ms: float = PAGE_TIMEOUT_MS) -> Any:
    """A tab of its own browser context (as a separate visitor's), once the page's first run is over."""
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url, wait_until="domcontentloaded")
    page.locator(STATUS).first.wait_for()
    page.locator("[data-test-script-state='notRunning']").wait_for(state="attached")
    return page


def start_run(page: Any) -> None:
    from playwright.sync_api import expect

    field = page.locator(".st-key-epochs input")
    field.fill(str(BENCH_EPOCHS))
    field.press("Enter")
    expect(field).to_have_value(str(BENCH_EPOCHS))
    start = page.locator(".st-key-start_training button")
    expect(start).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
    start.click()
    expect(page.locator(STATUS)).to_contain_text(re.compile("^Training"), timeout=PAGE_TIMEOUT_MS)


def page_pace(page: Any) -> float | None:
    """The samples a second the tab's status line shows, or None when it shows none."""
    match = PACE_TEXT.search(page.locator(STATUS).first.inner_text())
    return float(match.group(1).replace(",", "")) if match else None


def print_round_trips(pages: list[Any], rounds: int, timings: Path) -> None:
    """Clear and draw in every tab, one after another without waiting, then wait for every answer:
    `rounds` times. The browser round trip is timed in the page, from the stroke's mouse-up to the
    "Prediction: N" it brings."""
    for page in pages:
        page.evaluate(ROUND_TRIP_PROBE)
    skip = len(server_drawing_seconds(timings))
    trips = []
    for _ in range(rounds):
        for page in pages:
            _clear(page)
        for page in pages:
            _stroke(page)
        for page in pages:
            page.wait_for_function("() => window.__bench.seen !== null", timeout=ANSWER_TIMEOUT_MS)
            trips.append(page.evaluate("() => window.__bench.seen - window.__bench.up") / 1000)
    server = server_drawing_seconds(timings)[skip:]
    print(f"  drawing -> prediction with {len(pages)} tab(s) open while the run trains, {rounds} rounds of one "
          f"stroke in every tab at once ({len(trips)} drawings):", flush=True)
    print(f"    browser round trip, mouse-up to 'Prediction: N' drawn (canvas upload, fragment rerun, "
          f"figures, render): p50 {ms(trips, 50)} ms, p95 {ms(trips, 95)} ms", flush=True)
    if server:
        print(f"    in the server, preprocessing + probabilities (wall time in the script thread, GIL waits "
              f"included; {len(server)} calls): p50 {ms(server, 50)} ms, p95 {ms(server, 95)} ms "
              "(goal p50 <= 10 ms)", flush=True)


def _clear(page: Any, tries: int = 3) -> None:
    """Clear the canvas if it holds a drawing, and wait until the page says so. A click that lands
    while a busy tab swaps its elements can be lost: then click again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    box = page.locator(".st-key-prediction")
    for attempt in range(tries):
        if "Prediction:" not in box.inner_text():
            return  # a blank canvas: clicking Clear now would swap it while we draw
        page.locator(".st-key-clear_canvas button").click()
        try:
            expect(box).not_to_contain_text("Prediction:", timeout=ANSWER_TIMEOUT_MS / tries)
            expect(box).to_contain_text("Draw a digit", timeout=ANSWER_TIMEOUT_MS / tries)
            return
        except (AssertionError, PlaywrightTimeout):  # a tuple: `except A | B` raises TypeError
            if attempt == tries - 1:
                raise


def _stroke(page: Any) -> None:
    """One stroke down the middle of the current canvas, as mouse events dispatched in the page in one
    go: Playwright's page.mouse waits for the renderer after every event, which with five busy tabs
    on two cores made the drawing, not the answer, the slow part."""
    # After Clear, Streamlit may keep the old canvas mounted but hidden (data-retained) beside the new one.
    canvas = page.locator(".st-key-canvas .stElementContainer:not([data-stale='true'])"
                          ":not([data-retained='true']) canvas.upper-canvas")
    canvas.evaluate(STROKE_SCRIPT, STROKE)
