"""`bench`: measure the engine's overhead and the drawing latency, and with its flags the rest
(memory over many runs, throughput with browser tabs open, the explanation, the units lab, the
weights-over-time view, the Your drawings tab, the page in Chromium, the lesson presets' claims).

The measurements live in `mlpdash.bench`, imported inside the handler: it is heavy, and only this
command needs it. This module holds the flags, their checks, and which measurement runs in what order.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlpdash.cli.common import UsageError, add_data_flag, check_source, existing_run, import_tensorflow
from mlpdash.config import TrainConfig

EXPLAIN_DIGITS = 200  # inputs timed through the explanation
EXPLAIN_ATTACKS = 200  # the measure: 200 test digits, random other targets


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `bench` and its flags on the `commands` subparsers."""
    bench = commands.add_parser("bench", parents=[common], help="measure the engine's overhead and the drawing latency")
    add_data_flag(bench)
    bench.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    bench.add_argument("--pairs", type=int, default=3)
    bench.add_argument("--latency-calls", type=int, default=200)
    bench.add_argument("--skip-training", action="store_true", help="skip the training part (overhead and controls)")
    bench.add_argument("--memory-runs", type=int, default=0, metavar="N",
                       help="RSS growth over N default-size 1-epoch runs in one process (0: skip)")
    bench.add_argument("--tabs", type=_tab_counts, default=[], metavar="LIST",
                       help="throughput on a real server with each number of browser tabs open, "
                            "e.g. 0,1,5, against headless; drawing latency with the most (empty: skip)")
    bench.add_argument("--tab-seconds", type=float, default=20.0,
                       help="how long each throughput window lasts (whole epochs, at least this)")
    bench.add_argument("--explain", action="store_true",
                       help="time the explanation of one input, the map's basis and the targeted attack")
    bench.add_argument("--units", action="store_true",
                       help="also time the units lab: a change answered on the whole test split, a unit's dream")
    bench.add_argument("--over-time", action="store_true",
                       help="also time one step of the weights-over-time view (the server's part)")
    bench.add_argument("--drawings", type=int, default=0, metavar="N",
                       help="also time the Your drawings tab (each rerun, server side) with N drawings in the "
                            "folder, e.g. 10000 (0: skip)")
    bench.add_argument("--explain-model", default=None, metavar="RUN_DIR",
                       help="with --explain: a saved run's model (default: train the default model on --data)")
    bench.add_argument("--tab-repeats", type=int, default=1, metavar="N",
                       help="measure headless and every tab count N times in turn and give the median "
                            "ratio (one window's ratio moves by 0.1 on a shared machine)")
    bench.add_argument("--draw-rounds", type=int, default=6,
                       help="rounds of one drawing in every tab for the latency with tabs open")
    bench.add_argument("--browser-nice", type=int, default=0, metavar="N",
                       help="run Chromium at this nice level, so that it takes less CPU from the "
                            "server (a starved browser also polls less)")
    bench.add_argument("--page", action="store_true",
                       help="the page as a user meets it, in Chromium at 1440x900 on a real server: each view's "
                            "first and second visit, a stroke -> the prediction and -> Inside a prediction, a "
                            "page opened while a job trains, samples/s with --page-tabs pages open against "
                            "headless; medians of --page-repeats beside the issue's goals (alone, it leaves out "
                            "the engine's overhead and the drawing latency; --data defaults to full MNIST "
                            "beside the checkout, else the sample)")
    bench.add_argument("--page-repeats", type=int, default=3, metavar="N",
                       help="with --page: rounds of every measure (fresh page each); the medians' count")
    bench.add_argument("--page-tabs", type=_tab_counts, default=[1, 5], metavar="LIST",
                       help="with --page: the numbers of pages open for samples/s against headless (the "
                            "--tabs bench, --page-repeats times, windows of --tab-seconds; empty: skip)")
    bench.add_argument("--lessons", action="store_true",
                       help="every lesson preset trained, each figure its sentence states against the one "
                            "measured (alone, it leaves out the engine's overhead and the drawing latency; "
                            "--data defaults to full MNIST beside the checkout, else the sample)")
    bench.add_argument("--cluster", action="store_true",
                       help="a sweep of 8 short runs here against the same on a local Dask cluster of 2 "
                            "single-thread workers, and the cluster path's overhead a run, for short runs "
                            "and a default one (alone, it leaves out the engine's overhead and the "
                            "drawing latency)")
    bench.set_defaults(handler=cmd_bench)


def _tab_counts(text: str) -> list[int]:
    """`--tabs`: comma-separated counts of browser tabs, e.g. 0,1,5."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated counts such as 0,1,5, not {text!r}") from None
    if any(count < 0 for count in counts):
        raise argparse.ArgumentTypeError("a count of tabs cannot be negative")
    return counts


def cmd_bench(args: argparse.Namespace) -> int:
    if min(args.pairs, args.epochs, args.latency_calls, args.draw_rounds, args.tab_repeats,
           args.page_repeats) < 1:
        raise UsageError("--pairs, --epochs, --latency-calls, --draw-rounds, --tab-repeats and --page-repeats "
                         "must be at least 1")
    if args.memory_runs < 0 or args.tab_seconds <= 0 or not 0 <= args.browser_nice <= 19:
        raise UsageError("--memory-runs cannot be negative, --tab-seconds must be positive and "
                         "--browser-nice is 0 to 19")
    from mlpdash.drawings import MAX_DRAWINGS

    if not 0 <= args.drawings <= MAX_DRAWINGS:
        raise UsageError(f"--drawings is 0 to {MAX_DRAWINGS:,}, the most a drawings folder holds")
    if args.data is not None:
        check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash import bench

    alone = args.page or args.lessons or args.cluster  # a bench of its own, not an addition to the default one
    if not (args.skip_training or alone):
        bench.print_training_overhead(args.data, args.epochs, args.pairs)
    if not alone:
        bench.print_latency(args.latency_calls)
    if args.over_time:
        bench.print_over_time()
    if args.drawings:
        from mlpdash.ui.bench_drawings import print_drawings  # drives the page: Streamlit

        print_drawings(args.drawings)
    if args.units:
        bench.print_units(args.data)
    if args.explain:
        bench.print_explain(args.data, args.explain_model and str(existing_run(args.explain_model)),
                            EXPLAIN_DIGITS, EXPLAIN_ATTACKS)
    if args.memory_runs:
        bench.print_memory(args.data, args.memory_runs)
    if args.tabs:
        bench.print_tabs(args.tabs, args.data, args.tab_seconds, args.draw_rounds, args.browser_nice,
                         args.tab_repeats)
    if args.lessons:
        bench.print_lessons(args.data)
    if args.cluster:
        bench.print_cluster(args.data)
    if args.page:
        bench.print_page(args.data, args.page_repeats, args.page_tabs, args.tab_seconds, args.browser_nice)
    return 0
