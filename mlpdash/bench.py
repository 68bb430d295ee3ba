"""Benchmarks behind `python -m mlpdash bench`: numbers printed, never asserted.

1. Reporting overhead: the whole-process time of `python -m mlpdash train` (engine thread, per-batch
   reporting, weight snapshots, run saving) against the same work written as a plain `model.fit`
   script, run alternately in fresh processes; the median of the per-pair ratios is the figure.
2. Drawing -> probabilities latency: `predict_drawing` on a canvas-sized RGBA drawing, p50 and p95.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CANVAS = 280


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
