"""Benchmarks behind `python -m mlpdash bench`: numbers printed, never asserted.

1. Reporting overhead: the whole-process time of `python -m mlpdash train` (engine thread, per-batch
   reporting, weight snapshots, run saving) against the same work written as a plain `model.fit`
   script, run alternately in fresh processes; the median of the per-pair ratios is the figure.
2. Drawing -> probabilities latency: `predict_drawing` on a canvas-sized RGBA drawing, p50 and p95.
3. Memory (--memory-runs N): RSS (VmRSS) of a fresh child process after each of N default-size
   1-epoch runs trained one after another through JobManager, as the server trains them.
4. Tabs (--tabs 0,1,5): a real `streamlit run app.py` per count with that many Chromium tabs open
   (Playwright), a default-size run started from the page; training throughput read from the run
   folder against the same run headless; and with the most tabs, drawing -> prediction timed in the
   browser (mouse-up to the answer drawn) and in the server (preprocessing + probabilities, logged by
   the server process itself, see mlpdash/ui/bench_server.py).
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CANVAS = 280
REPO_ROOT = Path(__file__).resolve().parents[1]


def plain_training(data_spec: str | None, epochs: int, out: str) -> None:
    """The baseline: load, build, `fit`, evaluate and save the same model with no engine around it."""
    import keras

    from mlpdash.config import TrainConfig
    from mlpdash.data import load_mnist
    from mlpdash.model import build_model, to_model_input

    config = TrainConfig(epochs=epochs)
    data = load_mnist(data_spec)
    keras.utils.set_random_seed(config.seed)
    steps = -(-len(data.x_train) // config.batch_size)
    model = build_model(config, steps)
    model.fit(to_model_input(data.x_train), data.y_train, batch_size=config.batch_size,
              epochs=config.epochs, validation_data=(to_model_input(data.x_val), data.y_val), verbose=0)
    model.evaluate(to_model_input(data.x_test), data.y_test, batch_size=2048, verbose=0)
    model.save(Path(out) / "model.keras")
    model.export(str(Path(out) / "model"), verbose=False)


def _timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def print_training_overhead(data_spec: str | None, epochs: int, pairs: int) -> None:
    data_args = ["--data", data_spec] if data_spec else []
    print(f"training overhead: {pairs} pairs of {epochs}-epoch default runs, data {data_spec or 'default'}",
          flush=True)
    ours_runs, plain_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "mlpdash", "train", *data_args, "--epochs", str(epochs), "--out", tmp]
        plain = [sys.executable, "-c",
                 f"from mlpdash.bench import plain_training; plain_training({data_spec!r}, {epochs}, {tmp!r})"]
        for pair in range(pairs):
            # Alternate which goes first so that warm caches and drift favour neither.
            order = (ours, plain) if pair % 2 == 0 else (plain, ours)
            timed = {id(command): _timed(command) for command in order}
            ours_runs.append(timed[id(ours)])
            plain_runs.append(timed[id(plain)])
            print(f"  pair {pair + 1}: {_pair_line(ours_runs[-1], plain_runs[-1])}", flush=True)
    # A shared VM's CPU time is steadier than its wall time, so both are shown.
    wall = statistics.median(o[0] / p[0] for o, p in zip(ours_runs, plain_runs))
    cpu = statistics.median(o[1] / p[1] for o, p in zip(ours_runs, plain_runs))
    print(f"  median ratio mlpdash / plain fit: wall {wall:.3f}, CPU {cpu:.3f} (goal <= 1.05)", flush=True)


def _pair_line(ours: tuple[float, float], plain: tuple[float, float]) -> str:
    return (f"mlpdash {ours[0]:.1f} s ({ours[1]:.1f} s CPU), plain fit {plain[0]:.1f} s ({plain[1]:.1f} s CPU), "
            f"ratio wall {ours[0] / plain[0]:.3f}, CPU {ours[1] / plain[1]:.3f}")


def sample_drawing() -> np.ndarray:
    """A real sample digit blown up onto a black RGBA canvas, as the drawing widget returns it."""
    from PIL import Image

    from mlpdash.data import load_mnist

    digit = load_mnist("sample").x_test[0]
    big = Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR)
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[40:240, 50:250, :3] = np.asarray(big)[..., None]
    return canvas


def print_latency(calls: int) -> None:
    from mlpdash.config import TrainConfig
    from mlpdash.model import build_model
    from mlpdash.predict import Predictor, predict_drawing
    from mlpdash.preprocess import canvas_to_mnist

    predictor = Predictor(build_model(TrainConfig(), steps_per_epoch=1))
    drawing = sample_drawing()
    for _ in range(5):  # trace the tf.function and warm the caches first
        predict_drawing(predictor, drawing)
    whole, prep = [], []
    for _ in range(calls):
        began = time.perf_counter()
        image = canvas_to_mnist(drawing)
        middle = time.perf_counter()
        predictor.probabilities(image[None])
        whole.append(time.perf_counter() - began)
        prep.append(middle - began)
    print(f"drawing -> probabilities ({calls} calls, {CANVAS}x{CANVAS} RGBA, default model): "
          f"p50 {_ms(whole, 50)} ms, p95 {_ms(whole, 95)} ms (goal p50 <= 10 ms); "
          f"of which preprocessing p50 {_ms(prep, 50)} ms", flush=True)


def _ms(seconds: list[float], percentile: int) -> str:
    return f"{np.percentile(seconds, percentile) * 1000:.2f}"


# --- inside a prediction ---------------------------------------------------------------------------


def print_explain(data_spec: str | None, model_dir: str | None, digits: int, attacks: int) -> None:
    """The explanation of one input (preprocessing, exact attribution, activations, map placement,
    neighbours) timed over `digits` test digits drawn on a canvas; the map's basis fitted on the whole
    test split; and `attacks` targeted attacks on test digits towards random other digits, with random
    sign noise of each one's budget for comparison."""
    from mlpdash.data import load_mnist
    from mlpdash.explain import EPSILON_LADDER, Network, attack, explain, fit_map, representation, sign_noise
    from mlpdash.model import network_weights, to_model_input
    from mlpdash.preprocess import prepare

    data = load_mnist(data_spec)
    model, activation, where = _explain_model(data_spec, model_dir)
    network = Network.from_weights(network_weights(model), activation)
    test = to_model_input(data.x_test)
    began = time.perf_counter()
    hidden_map = fit_map(network, test, data.y_test)
    fit_s = time.perf_counter() - began
    print(f"inside a prediction ({where}, test split of {data.source}: {len(test):,} digits):", flush=True)
    print(f"  the map's basis (PCA of the last hidden layer from its covariance): {fit_s * 1000:.0f} ms "
          "(goal <= 2 s for 10,000 digits)", flush=True)
    times = []
    for index in range(min(digits, len(test))):
        drawing = np.zeros((CANVAS, CANVAS), np.uint8)
        drawing[70:210, 70:210] = np.kron(data.x_test[index], np.ones((5, 5), np.uint8))
        began = time.perf_counter()
        e = explain(network, prepare(drawing).digit)
        hidden_map.place(e.activations[-1] if e.activations else e.logits)
        hidden_map.nearest(e.activations[-1] if e.activations else e.logits)
        e.top_units(e.digit)
        times.append(time.perf_counter() - began)
    print(f"  one input explained (preprocessing, exact attribution, activations, map, neighbours; "
          f"{len(times)} canvas drawings): p50 {_ms(times, 50)} ms, p95 {_ms(times, 95)} ms "
          "(goal p50 <= 50 ms)", flush=True)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(test), size=min(attacks, len(test)), replace=False)
    epsilons, seconds, noise_changed = [], [], 0
    for index in picks:
        image = test[index]
        answer = int(np.argmax(network.logits(image[None])[0]))
        target = int((answer + 1 + rng.integers(9)) % 10)
        began = time.perf_counter()
        found = attack(network, image, target)
        seconds.append(time.perf_counter() - began)
        epsilons.append(np.inf if found.epsilon is None else found.epsilon)
        if found.epsilon:
            noisy = sign_noise(image, found.epsilon, rng)
            noise_changed += int(np.argmax(network.logits(noisy[None])[0])) != answer
    reached = np.isfinite(epsilons)
    at_015 = float(np.mean(np.asarray(epsilons) <= 0.15))
    print(f"  targeted attack on {len(picks)} test digits towards random other digits (PGD, "
          f"{EPSILON_LADDER[0]:g}-{EPSILON_LADDER[-1]:g} budget ladder): median epsilon "
          f"{np.median(epsilons):.3g} (goal <= 0.12), reached at 0.15: {at_015:.0%}, on the ladder: "
          f"{np.mean(reached):.0%}; each attack p50 {_ms(seconds, 50)} ms, max "
          f"{max(seconds) * 1000:.0f} ms (goal <= 1 s); random sign noise of each digit's own epsilon "
          f"changed {noise_changed / max(1, int(np.sum(reached))):.1%} of the answers (goal <= 10 %)",
          flush=True)


