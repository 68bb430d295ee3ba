"""What answering a drawing costs: the drawing -> probabilities latency (printed by every
`python -m mlpdash bench`) and, with --explain, the explanation of one input, the map's basis and the
targeted attack."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.bench.common import CANVAS, ms, sample_drawing
from mlpdash.mnist import IMAGE_SIDE, NUM_CLASSES

# A test digit drawn on the canvas for the explanation: each pixel a ZOOM x ZOOM square, centred.
ZOOM = 5
# The measure for the attack's budget: the share of digits turned at this epsilon or below.
EPSILON_GOAL = 0.15


def print_latency(calls: int) -> None:
    """Drawing -> probabilities: preprocessing a canvas-sized RGBA drawing and one prediction, p50 and p95."""
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
          f"p50 {ms(whole, 50)} ms, p95 {ms(whole, 95)} ms (goal p50 <= 10 ms); "
          f"of which preprocessing p50 {ms(prep, 50)} ms", flush=True)


def print_explain(data_spec: str | None, model_dir: str | None, digits: int, attacks: int) -> None:
    """The explanation of one input (preprocessing, exact attribution, activations, map placement,
    neighbours) timed over `digits` test digits drawn on a canvas; the map's basis fitted on the whole
    test split; and `attacks` targeted attacks on test digits towards random other digits, with random
    sign noise of each one's budget for comparison."""
    from mlpdash.data import load_mnist
    from mlpdash.explain import EPSILON_LADDER, Network, attack, explain, fit_map, sign_noise
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
    side, top = IMAGE_SIDE * ZOOM, (CANVAS - IMAGE_SIDE * ZOOM) // 2
    times = []
    for index in range(min(digits, len(test))):
        drawing = np.zeros((CANVAS, CANVAS), np.uint8)
        drawing[top:top + side, top:top + side] = np.kron(data.x_test[index], np.ones((ZOOM, ZOOM), np.uint8))
        began = time.perf_counter()
        e = explain(network, prepare(drawing).digit)
        hidden_map.place(e.activations[-1] if e.activations else e.logits)
        hidden_map.nearest(e.activations[-1] if e.activations else e.logits)
        e.top_units(e.digit)
        times.append(time.perf_counter() - began)
    print(f"  one input explained (preprocessing, exact attribution, activations, map, neighbours; "
          f"{len(times)} canvas drawings): p50 {ms(times, 50)} ms, p95 {ms(times, 95)} ms "
          "(goal p50 <= 50 ms)", flush=True)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(test), size=min(attacks, len(test)), replace=False)
    epsilons, seconds, noise_changed = [], [], 0
    for index in picks:
        image = test[index]
        answer = int(np.argmax(network.logits(image[None])[0]))
        target = int((answer + 1 + rng.integers(NUM_CLASSES - 1)) % NUM_CLASSES)  # any digit but the answer
        began = time.perf_counter()
        found = attack(network, image, target)
        seconds.append(time.perf_counter() - began)
        epsilons.append(np.inf if found.epsilon is None else found.epsilon)
        if found.epsilon:
            noisy = sign_noise(image, found.epsilon, rng)
            noise_changed += int(np.argmax(network.logits(noisy[None])[0])) != answer
    reached = np.isfinite(epsilons)
    at_goal = float(np.mean(np.asarray(epsilons) <= EPSILON_GOAL))
    print(f"  targeted attack on {len(picks)} test digits towards random other digits (PGD, "
          f"{EPSILON_LADDER[0]:g}-{EPSILON_LADDER[-1]:g} budget ladder): median epsilon "
          f"{np.median(epsilons):.3g} (goal <= 0.12), reached at {EPSILON_GOAL:g}: {at_goal:.0%}, on the ladder: "
          f"{np.mean(reached):.0%}; each attack p50 {ms(seconds, 50)} ms, max "
          f"{max(seconds) * 1000:.0f} ms (goal <= 1 s); random sign noise of each digit's own epsilon "
          f"changed {noise_changed / max(1, int(np.sum(reached))):.1%} of the answers (goal <= 10 %)",
          flush=True)


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
