"""What a hostile run folder costs the server that loads it (printed after `bench --memory-runs N`).

Two folders built as an attacker would: a `model.weights.npz` whose first array declares a 94 MB
(784 x 30,000) layer, packed into about 100 KB, and a legacy `model.keras` whose config declares a
300,000-unit layer (building it would take 940 MB). The first must be refused before anything is
unpacked, the second must only lend its weights to a model built from the run's own config.json.
The unit tests check that (tests/test_run_models.py, in bytes and layers built); the time and the
peak RSS each takes is printed here, in a fresh child process; and, for comparison, what reading a
default-size run's weights costs the views that explain a model (NumPy) against a Keras model.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.bench.common import status_mb

DECLARED_UNITS = 30_000  # the npz's first layer: 784 x 30,000 float32, 94 MB
LEGACY_UNITS = 300_000  # the legacy model.keras's first hidden layer, as its config declares it
SMALL_HIDDEN = 16  # the run's own config: one hidden layer of 16 units


def print_run_loading() -> None:
    """Run `run_loading_child` in a fresh process: its peak RSS is then the loads' alone."""
    code = "from mlpdash.bench.run_loading import run_loading_child; run_loading_child()"
    # The child's lines go straight to our stdout; its TensorFlow chatter is not part of the figure.
    subprocess.run([sys.executable, "-c", code], check=True, stderr=subprocess.DEVNULL)


def run_loading_child() -> None:
    from mlpdash.config import TrainConfig
    from mlpdash.model import build_network
    from mlpdash.mnist import PIXELS
    from mlpdash.runs import RunError, load_run_model

    config = TrainConfig(hidden=(SMALL_HIDDEN,), epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        source = build_network(config)  # TensorFlow and Keras loaded before anything is timed
        declaring = np.zeros((PIXELS, DECLARED_UNITS), np.float32)
        packed = io.BytesIO()
        np.savez_compressed(packed, w0=declaring, w1=np.zeros(DECLARED_UNITS, np.float32))
        npz_run = _run_with(Path(tmp) / "npz", config, "model.weights.npz", packed.getvalue())
        legacy_run = _run_with(Path(tmp) / "legacy", config, "model.keras", _legacy_file(source, Path(tmp)))
        load_run_model(_run_with(Path(tmp) / "warm", config, "model.keras", _legacy_file(source, Path(tmp), 0)))

        def refuse() -> str:
            try:
                load_run_model(npz_run)
            except RunError:
                return "refused"
            return "NOT refused"

        outcome, seconds, peak = _measured(refuse)
        print("hostile run folders (a fresh process; peak RSS above the RSS before each load):", flush=True)
        print(f"  model.weights.npz declaring a {declaring.nbytes / 1e6:.0f} MB first layer in "
              f"{len(packed.getvalue()) / 1e3:.0f} KB: {outcome} in {seconds * 1000:.0f} ms, peak "
              f"{_mb(peak)} (goal: refused before unpacking, < 2 s)", flush=True)
        model, seconds, peak = _measured(lambda: load_run_model(legacy_run))
        built = model.layers[1].units if len(model.layers) > 1 else None
        print(f"  legacy model.keras declaring a {LEGACY_UNITS:,}-unit layer "
              f"({PIXELS * LEGACY_UNITS * 4 / 1e6:,.0f} MB to build): loaded as the run's {built}-unit layer in "
              f"{seconds * 1000:.0f} ms, peak {_mb(peak)} (goal: only its weights lent, < 5 s)", flush=True)
        _print_weights_read(Path(tmp))


def _print_weights_read(folder: Path) -> None:
    """A default-size run's weights as the views that explain a model read them (NumPy, from
    model.weights.npz) against the Keras model they were read through before: the median of 5, each
    in a fresh store (a first visit)."""
    from mlpdash.config import TrainConfig
    from mlpdash.model import build_network, network_weights
    from mlpdash.runs import RunWriter
    from mlpdash.store import Store

    config = TrainConfig(epochs=1)
    writer = RunWriter(folder / "default", config, "sample")
    writer.write_model_weights(network_weights(build_network(config)))
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": False, "epochs_completed": 1})
    writer.close()
    numpy_read = [_measured(lambda: Store().weights(writer.path))[1] for _ in range(5)]
    keras_read = [_measured(lambda: network_weights(Store().predictor(writer.path).model))[1] for _ in range(5)]
    print(f"  a default-size run's weights for the views that explain it (Units, Inside a prediction; "
          f"median of 5, a fresh store each): {np.median(numpy_read) * 1000:.0f} ms read with NumPy, "
          f"{np.median(keras_read) * 1000:.0f} ms through a Keras model built to hold them", flush=True)


def _run_with(folder: Path, config: Any, name: str, data: bytes) -> Path:
    """A finished run of `config` in `folder` holding `data` as its file `name`."""
    from mlpdash.runs import RunWriter

    writer = RunWriter(folder, config, "sample")
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": False, "epochs_completed": 1})
    writer.close()
    (writer.path / name).write_bytes(data)
    return writer.path


def _legacy_file(model: Any, folder: Path, units: int = LEGACY_UNITS) -> bytes:
    """`model` saved as a model.keras whose config declares `units` units in its first hidden layer
    (0: as it is)."""
    path = folder / f"legacy-{units}.keras"
    model.save(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as saved, zipfile.ZipFile(buffer, "w") as target:
        for item in saved.infolist():
            data = saved.read(item)
            if item.filename == "config.json" and units:
                config = json.loads(data)
                for layer in config["config"]["layers"]:
                    if layer["class_name"] == "Dense" and layer["config"]["name"] == "hidden_1":
                        layer["config"]["units"] = units
                data = json.dumps(config).encode()
            target.writestr(item, data)
    return buffer.getvalue()


def _measured(action: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(what `action` returned, its seconds, its peak RSS above the RSS before it in MB, or None
    where the kernel's peak cannot be reset)."""
    before = status_mb("VmRSS")
    reset = _reset_peak()
    began = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - began
    return result, seconds, status_mb("VmHWM") - before if reset else None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its RSS now (Linux 4.0 on); whether it could."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _mb(peak: float | None) -> str:
    return "not measurable here" if peak is None else f"+{peak:.1f} MB"