def print_over_time(epochs: int = 10, steps: int = 20) -> None:
    """The server's work for one step of the weights-over-time view (the scrubber moved by one
    epoch): the first layer's grid (700 units, change since step 0), the per-digit accuracy, the
    layers' bands (their percentiles computed once a run), one unit's filmstrip and norm, and a
    drawing answered by every epoch's model. On a timeline of the default model's shape with random
    weights: the figures cost the same whatever the values."""
    from mlpdash import figures
    from mlpdash.config import TrainConfig
    from mlpdash.timeline import SINCE_START, EpochRecord, Timeline, answers_over_time, first_layer_view, \
        layer_bands, unit_over_time

    config, rng = TrainConfig(), np.random.default_rng(0)
    sizes = [784, *config.hidden, 10]
    start = [rng.normal(0, 0.05, (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    records = []
    for epoch in range(epochs + 1):  # each epoch drifts the weights a little, as training does
        kernels = [k + rng.normal(0, 0.002 * epoch, k.shape).astype(np.float32) for k in start]
        weights = [w for k in kernels for w in (k, np.zeros(k.shape[1], np.float32))]
        records.append(EpochRecord.of(epoch, weights, rng.integers(0, 10, 10_000), rng.random(10_000)))
    confusions = np.stack([np.diag(rng.integers(800, 1000, 10)) for _ in range(epochs + 1)])
    timeline = Timeline(tuple(records), np.arange(epochs + 1), confusions)
    began = time.perf_counter()
    bands = [layer_bands(timeline, layer) for layer in range(len(sizes) - 1)]
    value_range = max(figures.weight_range(first_layer_view(timeline, e, SINCE_START)) for e in range(1, epochs + 1))
    once = time.perf_counter() - began
    image = rng.random((28, 28)).astype(np.float32)
    times = []
    for step in range(steps):
        epoch = step % (epochs + 1)
        began = time.perf_counter()
        figures.weights_grid_figure(first_layer_view(timeline, epoch, SINCE_START), value_range=value_range,
                                    quantity="change since step 0").to_json()
        figures.class_accuracy_figure(timeline.epochs, timeline.per_class_accuracy(), epoch).to_json()
        figures.weight_bands_figure(timeline.epochs, bands, ["1", "2", "3"], epoch).to_json()
        tiles = unit_over_time(timeline, 17, SINCE_START)
        figures.weights_grid_figure(tiles.T, columns=len(tiles), value_range=figures.weight_range(tiles[1:]),
                                    unit_ids=timeline.epochs, highlight=epoch).to_json()
        figures.unit_norm_figure(timeline.epochs, np.linalg.norm(tiles, axis=1), 17, epoch).to_json()
        figures.answers_over_time_figure(timeline.epochs, answers_over_time(timeline, image), epoch).to_json()
        times.append(time.perf_counter() - began)
    print(f"weights over time ({epochs + 1} records of the default model, {config.hidden[0]} first-layer units):",
          flush=True)
    print(f"  once a run: the layers' percentile bands and the grid's fixed colour range: {once * 1000:.0f} ms",
          flush=True)
    print(f"  one scrub step (grid, per-digit accuracy, bands, a unit's filmstrip and norm, a drawing "
          f"answered by every epoch; {steps} steps): p50 {_ms(times, 50)} ms, p95 {_ms(times, 95)} ms "
          "(goal <= 300 ms server side)", flush=True)


def print_units(data_spec: str | None, changes: int = 5) -> None:
    """The lab's cost: one change (units switched off) answered by a forward pass over the whole test
    split, per digit too; one unit's gradient-ascent image; the first layer's importance ranking. On
    the default model's shape (random weights: the cost does not depend on the values)."""
    from mlpdash.config import TrainConfig
    from mlpdash.data import load_mnist
    from mlpdash.explain import Network
    from mlpdash.model import to_model_input
    from mlpdash.units import ablated, accuracy, dream, importance

    config, rng = TrainConfig(), np.random.default_rng(0)
    sizes = [784, *config.hidden, 10]
    weights = [w for a, b in zip(sizes, sizes[1:])
               for w in (rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32), np.zeros(b, np.float32))]
    network = Network.from_weights(weights)
    data = load_mnist(data_spec)
    images = to_model_input(data.x_test)
    changes_s = []
    for _ in range(changes):
        off = rng.choice(config.hidden[0], size=config.hidden[0] // 10, replace=False)
        began = time.perf_counter()
        accuracy(ablated(network, 1, off), images, data.y_test)
        changes_s.append(time.perf_counter() - began)
    began = time.perf_counter()
    dream(network, 2, 7)
    dream_s = time.perf_counter() - began
    began = time.perf_counter()
    importance(network, images, data.y_test, 1)
    importance_s = time.perf_counter() - began
    print(f"units (the default model's shape, test split of {data.source}: {len(images):,} digits):", flush=True)
    print(f"  one lab change (10 % of the first layer off, accuracy overall and per digit): p50 "
          f"{_ms(changes_s, 50)} ms, max {max(changes_s) * 1000:.0f} ms (goal <= 1 s)", flush=True)
    print(f"  what a second-layer unit wants to see (gradient ascent): {dream_s * 1000:.0f} ms (goal <= 2 s); "
          f"the first layer's importance ranking: {importance_s * 1000:.0f} ms", flush=True)


def _explain_model(data_spec: str | None, model_dir: str | None) -> tuple[Any, str, str]:
    """A saved run's model, or the default model trained here on `data_spec` (a minute on the sample)."""
    if model_dir:
        from mlpdash.runs import load_run_model, read_info

        return load_run_model(model_dir), read_info(Path(model_dir)).config.activation, f"run {model_dir}"
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    with tempfile.TemporaryDirectory() as tmp:
        job = TrainingJob(TrainConfig(), data_spec, tmp).start()
        job.join()
        snap = job.snapshot()
        if snap.report is None:
            raise RuntimeError(f"the default model did not train: {snap.error}")
        return job.predictor.model, "relu", f"the default model trained here, test accuracy {snap.report.accuracy:.4f}"


# --- memory over many runs -------------------------------------------------------------------------


def print_memory(data_spec: str | None, runs: int) -> None:
    """RSS growth over `runs` default-size jobs, measured in a fresh child process (see memory_child)."""
    source = data_spec or "sample"
    print(f"memory: RSS of one fresh process (a child of this one, nothing else loaded) training {runs} "
          f"default-size runs ({_default_architecture()}, 1 epoch each, data {source}) one after another "
          "through JobManager, as the server does; the growth is per job, not per epoch", flush=True)
    code = f"from mlpdash.bench import memory_child; memory_child({source!r}, {runs})"
    # The child's lines go straight to our stdout; its TensorFlow chatter is not part of the figure.
    subprocess.run([sys.executable, "-c", code], check=True, stderr=subprocess.DEVNULL)


def memory_child(data_spec: str, runs: int) -> None:
    """Train `runs` 1-epoch default jobs through one JobManager, asking each model for a drawing as a
    tab would, and print the RSS after each run and the growth."""
    from mlpdash.config import TrainConfig
    from mlpdash.jobs import JobManager

    drawing = sample_drawing()
    after: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        manager = JobManager(tmp)
        print(f"  RSS before the first run (TensorFlow not yet imported): {rss_mb():.1f} MB", flush=True)
        for _ in range(runs):
            job = manager.start(TrainConfig(epochs=1), data_spec)
            job.join()
            predictor = manager.answering_predictor()
            if predictor is not None:
                from mlpdash.predict import predict_drawing

                predict_drawing(predictor, drawing)
            after.append(rss_mb())
    print(f"  RSS after run 1: {after[0]:.1f} MB, after run {runs}: {after[-1]:.1f} MB "
          f"(each run: {', '.join(f'{mb:.0f}' for mb in after)})", flush=True)
    total = after[-1] - after[0]
    per_run = total / (runs - 1) if runs > 1 else 0.0
    print(f"  growth from run 1 to run {runs}: {total:.1f} MB total, {per_run:.1f} MB per run "
          f"(goal: growth <= 100 MB over 10 runs, i.e. <= {100 / 9:.1f} MB per run)", flush=True)


def rss_mb() -> float:
    """This process's resident set size (VmRSS of /proc/self/status) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _default_architecture() -> str:
    from mlpdash.config import TrainConfig

    return TrainConfig().architecture


# --- training throughput and drawing latency with browser tabs open --------------------------------

# Long enough that the run is still training when the window ends; the architecture is the default.
BENCH_EPOCHS = 200
PACE_EVERY_S = 2.0
POLL_S = 0.05
SERVER_START_TIMEOUT_S = 120
PAGE_TIMEOUT_MS = 120_000
ANSWER_TIMEOUT_MS = 60_000
CHROMIUM = os.environ.get("MLPDASH_CHROMIUM", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}
TIMINGS_ENV_VAR = "MLPDASH_BENCH_TIMINGS"
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


@dataclass(frozen=True)
class Throughput:
    """Training speed over whole epochs of one run, as the run folder records them."""

    samples_per_s: float  # training samples per wall-clock second, epoch end to epoch end
    epochs: int
    window_s: float
    pace: float | None  # median of the status line's samples/s (its last 20 training batches)
    server_cpu_s: float | None  # CPU seconds of the training process over the window
    browser_cpu_s: float | None  # CPU seconds of Chromium over the window
    ended: float = 0.0  # time.monotonic() at the window's end
    live_updates_per_s: float | None = None  # loss charts the server built a second (one per tab poll)
    tabs: int = 0


def print_tabs(counts: list[int], data_spec: str | None, seconds: float, draw_rounds: int,
               browser_nice: int = 0, repeats: int = 1) -> None:
    """Training throughput headless and on a real server with 0..N tabs open, `repeats` times in turn
    (each ratio against the headless window just before it; the median is the figure); drawing
    latency with the most tabs, in the last repeat."""
    problem = _browser_problem()
    if problem:
        print(f"tabs: skipped ({problem}): pip install -r requirements-dev.txt and install Debian's "
              "chromium (apt-get install chromium)", flush=True)
        return
    source = data_spec or "sample"
    print(f"tabs: training throughput of a default-size run ({_default_architecture()}, {BENCH_EPOCHS} "
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
        print(f"  headless (TrainingJob in this process, no server): {_throughput_line(headless)}", flush=True)
        for count in counts:
            latency = repeat == repeats and count == max(counts) and count > 0
            result = _server_run(count, source, train_size, seconds, draw_rounds if latency else 0,
                                 browser_nice)
            label = "no tab open (started from a tab, then closed)" if count == 0 else f"{count} tab(s) open"
            if not latency:
                print(f"  server, {label}: {_throughput_line(result)}", flush=True)
            ratios[count].append(result.samples_per_s / headless.samples_per_s)
    goals = {1: " (goal >= 0.9)", 5: " (goal >= 0.75)"}
    for count in sorted(ratios, key=lambda c: (c not in goals, c)):
        each = ratios[count]
        spread = f" (median of {len(each)}: {', '.join(f'{r:.3f}' for r in each)})" if len(each) > 1 else ""
        print(f"  ratio {count} tab(s) / headless: {statistics.median(each):.3f}{goals.get(count, '')}{spread}",
              flush=True)


# The page's charts refresh period (mlpdash/ui/panels.py: REFRESH_SECONDS x CHARTS_REFRESH_FACTOR), restated
# here because the bench must not import Streamlit.
CHARTS_REFRESH_S = 3.0


def _throughput_line(result: Throughput) -> str:
    pace = f"{result.pace:,.0f}" if result.pace else "—"
    cpu = ""
    if result.server_cpu_s is not None:
        cpu = f"; CPU over the window: training process {result.server_cpu_s:.1f} s"
        if result.browser_cpu_s is not None:
            cpu += f", Chromium {result.browser_cpu_s:.1f} s"
    updates = "" if result.live_updates_per_s is None else f"; live updates {result.live_updates_per_s:.1f}/s"
    if result.tabs:
        updates += (f" (each of the {result.tabs} tab(s) asks every {CHARTS_REFRESH_S:g} s; tabs that show the "
                    "same state share one figure)")
    return (f"{result.samples_per_s:,.0f} samples/s ({result.epochs} epochs in {result.window_s:.1f} s; "
            f"status line {pace}){cpu}{updates}")


def _browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (MLPDASH_CHROMIUM names another)"
    if not (REPO_ROOT / "app.py").is_file():
        return f"no app.py in {REPO_ROOT}"
    return None


def headless_throughput(source: str, seconds: float) -> Throughput:
    """The same run with no server and no page: the job alone in this process."""
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    with tempfile.TemporaryDirectory() as tmp:
        job = TrainingJob(TrainConfig(epochs=BENCH_EPOCHS), source, tmp).start()
        try:
            while job.snapshot().run_dir is None:  # loading data, building the model
                if job.join(POLL_S):
                    raise RuntimeError(f"the headless run ended early: {job.snapshot().error}")
            snap = job.snapshot()
            return _measure(snap.run_dir / "metrics.jsonl", snap.train_size, seconds,
                            lambda: job.snapshot().samples_per_second, [os.getpid()], [])
        finally:
            job.stop()
            job.join(60)


def _measure(metrics: Path, train_size: int, seconds: float, pace: Callable[[], float | None],
             server_pids: list[int], browser_pids: list[int]) -> Throughput:
    """Watch the run folder from one epoch end to the first epoch end `seconds` or more later."""
    began, first = _next_epoch_end(metrics, len(_rows(metrics)), seconds + 120)
    cpu0 = _cpu_seconds(server_pids), _cpu_seconds(browser_pids)
    paces: list[float] = []
    next_pace, ended, last = began, began, first
    while ended - began < seconds:
        now = time.monotonic()
        if now >= next_pace:
            paces += [p for p in [pace()] if p]
            next_pace += PACE_EVERY_S
        rows = len(_rows(metrics))
        if rows > last:
            ended, last = now, rows
        elif now - began > seconds + 120:
            raise TimeoutError(f"no epoch ended for {now - ended:.0f} s ({metrics})")
        time.sleep(POLL_S)
    cpu1 = _cpu_seconds(server_pids), _cpu_seconds(browser_pids)
    return Throughput(
        samples_per_s=(last - first) * train_size / (ended - began), epochs=last - first,
        window_s=ended - began, pace=statistics.median(paces) if paces else None,
        server_cpu_s=cpu1[0] - cpu0[0], browser_cpu_s=cpu1[1] - cpu0[1] if browser_pids else None,
        ended=ended,
    )


def _next_epoch_end(metrics: Path, seen: int, timeout: float) -> tuple[float, int]:
    """(time, rows) as soon as metrics.jsonl has more than `seen` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = len(_rows(metrics))
        if rows > seen:
            return time.monotonic(), rows
        time.sleep(POLL_S)
    raise TimeoutError(f"no epoch ended in {timeout:.0f} s ({metrics})")


def _rows(metrics: Path) -> list[str]:
    try:
        return metrics.read_text().splitlines()
    except FileNotFoundError:
        return []


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the live processes `pids` (from /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone: its time is lost, which is why windows are read from live processes
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def _descendants(root: int, exclude: int | None = None) -> list[int]:
    """Every process below `root`, leaving out `exclude` and its own descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid != exclude]
        found += children
        frontier += children
    return found


# --- the real server, its tabs, and the drawing round trip ---------------------------------------


@dataclass(frozen=True)
class _Server:
    url: str
    pid: int
    runs: Path
    timings: Path


def _server_run(tabs: int, source: str, train_size: int, seconds: float, draw_rounds: int,
                browser_nice: int) -> Throughput:
    """Start a server, open `tabs` tabs, start a run from the first (a tab opened and closed again
    when `tabs` is 0), measure, then draw in every tab if `draw_rounds`."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, _streamlit_server(source, Path(tmp)) as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(Path(tmp), browser_nice),
                                             headless=True, args=CHROMIUM_ARGS)
        try:
            pages = [_open_tab(browser, server.url) for _ in range(max(tabs, 1))]
            _start_run(pages[0])
            if tabs == 0:
                pages.pop().context.close()
            metrics = next(server.runs.glob("*/config.json")).parent / "metrics.jsonl"
            browser_pids = _descendants(os.getpid(), exclude=server.pid) if tabs else []
            result = _measure(metrics, train_size, seconds, lambda: _page_pace(pages[0]) if pages else None,
                              [server.pid], browser_pids)
            result = dataclasses.replace(result, live_updates_per_s=_rate(server.timings, "live", result),
                                         tabs=tabs)
            if draw_rounds:
                # Printed before the drawing, which follows it.
                print(f"  server, {tabs} tab(s) open: {_throughput_line(result)}", flush=True)
                _print_round_trips(pages, draw_rounds, server.timings)
            return result
        finally:
            browser.close()


def _chromium(folder: Path, nice: int) -> str:
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


@contextmanager
def _streamlit_server(source: str, folder: Path) -> Iterator[_Server]:
    """`streamlit run app.py` on a free port, as the browser tests start it, with its drawing path
    timed (mlpdash.ui.bench_server); stopped (the job saved) on leaving."""
    port = free_port()
    server = _Server(f"http://127.0.0.1:{port}", 0, folder / "runs", folder / "timings.txt")
    server.runs.mkdir()
    env = dict(os.environ, MLPDASH_DATA=source, MLPDASH_RUNS=str(server.runs), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1", **{TIMINGS_ENV_VAR: str(server.timings)})
    command = [sys.executable, "-c", "from mlpdash.ui.bench_server import serve_timed; serve_timed()",
               "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
    log = folder / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(server.url, proc, log)
        yield dataclasses.replace(server, pid=proc.pid)
    finally:
        proc.terminate()  # the server stops the job, which saves the run: allow for it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_drawing_seconds(log: Path) -> list[float]:
    """Per drawing: from the start of its preprocessing to the end of its prediction, in the script
    thread that did both."""
    started: dict[str, float] = {}
    seconds = []
    for line in log.read_text().splitlines() if log.exists() else []:
        thread, name, began, ended = line.split()
        if name == "preprocess":
            started[thread] = float(began)
        elif name == "predict" and thread in started:
            seconds.append(float(ended) - started.pop(thread))
    return seconds


def _rate(log: Path, name: str, window: Throughput) -> float:
    """Calls of `name` a second that began inside the measuring window."""
    lines = log.read_text().splitlines() if log.exists() else []
    began = [float(line.split()[2]) for line in lines if line.split()[1] == name]
    return sum(window.ended - window.window_s <= t <= window.ended for t in began) / window.window_s


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a test or bench server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Wait until a Streamlit server answers its health check; RuntimeError with its log if it
    exits or takes longer than SERVER_START_TIMEOUT_S."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def _open_tab(browser: Any, url: str) -> Any:
    """A tab of its own browser context (as a separate visitor's), once the page's first run is over."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    page.locator(STATUS).first.wait_for()
    page.locator("[data-test-script-state='notRunning']").wait_for(state="attached")
    return page


def _start_run(page: Any) -> None:
    from playwright.sync_api import expect

    field = page.locator(".st-key-epochs input")
    field.fill(str(BENCH_EPOCHS))
    field.press("Enter")
    expect(field).to_have_value(str(BENCH_EPOCHS))
    start = page.locator(".st-key-start_training button")
    expect(start).to_be_enabled(timeout=PAGE_TIMEOUT_MS)
    start.click()
    expect(page.locator(STATUS)).to_contain_text(re.compile("^Training"), timeout=PAGE_TIMEOUT_MS)


def _page_pace(page: Any) -> float | None:
    match = PACE_TEXT.search(page.locator(STATUS).first.inner_text())
    return float(match.group(1).replace(",", "")) if match else None


def _print_round_trips(pages: list[Any], rounds: int, timings: Path) -> None:
    """Clear and draw in every tab, one after another without waiting, then wait for every answer:
    `rounds` times. The browser round trip is timed in the page, from the stroke's mouse-up to the
    "Prediction: N" it brings."""
    for page in pages:
        page.evaluate(ROUND_TRIP_PROBE)
    skip = len(_server_drawing_seconds(timings))
    trips = []
    for _ in range(rounds):
        for page in pages:
            _clear(page)
        for page in pages:
            _stroke(page)
        for page in pages:
            page.wait_for_function("() => window.__bench.seen !== null", timeout=ANSWER_TIMEOUT_MS)
            trips.append(page.evaluate("() => window.__bench.seen - window.__bench.up") / 1000)
    server = _server_drawing_seconds(timings)[skip:]
    print(f"  drawing -> prediction with {len(pages)} tab(s) open while the run trains, {rounds} rounds of one "
          f"stroke in every tab at once ({len(trips)} drawings):", flush=True)
    print(f"    browser round trip, mouse-up to 'Prediction: N' drawn (canvas upload, fragment rerun, "
          f"figures, render): p50 {_ms(trips, 50)} ms, p95 {_ms(trips, 95)} ms", flush=True)
    if server:
        print(f"    in the server, preprocessing + probabilities (wall time in the script thread, GIL waits "
              f"included; {len(server)} calls): p50 {_ms(server, 50)} ms, p95 {_ms(server, 95)} ms "
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
        except AssertionError | PlaywrightTimeout:
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
