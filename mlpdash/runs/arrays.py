"""What a run recorded beyond its listing entry, read back with every array checked: the whole run
(`load_run`: metrics, first-layer snapshots, mistakes), its model (`load_run_model`, rebuilt by our own
code with only the weights read from the folder), its timeline and its test predictions.

Every read first takes the run's listing entry from `reader`, so a damaged folder is refused with
the reason the listing gives; each array is held to what the run's own layers need, and all of a
kind together to a byte budget (`mlpdash.budgets`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.budgets import snapshot_bytes, timeline_bytes
from mlpdash.config import MAX_EPOCHS, TrainConfig
from mlpdash.files import UnsafeFileError, read_npy
from mlpdash.mnist import NUM_CLASSES, PIXELS
from mlpdash.runs.base import (
    CONFUSIONS_FILE,
    LEGACY_MODEL,
    LEGACY_WEIGHTS,
    MODEL_WEIGHTS,
    NPY_HEADER_BYTES,
    RECORD_NAME,
    SNAPSHOT_DIR,
    SNAPSHOT_NAME,
    TIMELINE_DIR,
    RunError,
    _check_finite,
    _check_layers,
    _exists,
    _first_units,
    _is_file,
    _is_int,
    _is_number,
    _kernel_limit,
    _read_json,
    _read_npz,
    _weight_caps,
    _weights_limit,
    layer_shapes,
    layer_sizes,
)
from mlpdash.runs.legacy import _load_legacy_weights, _read_legacy_snapshots
from mlpdash.runs.reader import RunInfo, read_info, read_metrics
from mlpdash.runs.weights import read_model_weights
from mlpdash.timeline import MAX_RECORDS, EpochRecord, Timeline

MAX_TEST_RESULTS_BYTES = 64 << 20
MAX_VALIDATION = 10**6  # digits a timeline record may answer for (MNIST's validation split: 10,000)


@dataclass(frozen=True)
class SavedRun:
    """Everything a run recorded, as read back from its folder."""

    info: RunInfo
    metrics: list[dict[str, float]]
    kernels: np.ndarray | None  # [K, 784, units] as stored: float16 (float32 where a weight needs it)
    kernel_epochs: np.ndarray | None
    mistakes: dict[str, list] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.info.path

    def load_model(self) -> Any:
        return load_run_model(self.path)


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder back; raises RunError naming the damaged file."""
    info = read_info(Path(path))
    if info.status == "damaged":
        raise RunError(info.error or f"{path}: damaged run folder")
    assert info.config is not None
    metrics = read_metrics(info.path / "metrics.jsonl")
    kernels, epochs = _read_snapshots(info.path, info.config)
    mistakes_path = info.path / "mistakes.json"
    mistakes = _validate_mistakes(_read_json(mistakes_path), mistakes_path) if _exists(mistakes_path) else {}
    return SavedRun(info, metrics, kernels, epochs, mistakes)


def load_run_model(path: str | Path) -> Any:
    """The run's model, rebuilt from its validated config by our own code with only its weights
    read from the folder (never a graph); RunError when it saved none or they do not fit."""
    path = Path(path)
    config = _run_config(path)
    weights = _saved_weights(path, config)
    from mlpdash.model import build_network, set_network_weights  # TensorFlow only from here on

    model = build_network(config)
    problem = (set_network_weights(model, weights) if weights is not None
               else _load_legacy_weights(model, path / LEGACY_MODEL, _weights_limit(config)))
    if problem:
        raise RunError(f"{path}: the saved weights do not fit its config.json ({problem})")
    return model


def saved_weights(path: str | Path) -> list[np.ndarray] | None:
    """The run's saved weights (w0, w1, ... in layer order, checked against its config.json), read
    without TensorFlow; None for a run that kept only a legacy model.keras, whose weights only a
    Keras model can read (load_run_model). RunError when it saved none."""
    path = Path(path)
    return _saved_weights(path, _run_config(path))


def _run_config(path: Path) -> TrainConfig:
    info = read_info(path)
    if info.config is None:
        raise RunError(info.error or f"{path}: damaged run folder")
    return info.config


