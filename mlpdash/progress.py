"""A training job's observable progress: its status and the immutable snapshot readers get.

Kept apart from the engine so that readers (the page, above all) can hold and inspect snapshots
without importing TensorFlow, which takes seconds to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.evaluate import TestReport


class Status(str, Enum):
    IDLE = "idle"
    LOADING_DATA = "loading data"
    TRAINING = "training"
    PAUSED = "paused"
    STOPPING = "stopping"
    EVALUATING = "evaluating"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """True while the job's thread has work left."""
        return self in _ACTIVE

    @property
    def ended(self) -> bool:
        return self in (Status.FINISHED, Status.STOPPED, Status.FAILED)


_ACTIVE = {Status.LOADING_DATA, Status.TRAINING, Status.PAUSED, Status.STOPPING, Status.EVALUATING}


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of a job's progress; safe to read from any thread."""

    status: Status
    config: TrainConfig
    error: str | None = None
    data_source: str | None = None
    data_reason: str | None = None
    epoch: int = 0  # the epoch in progress (1-based), or the last one when the job ended
    batch: int = 0  # batches finished in that epoch
    batches_per_epoch: int = 0
    samples_per_second: float | None = None
    history: tuple[dict[str, float], ...] = ()  # one row per finished epoch (runs.METRIC_KEYS)
    batch_loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # per batch
    batch_loss_smoothed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    kernels: tuple[np.ndarray, ...] = ()  # first-layer kernels [784, units]
    kernel_epochs: tuple[int, ...] = ()  # the epoch after which each kernel was taken (0 = initial)
    report: TestReport | None = None
    run_dir: Path | None = None
    train_seconds: float = 0.0  # time spent in training batches, pauses excluded

    @property
    def total_batches(self) -> int:
        return self.config.epochs * self.batches_per_epoch

    @property
    def batches_done(self) -> int:
        return max(0, self.epoch - 1) * self.batches_per_epoch + self.batch

    @property
    def progress(self) -> float:
        """Fraction of all training batches done, 0..1."""
        if self.status == Status.FINISHED:
            return 1.0
        return self.batches_done / self.total_batches if self.total_batches else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Training time left at the recent pace; None until there is a pace."""
        if not self.samples_per_second or not self.status.active:
            return None
        left = (self.total_batches - self.batches_done) * self.config.batch_size
        return left / self.samples_per_second

    @property
    def epochs_completed(self) -> int:
        return len(self.history)
