"""Run folders: every training run saved as files, each written atomically; listing and reloading.

Layout of `runs/<YYYYmmdd-HHMMSS>-<id>/`:
  config.json           the TrainConfig plus the data source
  metrics.jsonl         one JSON object per finished epoch
  weights.npz           first-layer kernels: `kernels` float16 [K, 784, units] and `epochs` int [K],
                        the epoch after which each was taken (0 = initial; every epoch up to 100,
                        thinned beyond)
  test_predictions.npz  `labels`, `predictions`, `confidences` for every test image, in test order
  mistakes.json         the misclassified test images: index, label, prediction, confidence
  model.keras           the Keras model, for the app and `evaluate`
  model/                a SavedModel: serving_default(images uint8 [N,28,28]) -> probabilities, digit
  failure.json          only when the run failed: the error
  summary.json          written last: its presence marks a run that ended (finished or stopped)

A file is first written beside its target and then renamed over it, so a crash leaves either the old
file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.config import TrainConfig

DEFAULT_RUNS_DIR = Path("runs")
RUNS_ENV_VAR = "MLPDASH_RUNS"
METRIC_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


class RunError(ValueError):
    """A run folder that cannot be read; the message names the folder and the problem."""


def runs_root(root: str | Path | None = None) -> Path:
    """`root`, else $MLPDASH_RUNS, else ./runs."""
    return Path(root or os.environ.get(RUNS_ENV_VAR) or DEFAULT_RUNS_DIR)


# --- atomic writes -------------------------------------------------------------------------------


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = _temp_beside(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def write_npz_atomic(path: Path, compress: bool = True, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def write_dir_atomic(path: Path, fill: Any) -> None:
    """Call `fill(tmp_dir)` to write a folder beside `path`, then rename it into place. An old
    folder is renamed aside first and removed last, so a crash leaves one whole copy or the other."""
    tmp, old = _temp_beside(path), _temp_beside(path)
    try:
        fill(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- writing a run -------------------------------------------------------------------------------


class RunWriter:
    """Creates a run folder and writes its files as the run goes."""

    def __init__(self, root: str | Path | None, config: TrainConfig, data_source: str) -> None:
        base = runs_root(root)
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = base / f"{stamp}-{secrets.token_hex(3)}"
        self.path.mkdir()
        write_json_atomic(self.path / "config.json", {"config": config.to_dict(), "data_source": data_source})

    def write_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        lines = "".join(json.dumps({k: row[k] for k in METRIC_KEYS}) + "\n" for row in rows)
        write_bytes_atomic(self.path / "metrics.jsonl", lines.encode())

    def write_weights(self, kernels: list[np.ndarray], epochs: list[int]) -> None:
        # float16 halves the files; the weights are only ever looked at, never trained from.
        # Trained weights barely compress, and compressing them cost half a second per run.
        write_npz_atomic(
            self.path / "weights.npz",
            compress=False,
            kernels=np.stack(kernels).astype(np.float16),
            epochs=np.asarray(epochs, dtype=np.int32),
        )

    def write_test_results(self, predictions: Mapping[str, np.ndarray], mistakes: Mapping[str, list]) -> None:
        write_npz_atomic(self.path / "test_predictions.npz", **predictions)
        write_json_atomic(self.path / "mistakes.json", dict(mistakes))

    def write_model(self, model: Any) -> None:
        # Imported here: TensorFlow loads only where a model is saved.
        from mlpdash.model import export_saved_model

        write_dir_atomic(self.path / "model", lambda tmp: export_saved_model(model, tmp))
        tmp = _temp_beside(self.path / "model.keras").with_suffix(".keras")  # Keras insists on it
        try:
            model.save(tmp)
            os.replace(tmp, self.path / "model.keras")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", dict(summary))

    def write_failure(self, error: str) -> None:
        write_json_atomic(self.path / "failure.json", {"error": error})


# --- reading runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """One entry of the run listing; `status` is finished, stopped, failed, incomplete or corrupt."""

    path: Path
    status: str
    config: TrainConfig | None = None
    data_source: str | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def has_model(self) -> bool:
        return (self.path / "model.keras").is_file()


@dataclass(frozen=True)
class SavedRun:
    """Everything a finished or stopped run recorded, as read back from its folder."""

    info: RunInfo
    metrics: list[dict[str, float]]
    kernels: np.ndarray | None  # float32 [E+1, 784, units]
    kernel_epochs: np.ndarray | None
    mistakes: dict[str, list] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.info.path

    def load_model(self) -> Any:
        return load_keras_model(self.path)


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run folder under `root`, newest first; unreadable ones are listed as corrupt."""
    base = runs_root(root)
    if not base.is_dir():
        return []
    folders = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [read_info(p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def read_info(path: Path) -> RunInfo:
    """The run's config, summary and status; never raises for a damaged folder."""
    path = Path(path)
    try:
        head = _read_json(path / "config.json")
        config = TrainConfig.from_dict(head["config"])
        source = head.get("data_source")
    except (RunError, KeyError, TypeError, ValueError) as err:
        return RunInfo(path, "corrupt", error=_message(err, path / "config.json"))
    try:
        if (path / "failure.json").exists():
            failure = _read_json(path / "failure.json")
            return RunInfo(path, "failed", config, source, error=str(failure.get("error")))
        if not (path / "summary.json").exists():
            return RunInfo(path, "incomplete", config, source)
        summary = _read_json(path / "summary.json")
        status = "stopped" if summary.get("stopped_early") else "finished"
        return RunInfo(path, status, config, source, summary)
    except (RunError, AttributeError) as err:
        return RunInfo(path, "corrupt", config, source, error=_message(err, path))


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder back; raises RunError naming the damaged file."""
    info = read_info(Path(path))
    if info.status == "corrupt":
        raise RunError(info.error or f"{path}: corrupt run folder")
    metrics = read_metrics(info.path / "metrics.jsonl")
    kernels = epochs = None
    weights = info.path / "weights.npz"
    if weights.exists():
        try:
            with np.load(weights) as data:
                kernels = data["kernels"].astype(np.float32)
                epochs = data["epochs"]
        except Exception as err:  # zip, pickle and key errors all mean the same to a reader
            raise RunError(f"{weights}: unreadable weight snapshots ({err})") from None
    mistakes_path = info.path / "mistakes.json"
    mistakes = _read_json(mistakes_path) if mistakes_path.exists() else {}
    return SavedRun(info, metrics, kernels, epochs, mistakes)


def read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            row = json.loads(line)
            rows.append({k: row[k] for k in METRIC_KEYS})
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RunError(f"{path}: line {number} is not a metrics row") from None
    return rows


def load_keras_model(path: str | Path) -> Any:
    """The run's Keras model; RunError when the run saved none or the file is damaged."""
    file = Path(path) / "model.keras"
    if not file.is_file():
        raise RunError(f"{path}: this run has no saved model (model.keras is missing)")
    import keras  # imported here so that listing runs never loads TensorFlow

    try:
        return keras.models.load_model(file, compile=False)
    except Exception as err:
        raise RunError(f"{file}: cannot load the model ({type(err).__name__}: {err})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise RunError(f"{path}: unreadable ({err.strerror})") from None


def _message(err: Exception, path: Path) -> str:
    text = str(err)
    return text if str(path.parent) in text else f"{path}: {text}"