def _saved_weights(path: Path, config: TrainConfig) -> list[np.ndarray] | None:
    if _is_file(path / MODEL_WEIGHTS):
        return read_model_weights(path, config)
    if _is_file(path / LEGACY_MODEL):
        return None
    raise RunError(f"{path}: this run has no saved model (no {MODEL_WEIGHTS})")


def _read_snapshots(path: Path, config: TrainConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The first-layer snapshots as stored (float16, or float32 where needed), [K, 784, units]. All of
    them together may hold at most twice the snapshot budget, checked before any is read."""
    shape = (PIXELS, _first_units(config))
    cap = 2 * snapshot_bytes()
    folder = path / SNAPSHOT_DIR
    if folder.is_dir() and not folder.is_symlink():
        files = sorted((int(m.group(1)), folder / m.group(0))
                       for m in map(SNAPSHOT_NAME.match, os.listdir(folder)) if m)
        if files:
            total = sum(file.lstat().st_size for _, file in files)
            if total > cap:
                raise RunError(f"{folder}: {len(files)} snapshots of {total:,} bytes, more than the "
                               f"{cap:,} allowed (MLPDASH_SNAPSHOT_MB)")
            kernels = []
            for _, file in files:
                try:
                    kernel = read_npy(file, _kernel_limit(config))
                except UnsafeFileError as err:
                    raise RunError(str(err)) from None
                if kernel.shape != shape or kernel.dtype not in (np.float16, np.float32):
                    raise RunError(f"{file}: expected a float array of shape {shape}, got "
                                   f"{kernel.dtype} {kernel.shape}")
                _check_finite([kernel], file)
                kernels.append(kernel)
            return np.stack(kernels), np.array([epoch for epoch, _ in files], np.int64)
    if _exists(path / LEGACY_WEIGHTS):
        return _read_legacy_snapshots(path, shape, cap)
    return None, None


def read_timeline(path: str | Path) -> Timeline | None:
    """The weights and validation answers a run kept over time; None for a run saved before they
    were recorded, or before its first record. Raises RunError naming a damaged file. Each record may
    unpack to at most what the run's own layers need, and all of them together to at most twice the
    timeline budget (or two records, whichever is more: the thinning always keeps two)."""
    info = read_info(Path(path))
    if info.status == "damaged" or info.config is None:
        raise RunError(info.error or f"{path}: damaged run folder")
    folder = info.path / TIMELINE_DIR
    if not folder.is_dir() or folder.is_symlink():
        return None
    files = sorted((int(m.group(1)), folder / m.group(0)) for m in map(RECORD_NAME.match, os.listdir(folder)) if m)
    per_record = _record_limit(info.config)
    cap = max(2 * timeline_bytes(), 2 * per_record)
    if len(files) > MAX_RECORDS + 1 or any(epoch > MAX_EPOCHS for epoch, _ in files):
        raise RunError(f"{folder}: {len(files)} records up to epoch {files[-1][0]}: more than a run keeps")
    total = sum(file.lstat().st_size for _, file in files)
    if total > cap:
        raise RunError(f"{folder}: {len(files)} records of {total:,} bytes, more than the {cap:,} allowed "
                       "(MLPDASH_TIMELINE_MB)")
    records: list[EpochRecord] = []
    for epoch, file in files:
        try:
            record = _read_record(file, epoch, info.config, per_record)
        except RunError:
            if not _exists(file):
                continue  # thinned away by the run still training, between the listing and the read
            raise
        if records and len(record.predictions) != len(records[0].predictions):
            raise RunError(f"{file}: it answers for {len(record.predictions):,} validation digits, the run's "
                           f"first record for {len(records[0].predictions):,}")
        unpacked = sum(r.nbytes for r in records) + record.nbytes
        if unpacked > cap:
            raise RunError(f"{folder}: the records unpack to more than the {cap:,} bytes allowed")
        records.append(record)
    if not records:
        return None
    epochs, confusions = _read_confusions(folder / CONFUSIONS_FILE)
    return Timeline(tuple(records), epochs, confusions)


def _record_limit(config: TrainConfig) -> int:
    """The most one record of this run may unpack to: float32 weights (where float16 would not do)
    and the answers for a validation split of up to a million digits, with room for headers."""
    return 4 * config.parameters + 3 * MAX_VALIDATION + (1 << 20)


def read_test_predictions(path: str | Path) -> dict[str, np.ndarray] | None:
    """A tested run's `labels`, `predictions` and `confidences` for every test image, validated; None
    for a run not tested (yet). Raises RunError naming a damaged file."""
    file = Path(path) / "test_predictions.npz"
    if not _exists(file):
        return None
    arrays = _read_npz(file, MAX_TEST_RESULTS_BYTES, max_members=3)
    labels, predictions, confidences = (arrays.get(k) for k in ("labels", "predictions", "confidences"))
    if (labels is None or predictions is None or confidences is None or labels.ndim != 1
            or predictions.shape != labels.shape or confidences.shape != labels.shape
            or not np.issubdtype(labels.dtype, np.integer) or not np.issubdtype(predictions.dtype, np.integer)
            or not np.issubdtype(confidences.dtype, np.floating)
            or not np.all((confidences >= 0) & (confidences <= 1))  # NaN fails this too
            or (labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES
                                 or predictions.min() < 0 or predictions.max() >= NUM_CLASSES))):
        raise RunError(f"{file}: unreadable test predictions")
    return {"labels": labels.astype(np.int64), "predictions": predictions.astype(np.int64),
            "confidences": confidences.astype(np.float32)}


def _read_record(file: Path, epoch: int, config: TrainConfig, cap: int) -> EpochRecord:
    caps = {**_weight_caps(config), "predictions": MAX_VALIDATION + NPY_HEADER_BYTES,
            "confidences": 2 * MAX_VALIDATION + NPY_HEADER_BYTES}
    arrays = _read_npz(file, cap, caps, max_members=len(caps))
    expected = layer_shapes(config)
    weights = [arrays.get(f"w{i}") for i in range(len(expected))]
    predictions, confidences = arrays.get("predictions"), arrays.get("confidences")
    if any(w is None for w in weights) or len(arrays) != len(expected) + 2:
        raise RunError(f"{file}: the weights do not match the run's layers {layer_sizes(config)}")
    _check_layers(weights, config, file)
    if (predictions is None or confidences is None or predictions.dtype != np.uint8 or predictions.ndim != 1
            or confidences.shape != predictions.shape or confidences.dtype != np.float16
            or (predictions.size and predictions.max() >= NUM_CLASSES)
            or not np.all((confidences >= 0) & (confidences <= 1))):  # NaN fails this too
        raise RunError(f"{file}: unreadable validation answers")
    return EpochRecord(epoch, tuple(weights), predictions, confidences)


def _read_confusions(file: Path) -> tuple[np.ndarray, np.ndarray]:
    if not _exists(file):
        return np.zeros(0, np.int64), np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)
    arrays = _read_npz(file, 1 << 20, max_members=2)
    epochs, confusions = arrays.get("epochs"), arrays.get("confusions")
    if (epochs is None or confusions is None or epochs.ndim != 1 or not np.issubdtype(epochs.dtype, np.integer)
            or confusions.shape != (len(epochs), NUM_CLASSES, NUM_CLASSES)
            or not np.issubdtype(confusions.dtype, np.integer) or (confusions < 0).any()
            or (epochs < 0).any() or len(np.unique(epochs)) != len(epochs)):
        raise RunError(f"{file}: unreadable confusion matrices")
    return epochs.astype(np.int64), confusions.astype(np.int64)


def _validate_mistakes(raw: Any, path: Path) -> dict[str, list]:
    keys = ("index", "label", "prediction", "confidence")
    if not (isinstance(raw, dict) and all(isinstance(raw.get(k), list) for k in keys)
            and len({len(raw[k]) for k in keys}) == 1
            and all(_is_int(v) and v >= 0 for k in keys[:3] for v in raw[k])
            and all(_is_number(v) and 0 <= v <= 1 for v in raw["confidence"])):
        raise RunError(f"{path}: expected lists index, label, prediction, confidence of one length")
    return {k: raw[k] for k in keys}
