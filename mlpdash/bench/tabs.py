"""Training throughput and drawing latency with browser tabs open, `python -m mlpdash bench --tabs
0,1,5`: a real `streamlit run app.py` per count with that many Chromium tabs open (Playwright), a
default-size run started from the page; its throughput read from the run folder against the same run
headless; and with the most tabs, drawing -> prediction timed in the browser (mouse-up to the answer
drawn) and in the server (preprocessing + probabilities, logged by the server process itself)."""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
from pathlib import Path

from mlpdash.bench.browser import CHROMIUM_ARGS, browser_problem, chromium, open_tab, page_pace, \
    print_round_trips, start_run
from mlpdash.bench.common import default_architecture
from mlpdash.bench.streamlit_server import rate, streamlit_server
from mlpdash.bench.throughput import BENCH_EPOCHS, Throughput, descendants, headless_throughput, measure, \
    throughput_line

# Issue 21's goals for the ratio to headless, by the number of tabs open (5 tabs against 1 tab's speed).
GOALS = {1: " (goal >= 0.95)", 5: " (goal: >= 0.85 x the 1-tab ratio)"}


def print_tabs(counts: list[int], data_spec: str | None, seconds: float, draw_rounds: int,
               browser_nice: int = 0, repeats: int = 1) -> dict[int, list[float]]:
    """Training throughput headless and on a real server with 0..N tabs open, `repeats` times in turn
    (each ratio against the headless window just before it; the median is the figure); drawing
    latency with the most tabs, in the last repeat. Returns each count's ratios, one a repeat (none
    when no browser is here)."""
    problem = browser_problem()
    if problem:
        print(f"tabs: skipped ({problem}): pip install -r requirements-dev.txt and install Debian's "
              "chromium (apt-get install chromium)", flush=True)
        return {}
    source = data_spec or "sample"
    print(f"tabs: training throughput of a default-size run ({default_architecture()}, {BENCH_EPOCHS} "
          f"epochs set, data {source}) over whole epochs ending {seconds:g} s or more after the first "
          "epoch end, read from the run folder's metrics.jsonl (training samples per wall-clock second, "
          "validation and per-epoch saving included); 'status line' is the median of the samples/s the "
          "page shows (its last 20 training batches); 'live updates' counts the loss charts the server "
          "built a second (one per tab and poll). Browser and server share this machine's CPUs"
          + (f"; Chromium runs at nice {browser_nice}, so that it takes less CPU from the server (a "
             "starved browser also polls less: see 'live updates')" if browser_nice else "") + ".",
          flush=True)
    from mlpdash.data import load_mnist

    train_size = len(load_mnist(source).x_train)
    ratios: dict[int, list[float]] = {count: [] for count in counts}
    for repeat in range(1, repeats + 1):
        if repeats > 1:
            print(f"  repeat {repeat} of {repeats}:", flush=True)
        headless = headless_throughput(source, seconds)
        print(f"  headless (TrainingJob in this process, no server): {throughput_line(headless)}", flush=True)
        for count in counts:
            latency = draw_rounds > 0 and repeat == repeats and count == max(counts) and count > 0
            result = _server_run(count, source, train_size, seconds, draw_rounds if latency else 0,
                                 browser_nice)
            label = "no tab open (started from a tab, then closed)" if count == 0 else f"{count} tab(s) open"
            if not latency:
                print(f"  server, {label}: {throughput_line(result)}", flush=True)
            ratios[count].append(result.samples_per_s / headless.samples_per_s)
    for count in sorted(ratios, key=lambda c: (c not in GOALS, c)):
        each = ratios[count]
        spread = f" (median of {len(each)}: {', '.join(f'{r:.3f}' for r in each)})" if len(each) > 1 else ""
        print(f"  ratio {count} tab(s) / headless: {statistics.median(each):.3f}{GOALS.get(count, '')}{spread}",
              flush=True)
    return ratios


def _server_run(tabs: int, source: str, train_size: int, seconds: float, draw_rounds: int,
                browser_nice: int) -> Throughput:
    """Start a server, open `tabs` tabs, start a run from the first (a tab opened and closed again
    when `tabs` is 0), measure, then draw in every tab if `draw_rounds`."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, streamlit_server(source, Path(tmp)) as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(Path(tmp), browser_nice),
                                             headless=True, args=CHROMIUM_ARGS)
        try:
            pages = [open_tab(browser, server.url) for _ in range(max(tabs, 1))]
            start_run(pages[0])
            if tabs == 0:
                pages.pop().context.close()
            metrics = next(server.runs.glob("*/config.json")).parent / "metrics.jsonl"
            browser_pids = descendants(os.getpid(), exclude=server.pid) if tabs else []
            result = measure(metrics, train_size, seconds, lambda: page_pace(pages[0]) if pages else None,
                             [server.pid], browser_pids)
            result = dataclasses.replace(result, live_updates_per_s=rate(server.timings, "live", result),
                                         tabs=tabs)
            if draw_rounds:
                # Printed before the drawing, which follows it.
                print(f"  server, {tabs} tab(s) open: {throughput_line(result)}", flush=True)
                print_round_trips(pages, draw_rounds, server.timings)
            return result
        finally:
            browser.close()
