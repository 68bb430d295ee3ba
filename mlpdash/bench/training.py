"""The training part of `python -m mlpdash bench` (left out by --skip-training).

The engine's overhead: the whole-process time of `python -m mlpdash train` (engine thread, per-batch
reporting, weight snapshots, run saving) against the same work written as a plain `model.fit`
script, run alternately in fresh processes; the median of the per-pair ratios is the figure. Then the
engine's controls, timed (mlpdash/bench/controls.py).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlpdash.bench.controls import print_controls


def print_training_overhead(data_spec: str | None, epochs: int, pairs: int) -> None:
    """The training part of the bench: the overhead against a plain fit, then the controls."""
    print_overhead(data_spec, epochs, pairs)
    print_controls()


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


def print_overhead(data_spec: str | None, epochs: int, pairs: int) -> None:
    data_args = ["--data", data_spec] if data_spec else []
    print(f"training overhead: {pairs} pairs of {epochs}-epoch default runs, data {data_spec or 'default'}",
          flush=True)
    ours_runs: list[tuple[float, float]] = []
    plain_runs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "mlpdash", "train", *data_args, "--epochs", str(epochs), "--out", tmp]
        plain = [sys.executable, "-c", "from mlpdash.bench.training import plain_training; "
                 f"plain_training({data_spec!r}, {epochs}, {tmp!r})"]
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


def _timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _pair_line(ours: tuple[float, float], plain: tuple[float, float]) -> str:
    return (f"mlpdash {ours[0]:.1f} s ({ours[1]:.1f} s CPU), plain fit {plain[0]:.1f} s ({plain[1]:.1f} s CPU), "
            f"ratio wall {ours[0] / plain[0]:.3f}, CPU {ours[1] / plain[1]:.3f}")
