"""The page as a user meets it, `python -m mlpdash bench --page`: in Chromium at 1440x900 against a real
`streamlit run app.py`, timed on the page's own clock (performance.now()): each view's first and second
visit, a stroke -> the prediction under the canvas and -> Inside a prediction drawn, a page opened while
a job trains; then samples/s with 1 and 5 pages open against headless (the tabs bench, tabs.py). Every
figure is a median of the repeats, printed beside the issue's goal.

The probes rely only on stable hooks: tab buttons by their text (role=tab), `.st-key-status`,
`.st-key-canvas canvas.upper-canvas`, `.st-key-prediction`, data-stale, data-test-script-state. The
scripts they run in the page and the tables are in page_probes.py."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mlpdash.bench.browser import CHROMIUM_ARGS, ROUND_TRIP_PROBE, STATUS, _clear, _stroke, browser_problem, \
    chromium, open_tab, start_run
from mlpdash.bench.common import default_source
from mlpdash.bench.page_probes import DRAWN, OPENED_PROBE, VIEW_PROBE, PageTimes, goal_table, median, \
    views_table
from mlpdash.bench.streamlit_server import streamlit_server
from mlpdash.bench.tabs import print_tabs

VIEWPORT = {"width": 1440, "height": 900}
PAGE_TIMEOUT_MS = 180_000
DRAWN_TIMEOUT_MS = 120_000
TRAIN_TIMEOUT_MS = 600_000
MODEL_EPOCHS = 1  # the model the views show: one epoch is enough to give every view something to draw
POLL_MS = 50


def print_page(data_spec: str | None, repeats: int, page_counts: list[int], tab_seconds: float,
               browser_nice: int = 0) -> PageTimes:
    """Measure and print everything, `repeats` times each; returns the figures."""
    problem = browser_problem()
    if problem:
        print(f"page: skipped ({problem})", flush=True)
        return PageTimes()
    source = data_spec or default_source()
    print(f"page: Chromium at {VIEWPORT['width']}x{VIEWPORT['height']} on a real server (data {source}), timed "
          "on the page's clock (performance.now()); 'drawn' = the script run over, nothing under stMain "
          "stale and the DOM quiet for 300 ms, timed at the last change before the quiet; medians of "
          f"{repeats}. The machine's CPUs are shared with the browser (and with whatever else runs).",
          flush=True)
    times = PageTimes()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(Path(tmp), browser_nice),
                                             headless=True, args=CHROMIUM_ARGS)
        try:
            for round_ in range(1, repeats + 1):
                # A fresh server each round, on the same runs: every first visit meets the server's
                # caches cold, as the first visitor after a start does (later visitors share them).
                with streamlit_server(source, Path(tmp)) as server:
                    if round_ == 1:
                        _ensure_model(browser, server.url)
                    first, second = _views_round(browser, server.url)
                for view, seconds in first.items():
                    times.first.setdefault(view, []).append(seconds)
                for view, seconds in second.items():
                    times.second.setdefault(view, []).append(seconds)
                print(f"  round {round_}: first visits " + ", ".join(f"{v} {s:.2f}" for v, s in first.items())
                      + " s; second " + ", ".join(f"{v} {s:.2f}" for v, s in second.items()) + " s", flush=True)
            with streamlit_server(source, Path(tmp)) as server:
                _strokes(browser, server.url, repeats, times)
                _opened_while_training(browser, server.url, repeats, times)
        finally:
            browser.close()
    print("  each view, press on its tab -> drawn (medians; the view open at load is clicked last, so its "
          "'first' visit comes after the page drew it once):", flush=True)
    for line in views_table(times.first, times.second):
        print(line, flush=True)
    print(f"  stroke -> 'Prediction: N' (mouse-up to drawn), {_seconds(times.prediction)} with the first view "
          f"open, {_seconds(times.prediction_inside)} with Inside a prediction open; stroke -> Inside a "
          f"prediction drawn {_seconds(times.inside)}; a page opened while a job trains (goto -> 'Training' "
          f"shown, script over) {_seconds(times.opened)}", flush=True)
    if page_counts:
        times.ratios = print_tabs(page_counts, source, tab_seconds, 1, browser_nice, repeats)
    print(f"page: the issue's goals (medians of {repeats}; {os.cpu_count()} CPU(s) here, which other work may "
          "share):", flush=True)
    for line in goal_table(times.measures()):
        print(line, flush=True)
    return times


def _seconds(values: list[float]) -> str:
    value = median(values)
    return "—" if value is None else f"{value:.2f} s (" + ", ".join(f"{v:.2f}" for v in values) + ")"


def _new_page(browser: Any, url: str) -> Any:
    """A page of its own browser context (a separate visitor), settled after its first run."""
    page = open_tab(browser, url, viewport=VIEWPORT, timeout_ms=PAGE_TIMEOUT_MS)
    page.evaluate(VIEW_PROBE)
    _settle(page)
    return page


def _arm(page: Any, kind: str) -> None:
    page.evaluate("kind => window.__pageBench.arm(kind)", kind)


def _wait_drawn(page: Any) -> float:
    """Seconds from the armed event to the page drawn (page_probes.DRAWN)."""
    handle = page.wait_for_function(DRAWN, polling=POLL_MS, timeout=DRAWN_TIMEOUT_MS)
    return handle.json_value()["ms"] / 1000


def _settle(page: Any) -> None:
    """Wait until the page is drawn as a measure would count it, timing nothing (a run already over
    counts as seen)."""
    page.evaluate("() => { const p = window.__pageBench; p.armed = null; p.t0 = performance.now(); "
                  "p.sawRunning = true; }")
    _wait_drawn(page)


def _ensure_model(browser: Any, url: str) -> None:
    """A model for the views and the canvas: when the server has none, train a short one from the page."""
    from playwright.sync_api import expect

    page = _new_page(browser, url)
    try:
        box = page.locator(".st-key-prediction")
        expect(box).to_contain_text(re.compile("Draw a digit|Train a model first"))
        if "Train a model first" in box.inner_text():
            print(f"  training a {MODEL_EPOCHS}-epoch model from the page first", flush=True)
            field = page.locator(".st-key-epochs input")
            field.fill(str(MODEL_EPOCHS))
            field.press("Enter")
            expect(field).to_have_value(str(MODEL_EPOCHS))
            start = page.locator(".st-key-start_training button")
            expect(start).to_be_enabled()
            start.click()
            expect(page.locator(STATUS)).to_contain_text(re.compile("^Finished"), timeout=TRAIN_TIMEOUT_MS)
            expect(box).to_contain_text("Draw a digit", timeout=PAGE_TIMEOUT_MS)
    finally:
        page.context.close()


def _tab(page: Any, name: str) -> Any:
    return page.get_by_role("tab", name=name, exact=True).first


def _timed_click(page: Any, name: str) -> float:
    """Click a view's tab; seconds from the press to the view drawn."""
    from playwright.sync_api import expect

    _arm(page, "mousedown")
    tab = _tab(page, name)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    return _wait_drawn(page)


