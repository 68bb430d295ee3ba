"""Views that change when an epoch ends keep up with the run, in the page that started it and in a
second page, without polling on timers of their own (mlpdash.ui.follow_epochs).

The lag is from an epoch's end, as the run folder records it (its metrics file gains the epoch's
line), to the view naming that epoch, both on the machine's clock (Date.now() in the page).
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect
from streamlit_page import FRESH, open_app
from test_page import START_TIMEOUT_MS, button, open_tab, set_input, step


# It trains (and saves drawings) before the page tests, which expect an idle server: a server of its own.
OWN_SERVER = True

EPOCHS = 6
PACE = "An epoch in 5 seconds"  # several epoch ends to time
# Following, not stale: each epoch named within LAG_BOUND_MS of its end, and a page's median within
# LAG_MEDIAN_MS. Medians of 0.9-1.25 s here, 1.7 s in a CI run, single epochs 0.4-2.4 s (the page's
# watch looks once a second, then the page reruns while the run trains on the same two cores); the
# issue saw a page stuck three epochs behind. The bounds leave room for a loaded CI machine; the lags
# are printed.
LAG_BOUND_MS = 5_000
LAG_MEDIAN_MS = 2_500
# In the page: for each epoch the view names, when (Date.now(), ms) it first did.
PROBE = """([view, pattern]) => {
    const seen = window.__seen = {view: {}};
    const grab = () => {
        const now = Date.now();
        const box = document.querySelector(view);
        const v = box && new RegExp(pattern).exec(box.innerText);
        if (v && !(v[1] in seen.view)) seen.view[v[1]] = now;
    };
    new MutationObserver(grab).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def choose_pace(page: Page, label: str) -> None:
    page.locator(".st-key-pace").click()
    page.get_by_role("option", name=label).click()
    expect(page.locator(f".st-key-pace{FRESH}").get_by_role("combobox")).to_have_value(re.compile(re.escape(label)))


def epoch_ends(runs: Path, earlier: set[Path], epochs: int, timeout_s: float) -> dict[int, float]:
    """When (time.time(), ms) each epoch of the new run in `runs` (not one of the `earlier` metrics
    files) was written to its metrics file, polled every 20 ms until all `epochs` are in."""
    ended: dict[int, float] = {}
    deadline = time.monotonic() + timeout_s
    while len(ended) < epochs and time.monotonic() < deadline:
        metrics = [path for path in runs.glob("*/metrics.jsonl") if path not in earlier]
        lines = metrics[0].read_text().count("\n") if metrics else 0
        for epoch in range(len(ended) + 1, lines + 1):
            ended[epoch] = time.time() * 1000
        time.sleep(0.02)
    return ended


def lags(page: Page, ended: dict[int, float]) -> list[float]:
    """For each epoch K that ended while training: ms from its end to the view naming it."""
    seen = page.evaluate("window.__seen")
    return [seen["view"][str(k)] - at for k, at in ended.items() if str(k) in seen["view"]]


def test_units_and_weights_over_time_follow_each_epoch_in_two_pages(page: Page, context: BrowserContext,
                                                                    app_url: str, server_log: Path):
    other = context.new_page()
    open_app(other, app_url)
    set_input(page, "epochs", str(EPOCHS))
    choose_pace(page, PACE)
    open_tab(page, "Units")
    over_time = open_tab(other, "Weights over time")
    page.evaluate(PROBE, [".st-key-units", r"The current run after epoch (\d+)"])
    other.evaluate(PROBE, ["[role=tabpanel]:not([hidden])", r"kept states of the model, step 0 to epoch (\d+)"])
    runs = server_log.parent / "runs"
    earlier = set(runs.glob("*/metrics.jsonl"))
    button(page, "start_training").click()
    ended = epoch_ends(runs, earlier, EPOCHS, START_TIMEOUT_MS / 1000)
    expect(page.locator(f".st-key-status{FRESH}")).to_contain_text(re.compile(r"^Finished"),
                                                                   timeout=START_TIMEOUT_MS)
    expect(over_time).to_contain_text(re.compile(rf"step 0 to epoch {EPOCHS}(?!\d)"), timeout=10_000)
    for name, shown in (("Units, the page that started the run", page), ("Weights over time, a second page", other)):
        measured = lags(shown, ended)
        step(f"{name}: the view named each epoch {[round(x) for x in measured]} ms after it ended")
        # Most epochs named (a loaded page may go from one straight to the next but one; the last
        # may read as the finished run), none late.
        assert len(measured) >= EPOCHS // 2, measured
        assert max(measured) <= LAG_BOUND_MS, measured
        assert statistics.median(measured) <= LAG_MEDIAN_MS, measured
    other.close()


# In the page: every stretch of time (ms, on the page's clock) in which a live chart that had been
# drawn was missing, empty or collapsed, with what was wrong and the status line then.
BLINK_PROBE = """() => {
    const probe = window.__blink = {gaps: [], since: {}, seen: {}};
    const what = key => {
        const boxes = [...document.querySelectorAll('.st-key-' + key)];
        if (!boxes.length) return 'no element';
        const why = boxes.map(box => {
            const svg = box.querySelector('.main-svg');
            if (!svg) return 'no plot';
            const r = svg.getBoundingClientRect();
            if (r.height <= 100 || r.width <= 100) return 'collapsed';
            if (box.offsetParent === null) return 'hidden';
            return box.querySelectorAll('.scatterlayer .trace').length ? '' : 'no curves';
        });
        return why.includes('') ? '' : why.join('|');
    };
    const tick = () => {
        const now = performance.now();
        for (const key of ['loss_chart', 'accuracy_chart']) {
            const wrong = what(key);
            if (!wrong) probe.seen[key] = true;
            if (!probe.seen[key]) continue;  // not drawn with curves yet: nothing can vanish
            if (wrong && probe.since[key] == null) probe.since[key] = [now, wrong];
            if (!wrong && probe.since[key] != null) {
                const line = document.querySelector('.st-key-status').innerText.slice(0, 50);
                probe.gaps.push([key, Math.round(now - probe.since[key][0]), probe.since[key][1], line]);
                probe.since[key] = null;
            }
        }
        requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


def test_the_live_charts_never_vanish_during_a_run_or_at_its_end(page: Page):
    """A full rerun used to draw the charts anew when the result appeared above them: both vanished
    for 120-330 ms at the end of every run (a class sees the page jump)."""
    set_input(page, "epochs", "8")
    button(page, "start_training").click()
    status = page.locator(f".st-key-status{FRESH}")
    # Any epoch before the last: on the bundled sample an epoch takes under a second, and a loaded
    # machine may show none of the first epoch's batches.
    expect(status).to_contain_text(re.compile(r"^Training — epoch [1-7]/8"), timeout=START_TIMEOUT_MS)
    page.evaluate(BLINK_PROBE)
    expect(status).to_contain_text(re.compile(r"^Finished"), timeout=START_TIMEOUT_MS)
    page.wait_for_timeout(2_000)  # the full rerun that shows the result, and the one after
    probe = page.evaluate("window.__blink")
    step(f"chart gaps seen: {probe['gaps']}, still missing: {probe['since']}")
    assert probe["seen"] == {"loss_chart": True, "accuracy_chart": True}, probe
    assert probe["gaps"] == [] and not any(probe["since"].values()), probe
