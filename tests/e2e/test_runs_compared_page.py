"""Runs & comparison in the real page: a small sweep queued from the page on the sample, trained one
run after another, its runs compared (curves, settings, mistakes per digit) and its results drawn as
parallel coordinates.

Named to run after test_page.py (pytest takes the files in name order): it leaves the shared server
with a finished job, and test_page.py's first test expects a server that has trained nothing."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect
from test_page import button, open_tab, set_input, settle, shots_wide_and_narrow, step

SWEEP_TIMEOUT_MS = 240_000


def traces(page: Page, key: str) -> list[str]:
    """The names of a chart's traces as Plotly drew them."""
    return page.locator(f".st-key-{key} .js-plotly-plot").evaluate(
        "plot => plot._fullData.map(trace => trace.name)")


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a select box. The first click on a box that the tab's rerun has just drawn
    may only focus it: click until its list is open."""
    box = page.get_by_role("combobox", name=label)
    for _ in range(3):
        box.click()
        try:
            expect(box).to_have_attribute("aria-expanded", "true", timeout=2_000)
            break
        except AssertionError:
            continue
    page.get_by_role("option", name=option, exact=True).click()
    expect(box).to_have_value(option)
    settle(page)


def queue_sweep(page: Page, setting: str, values: str) -> Locator:
    """Sweep one `setting` over `values` ("0.003, 0.03") from the Runs tab; returns the queue's box."""
    choose(page, "Setting 1", setting)
    settle(page)
    field = page.locator(".st-key-sweep_values_0 input")
    expect(field).to_be_enabled()
    field.fill(values)
    field.press("Enter")
    settle(page)
    button(page, "sweep_queue_button").click()
    # The last one: while the page reruns (a queued run starting reruns it), the box it replaces may
    # linger a moment beside it.
    return page.locator(".st-key-sweep_queue").last


def test_a_small_sweep_trains_and_its_runs_are_compared(page: Page, screenshot):
    set_input(page, "hidden", "16")
    set_input(page, "epochs", "2")
    open_tab(page, "Runs & comparison")
    settle(page)
    queue = queue_sweep(page, "learning rate", "0.003, 0.03")
    expect(queue).to_contain_text(re.compile(r"\d+ (queued|running|finished)"), timeout=30_000)
    step("sweep queued; waiting for its two runs")
    expect(queue).to_contain_text("2 finished", timeout=SWEEP_TIMEOUT_MS)
    # The comparison follows the sweep: both runs ticked, one curve each, in the same colours.
    compare = page.locator(".st-key-compare")
    expect(compare.locator(".js-plotly-plot")).to_have_count(3, timeout=30_000)
    # Plotly draws a chart after its element has arrived: wait for both runs' curves.
    page.wait_for_function("""() => [...document.querySelectorAll('.st-key-compare_accuracy .js-plotly-plot')]
        .some(plot => (plot._fullData || []).length === 2)""", timeout=30_000)
    settle(page)
    accuracy, per_class = traces(page, "compare_accuracy"), traces(page, "compare_per_class")
    assert len(accuracy) == 2 and accuracy == per_class, (accuracy, per_class)
    colours = page.locator(".st-key-compare_accuracy .js-plotly-plot").evaluate(
        "plot => plot._fullData.map(trace => trace.line.color)")
    bars = page.locator(".st-key-compare_per_class .js-plotly-plot").evaluate(
        "plot => plot._fullData.map(trace => trace.marker.color)")
    assert colours == bars and len(set(colours)) == 2, (colours, bars)
    expect(compare).to_contain_text("learning_rate")
    expect(queue.locator(".js-plotly-plot")).to_have_count(1)  # the parallel coordinates
    expect(page.get_by_test_id("stException")).to_have_count(0)
    # Training curves on demand: dashed, one more trace a run, none in the legend.
    page.locator(".st-key-compare_training label").click()
    page.wait_for_function("""() => [...document.querySelectorAll('.st-key-compare_accuracy .js-plotly-plot')]
        .some(plot => (plot._fullData || []).length === 4)""", timeout=30_000)
    shots_wide_and_narrow(page, compare, screenshot, "30-runs-compared", "31-runs-compared-1024")
    queue.scroll_into_view_if_needed()
    screenshot(page, "32-sweep")
    # A second sweep queued from the page is the one the picker shows (and its runs the ones listed),
    # not the first, in the same page.
    queue_sweep(page, "seed", "5")
    picker = page.get_by_role("combobox", name="Queued sweeps")
    expect(picker).to_have_value("Sweep of seed · 1 run", timeout=10_000)
    # The toast's text is plain(): a word joiner after the colon keeps the name from reading as markup.
    expect(page.get_by_test_id("stToast")).to_contain_text(re.compile(r"Sweep of seed:\W*1 run queued"))
    expect(queue).to_contain_text(re.compile(r"\b1 (queued|running|finished)"), timeout=10_000)
    expect(queue).to_contain_text("1 finished", timeout=SWEEP_TIMEOUT_MS)
    expect(picker).to_have_value("Sweep of seed · 1 run")
    screenshot(page, "33-second-sweep")
