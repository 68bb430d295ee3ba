"""Benchmarks behind `python -m mlpdash bench`: numbers printed, never asserted. Speed and memory
targets are checked here, not by timed unit tests; each module measures one thing:

- training.py: the engine's overhead, `python -m mlpdash train` against a plain `model.fit` script in
  alternating fresh processes (median ratio), then controls.py: slow motion's pace, a hold released
  by a faster pace, a stop during a held batch, held time left out of the epochs' seconds.
  `python -m mlpdash bench [--epochs 10] [--pairs 3]` (left out by --skip-training).
- prediction.py: drawing -> probabilities latency, p50 and p95 (every `bench`); with --explain, one
  input explained, the map's basis and the targeted attack (`bench --explain [--explain-model RUN]`).
- view_costs.py: the server's work for one weights-over-time scrub step (`bench --over-time`) and one
  change in the units' lab (`bench --units`).
- memory.py: RSS of a fresh process over N default-size runs trained through the server's job
  manager, then run_loading.py: time and peak RSS of loading two hostile run folders
  (`bench --memory-runs N`).
- tabs.py: training throughput on a real server with 0..N Chromium tabs open against headless, and
  the drawing round trip with the most tabs (`bench --tabs 0,1,5`); throughput.py reads the run
  folder, streamlit_server.py starts the timed server, browser.py drives the tabs.
- page.py: the page as a user meets it, in Chromium on the page's own clock: each view's first and
  second visit, a stroke -> the prediction and -> Inside a prediction, a page opened while a job
  trains, and samples/s with 1 and 5 pages open (tabs.py), medians beside the issue's goals
  (`bench --page [--page-repeats 3]`); page_probes.py holds its in-page scripts and tables.
- lessons.py: every lesson preset trained (full MNIST by default), each figure its sentence states
  against the one measured, and whether it holds within its tolerance (`bench --lessons`).
- cluster.py: a sweep here against the same sweep on a Dask cluster started with `dask scheduler` and
  `dask worker`, and the cluster path's overhead a run (`bench --cluster`).
- `bench --drawings N` times the Your drawings tab on the real page under AppTest: it imports
  Streamlit, so it lives in the UI layer (mlpdash/ui/bench_drawings.py).

The bench may start the page (a separate process) but imports neither Streamlit nor `mlpdash.ui`, and
nothing in `mlpdash.ui` imports the bench: the page stays free of measuring code, and the bench runs
where Streamlit is absent (tests/test_bench.py checks both). TensorFlow is imported inside the
functions that need it.
"""

from __future__ import annotations

from mlpdash.bench.browser import STROKE_SCRIPT
from mlpdash.bench.cluster import print_cluster
from mlpdash.bench.common import CANVAS, REPO_ROOT, sample_drawing
from mlpdash.bench.controls import print_controls
from mlpdash.bench.lessons import print_lessons
from mlpdash.bench.memory import memory_child, print_memory, rss_mb
from mlpdash.bench.page import print_page
from mlpdash.bench.prediction import print_explain, print_latency
from mlpdash.bench.run_loading import print_run_loading
from mlpdash.bench.streamlit_server import free_port, wait_healthy
from mlpdash.bench.tabs import print_tabs
from mlpdash.bench.throughput import Throughput, headless_throughput
from mlpdash.bench.training import plain_training, print_training_overhead
from mlpdash.bench.view_costs import print_over_time, print_units

__all__ = [
    "CANVAS",
    "REPO_ROOT",
    "STROKE_SCRIPT",
    "Throughput",
    "free_port",
    "headless_throughput",
    "memory_child",
    "plain_training",
    "print_cluster",
    "print_controls",
    "print_explain",
    "print_latency",
    "print_lessons",
    "print_memory",
    "print_over_time",
    "print_page",
    "print_run_loading",
    "print_tabs",
    "print_training_overhead",
    "print_units",
    "rss_mb",
    "sample_drawing",
    "wait_healthy",
]
