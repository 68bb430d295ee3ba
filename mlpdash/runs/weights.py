"""A run's saved model weights (`model.weights.npz`): read back with every array held to its layer's
shape and size, and every value finite.

The listing checks each ended run's weights here, so that a model that would answer every drawing
alike is listed as damaged; one cache, keyed by the file's version, makes that a single read per file.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.runs.base import (
    MODEL_WEIGHTS,
    RunError,
    _check_layers,
    _read_npz,
    _weight_caps,
    _weights_limit,
)


def read_model_weights(path: Path, config: TrainConfig) -> list[np.ndarray]:
    """The saved model's arrays (`w0`, `w1`, ... in layer order), each no larger than its layer needs
    and every value finite; RunError naming the problem."""
    file = Path(path) / MODEL_WEIGHTS
    caps = _weight_caps(config)
    arrays = _read_npz(file, _weights_limit(config), caps, max_members=len(caps))
    weights = [arrays.get(f"w{i}") for i in range(len(arrays))]
    if any(w is None for w in weights):
        raise RunError(f"{file}: arrays are not numbered w0, w1, ...")
    _check_layers(weights, config, file)
    return weights


def _check_saved_weights(path: Path, config: TrainConfig) -> None:
    """A run that ended with a model: its saved weights must be readable and finite, or the run is
    listed as damaged (it would answer every drawing alike). Read once per version of the file."""
    file = path / MODEL_WEIGHTS
    try:
        stat = os.lstat(file)
    except OSError:
        return  # no model saved (stopped before one) or a legacy run: its reader checks it
    problem = _weights_problem(str(file), (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns), config)
    if problem:
        raise RunError(problem)


# Far more entries than runs a folder holds (a listing visits every run: an LRU smaller than that would
# miss on every one); each is a path, a stamp and a short text.
@functools.lru_cache(maxsize=1 << 16)
def _weights_problem(file: str, stamp: tuple[int, int, int, int], config: TrainConfig) -> str | None:
    """Why the weights file cannot serve as the run's model, or None; `stamp` (inode, size, mtime,
    ctime: a copy that keeps the time still changes the last) keys the cache, so a rewritten file is
    read again and an unchanged one never is."""
    try:
        read_model_weights(Path(file).parent, config)
    except RunError as err:
        return str(err)
    return None