def _views_round(browser: Any, url: str) -> tuple[dict[str, float], dict[str, float]]:
    """In a fresh page: every view's first visit (the one open at load last, so that its click too
    comes from another view), then each again after a visit to its neighbour."""
    page = _new_page(browser, url)
    try:
        names = [name.strip() for name in page.get_by_role("tab").all_inner_texts()]
        order = names[1:] + names[:1]
        first = {name: _timed_click(page, name) for name in order}
        second = {}
        for index, name in enumerate(order):
            _timed_click(page, order[index - 1])  # the neighbour: untimed
            second[name] = _timed_click(page, name)
        return {name: first[name] for name in names}, {name: second[name] for name in names}
    finally:
        page.context.close()


def _strokes(browser: Any, url: str, repeats: int, times: PageTimes) -> None:
    """`repeats` strokes with the first view open (the prediction), then `repeats` with Inside a
    prediction open (the prediction, and the view drawn), on one page."""
    page = _new_page(browser, url)
    try:
        page.evaluate(ROUND_TRIP_PROBE)
        for inside in (False, True):
            if inside:
                _timed_click(page, "Inside a prediction")
            for _ in range(repeats):
                _clear(page)
                _settle(page)
                _arm(page, "mouseup")
                _stroke(page)
                page.wait_for_function("() => window.__bench.seen !== null", timeout=DRAWN_TIMEOUT_MS)
                drawn = _wait_drawn(page)
                prediction = page.evaluate("() => window.__bench.seen - window.__bench.up") / 1000
                (times.prediction_inside if inside else times.prediction).append(prediction)
                if inside:
                    times.inside.append(drawn)
    finally:
        page.context.close()


def _opened_while_training(browser: Any, url: str, repeats: int, times: PageTimes) -> None:
    """Start a long run from one page; then, `repeats` times, open a new page and time its navigation
    start -> the status line showing "Training" with the script run over. The run is stopped after."""
    from playwright.sync_api import expect

    starter = _new_page(browser, url)
    try:
        start_run(starter)
        for _ in range(repeats):
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(OPENED_PROBE)
            page = context.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            try:
                page.goto(url, wait_until="commit")
                handle = page.wait_for_function("() => window.__openBench && window.__openBench.at",
                                                polling=POLL_MS, timeout=PAGE_TIMEOUT_MS)
                times.opened.append(handle.json_value() / 1000)
            finally:
                context.close()
        starter.locator(".st-key-stop_training button").click()
        expect(starter.locator(STATUS)).not_to_contain_text(re.compile("^Training"), timeout=PAGE_TIMEOUT_MS)
    finally:
        starter.context.close()
