"""What a long-lived server may hold, in bytes, and what a run will cost, in time.

Counts are no bound: 101 snapshots of a 4096-unit layer are 1.2 GB, of the default layer 110 MB. So
each store that grows with the runs has a byte budget, overridable by an environment variable (in MB):

| variable                 | default | what it bounds                                                   |
|--------------------------|---------|------------------------------------------------------------------|
| MLPDASH_SNAPSHOT_MB      | 256     | a live job's first-layer snapshots (and so its snapshots on disk) |
| MLPDASH_TIMELINE_MB      | 64      | a live job's every-layer records over time (and those on disk)    |
| MLPDASH_LOSS_HISTORY_MB  | 1       | a live job's per-batch loss history (every k-th batch beyond it)  |
| MLPDASH_CACHE_MB         | 1024    | the server's loaded datasets, saved runs and their models         |

Memory that a job frees is handed back to the system when it ends (`return_freed_memory`), and the
server reuses an ended job's compiled model for the next job of the same settings (model.SpareModel):
together they keep the growth over 10 default runs in one server near 3 MB a run, against 24 before.

The time estimate is a model of this project's own measurements on a 2-core CPU (see README,
Benchmarks): a fixed cost per batch plus a cost per sample and parameter. It is shown, never enforced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
from collections.abc import Callable

from mlpdash.config import TrainConfig

MB = 1 << 20
SNAPSHOT_ENV = "MLPDASH_SNAPSHOT_MB"
TIMELINE_ENV = "MLPDASH_TIMELINE_MB"
LOSS_HISTORY_ENV = "MLPDASH_LOSS_HISTORY_MB"
CACHE_ENV = "MLPDASH_CACHE_MB"
DEFAULT_SNAPSHOT_MB = 256
# 32 records of the default model (1.8 MB each, float16) fit; a 10-epoch run keeps all 11 in 20 MB.
DEFAULT_TIMELINE_MB = 64
DEFAULT_LOSS_HISTORY_MB = 1
DEFAULT_CACHE_MB = 1024
# Bytes per recorded batch in the loss history: an int64 step and two float32 values.
LOSS_POINT_BYTES = 16

# Measured here (2 cores): the default 784-700-500-10 model (0.9 M parameters) trains 50,000 digits
# an epoch in about 4 s with validation: ~1.2e10 parameter-samples/s, forward and backward. Batch
# size 1 is bound by Keras' per-step cost, ~1.5 ms.
PARAMETER_SAMPLES_PER_SECOND = 1.2e10
SECONDS_PER_STEP = 1.5e-3
LONG_RUN_SECONDS = 3600


def budget_bytes(variable: str, default_mb: float) -> int:
    """The budget in bytes from `variable` (MB, may be fractional), else the default; a value that
    is not a positive number falls back to the default rather than stopping a server."""
    try:
        value = float(os.environ.get(variable, ""))
    except ValueError:
        value = default_mb
    if not value > 0 or value == float("inf"):
        value = default_mb
    return int(value * MB)


def snapshot_bytes() -> int:
    return budget_bytes(SNAPSHOT_ENV, DEFAULT_SNAPSHOT_MB)


def timeline_bytes() -> int:
    """Every layer's weights over time (timeline.EpochRecord), in memory for a live job and in its
    run folder alike."""
    return budget_bytes(TIMELINE_ENV, DEFAULT_TIMELINE_MB)


def loss_history_points() -> int:
    return max(4, budget_bytes(LOSS_HISTORY_ENV, DEFAULT_LOSS_HISTORY_MB) // LOSS_POINT_BYTES)


def cache_bytes() -> int:
    return budget_bytes(CACHE_ENV, DEFAULT_CACHE_MB)


def estimated_training_seconds(config: TrainConfig, train_size: int) -> float:
    """About how long `config` takes to train on `train_size` digits on a 2-core CPU like this one."""
    steps = -(-train_size // config.batch_size)
    per_epoch = steps * SECONDS_PER_STEP + train_size * config.parameters / PARAMETER_SAMPLES_PER_SECOND
    return config.epochs * per_epoch


def long_run_warning(config: TrainConfig, train_size: int) -> str | None:
    """A sentence for a run expected to take an hour or more here; None for shorter ones."""
    seconds = estimated_training_seconds(config, train_size)
    if seconds < LONG_RUN_SECONDS:
        return None
    hours = seconds / 3600
    span = f"about {hours:.0f} hours" if hours >= 2 else "about an hour or more"
    return (f"This run may take {span} on a 2-core CPU ({config.epochs} epochs of {train_size:,} digits, "
            f"batch size {config.batch_size}); it will still run, and can be stopped at any time.")


def return_freed_memory() -> None:
    """Collect garbage and ask glibc to give free heap pages back to the system. A job frees hundreds
    of MB of buffers (its data pipeline, its gradients) in pieces that glibc otherwise keeps mapped in
    its arenas, so a long-lived server's RSS would ratchet up by several MB a job. A no-op where the C
    library is not glibc."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # find_library runs a subprocess (ldconfig): once a process is enough.
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
