"""The server's work behind two views, on the default model's shape: one step of the weights-over-time
scrubber (`python -m mlpdash bench --over-time`) and one change in the units' lab (`bench --units`).
Random weights: what the figures and forward passes cost does not depend on the values."""

from __future__ import annotations

import time

import numpy as np

from mlpdash.bench.common import ms
from mlpdash.mnist import IMAGE_SIDE, NUM_CLASSES, PIXELS

# The unit whose filmstrip and norm the scrub step draws: any first-layer unit costs the same.
SHOWN_UNIT = 17


def _layer_sizes() -> list[int]:
    from mlpdash.config import TrainConfig

    return [PIXELS, *TrainConfig().hidden, NUM_CLASSES]


def print_over_time(epochs: int = 10, steps: int = 20) -> None:
    """The server's work for one step of the weights-over-time view (the scrubber moved by one
    epoch): the first layer's grid (700 units, change since step 0), the per-digit accuracy, the
    layers' bands (their percentiles computed once a run), one unit's filmstrip and norm, and a
    drawing answered by every epoch's model. On a timeline of the default model's shape with random
    weights: the figures cost the same whatever the values."""
    from mlpdash import figures
    from mlpdash.timeline import SINCE_START, EpochRecord, Timeline, answers_over_time, first_layer_view, \
        layer_bands, unit_over_time

    sizes, rng = _layer_sizes(), np.random.default_rng(0)
    start = [rng.normal(0, 0.05, (a, b)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    records = []
    for epoch in range(epochs + 1):  # each epoch drifts the weights a little, as training does
        kernels = [k + rng.normal(0, 0.002 * epoch, k.shape).astype(np.float32) for k in start]
        weights = [w for k in kernels for w in (k, np.zeros(k.shape[1], np.float32))]
        records.append(EpochRecord.of(epoch, weights, rng.integers(0, NUM_CLASSES, 10_000), rng.random(10_000)))
    confusions = np.stack([np.diag(rng.integers(800, 1000, NUM_CLASSES)) for _ in range(epochs + 1)])
    timeline = Timeline(tuple(records), np.arange(epochs + 1), confusions)
    began = time.perf_counter()
    bands = [layer_bands(timeline, layer) for layer in range(len(sizes) - 1)]
    value_range = max(figures.weight_range(first_layer_view(timeline, e, SINCE_START)) for e in range(1, epochs + 1))
    once = time.perf_counter() - began
    image = rng.random((IMAGE_SIDE, IMAGE_SIDE)).astype(np.float32)
    times = []
    for step in range(steps):
        epoch = step % (epochs + 1)
        began = time.perf_counter()
        figures.weights_grid_figure(first_layer_view(timeline, epoch, SINCE_START), value_range=value_range,
                                    quantity="change since step 0").to_json()
        figures.class_accuracy_figure(timeline.epochs, timeline.per_class_accuracy(), epoch).to_json()
        figures.weight_bands_figure(timeline.epochs, bands, ["1", "2", "3"], epoch).to_json()
        tiles = unit_over_time(timeline, SHOWN_UNIT, SINCE_START)
        figures.weights_grid_figure(tiles.T, columns=len(tiles), value_range=figures.weight_range(tiles[1:]),
                                    unit_ids=timeline.epochs, highlight=epoch).to_json()
        figures.unit_norm_figure(timeline.epochs, np.linalg.norm(tiles, axis=1), SHOWN_UNIT, epoch).to_json()
        figures.answers_over_time_figure(timeline.epochs, answers_over_time(timeline, image), epoch).to_json()
        times.append(time.perf_counter() - began)
    print(f"weights over time ({epochs + 1} records of the default model, {sizes[1]} first-layer units):",
          flush=True)
    print(f"  once a run: the layers' percentile bands and the grid's fixed colour range: {once * 1000:.0f} ms",
          flush=True)
    print(f"  one scrub step (grid, per-digit accuracy, bands, a unit's filmstrip and norm, a drawing "
          f"answered by every epoch; {steps} steps): p50 {ms(times, 50)} ms, p95 {ms(times, 95)} ms "
          "(goal <= 300 ms server side)", flush=True)


def print_units(data_spec: str | None, changes: int = 5) -> None:
    """The lab's cost: one change (units switched off) answered by a forward pass over the whole test
    split, per digit too; one unit's gradient-ascent image; the first layer's importance ranking. On
    the default model's shape (random weights: the cost does not depend on the values)."""
    from mlpdash.data import load_mnist
    from mlpdash.explain import Network
    from mlpdash.model import to_model_input
    from mlpdash.units import ablated, accuracy, dream, importance

    sizes, rng = _layer_sizes(), np.random.default_rng(0)
    weights = [w for a, b in zip(sizes, sizes[1:])
               for w in (rng.normal(0, np.sqrt(2 / a), (a, b)).astype(np.float32), np.zeros(b, np.float32))]
    network = Network.from_weights(weights)
    data = load_mnist(data_spec)
    images = to_model_input(data.x_test)
    first = sizes[1]
    changes_s = []
    for _ in range(changes):
        off = rng.choice(first, size=first // 10, replace=False)
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
          f"{ms(changes_s, 50)} ms, max {max(changes_s) * 1000:.0f} ms (goal <= 1 s)", flush=True)
    print(f"  what a second-layer unit wants to see (gradient ascent): {dream_s * 1000:.0f} ms (goal <= 2 s); "
          f"the first layer's importance ranking: {importance_s * 1000:.0f} ms", flush=True)
