"""The ground floor of `mlpdash.runs`: its error, the names of a run folder's files, the size caps
a reader holds a folder to, and the low-level checks every other part of the package shares.

Nothing here imports another module of the package, so that the writer, the reader, the notes and
the legacy formats can all build on it without an import circle. Names with a leading underscore are
private to the package (its modules share them), not part of what `mlpdash.runs` offers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.files import UnsafeFileError, open_regular, read_json, read_npz, read_regular
from mlpdash.mnist import NUM_CLASSES, PIXELS

DEFAULT_RUNS_DIR = Path("runs")
RUNS_ENV_VAR = "MLPDASH_RUNS"
METRIC_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
LOCK_FILE = "training.lock"
MODEL_WEIGHTS = "model.weights.npz"
LEGACY_MODEL = "model.keras"
LEGACY_WEIGHTS = "weights.npz"
SNAPSHOT_DIR = "snapshots"
# ASCII digits to the very end (`\d` takes any script's digits, and `$` a name ending in a newline).
SNAPSHOT_NAME = re.compile(r"^kernel-([0-9]{5})\.npy\Z")
TIMELINE_DIR = "timeline"
RECORD_NAME = re.compile(r"^epoch-([0-9]{5})\.npz\Z")
CONFUSIONS_FILE = "confusions.npz"
NOTES_FILE = "notes.json"
# Deleted runs wait here (hidden from the listing) for a day, so that a slip can be undone.
TRASH_DIR = ".trash"
NPY_HEADER_BYTES = 4096  # an .npy header is 128 bytes for our arrays; NumPy allows up to 64 KiB on write

LOG = logging.getLogger("mlpdash")


class RunError(ValueError):
    """A run folder that cannot be read; the message names the folder and the problem."""


def runs_root(root: str | Path | None = None) -> Path:
    """`root`, else $MLPDASH_RUNS, else ./runs."""
    return Path(root or os.environ.get(RUNS_ENV_VAR) or DEFAULT_RUNS_DIR)


# --- what a run's arrays may be ------------------------------------------------------------------


def _weights_limit(config: TrainConfig) -> int:
    # float32 weights plus generous room for the archive's headers.
    return 4 * config.parameters + (1 << 20)


def layer_sizes(config: TrainConfig) -> list[int]:
    """The width of every layer, input and output included: [784, *hidden, 10]."""
    return [PIXELS, *config.hidden, NUM_CLASSES]


def layer_shapes(config: TrainConfig) -> list[tuple[int, ...]]:
    """The shapes of the network's arrays in order: kernel, bias, kernel, bias, ..."""
    sizes = layer_sizes(config)
    return [shape for a, b in zip(sizes, sizes[1:]) for shape in ((a, b), (b,))]


def _weight_caps(config: TrainConfig) -> dict[str, int]:
    """What each array `w0`, `w1`, ... may unpack to: float32 of its layer's shape and its header."""
    return {f"w{i}": 4 * math.prod(shape) + NPY_HEADER_BYTES for i, shape in enumerate(layer_shapes(config))}


def _kernel_limit(config: TrainConfig) -> int:
    return 4 * PIXELS * _first_units(config) + 4096


def _first_units(config: TrainConfig) -> int:
    return config.hidden[0] if config.hidden else NUM_CLASSES


def nonfinite(arrays: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """(the first array holding NaN or infinity, how many it holds), or None when all are finite."""
    for i, array in enumerate(arrays):
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            return i, int(np.size(array) - np.isfinite(array).sum())
    return None


def _check_finite(arrays: Sequence[np.ndarray], file: Path) -> None:
    """Refuse weights holding NaN or infinity: such a model answers every input alike (`0 (nan%)`)."""
    found = nonfinite(arrays)
    if found is not None:
        raise RunError(f"{file}: {found[1]:,} weights of w{found[0]} are NaN or infinite (the run diverged, or "
                       "the file was damaged)")


def _check_layers(weights: Sequence[np.ndarray], config: TrainConfig, file: Path) -> None:
    """The arrays of the run's own layers, as floats, every value finite."""
    expected = layer_shapes(config)
    if len(weights) != len(expected) or any(w.shape != shape or w.dtype not in (np.float16, np.float32)
                                            for w, shape in zip(weights, expected)):
        raise RunError(f"{file}: the weights do not match the run's layers {layer_sizes(config)}")
    _check_finite(weights, file)


# --- reading an untrusted folder's files ---------------------------------------------------------
# The `files` readers raise UnsafeFileError; inside a run folder that is the folder's damage, told as
# a RunError naming the file.


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _read_npz(path: Path, limit: int, member_limits: Mapping[str, int] | None = None,
              max_members: int = 64) -> dict[str, np.ndarray]:
    try:
        return read_npz(path, limit, member_limits, max_members)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        return read_regular(path, limit)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _is_file(path: Path) -> bool:
    """A regular file, not a link to one."""
    return path.is_file() and not path.is_symlink()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- the training lock ---------------------------------------------------------------------------


@contextmanager
def _probe_lock(path: Path) -> Iterator[bool]:
    """Yields whether a process (this one or another) is training the run right now; when none is,
    holds the run's lock for the duration, so that nothing starts writing while it is read. Shared:
    a writer's exclusive lock still keeps it out (and it keeps a writer out), but two readers do not
    take each other for a writer (a page listing the runs while another did read an interrupted run
    as training)."""
    try:
        fd = open_regular(path / LOCK_FILE)
    except UnsafeFileError:
        yield False  # no lock file (a finished run, or one of the first release): no writer
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield True
            return
        yield False
    finally:
        os.close(fd)  # also releases the lock


def _lock_held(path: Path) -> bool:
    with _probe_lock(path) as held:
        return held
