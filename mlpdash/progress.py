"""A training job's observable progress: its status and the immutable snapshot readers get.

Kept apart from the engine so that readers (the page, above all) can hold and inspect snapshots
without importing TensorFlow, which takes seconds to load. A snapshot says what kind of job it is
(`task`: a training run or a fine-tune, both run by the same engine), so that one status line serves both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.evaluate import TestReport
from mlpdash.pace import Pace
from mlpdash.timeline import Timeline


# What a job does, as the status line names it (`Snapshot.task`).
TRAINING = "Training"
FINE_TUNING = "Fine-tuning"


class Status(str, Enum):
    IDLE = "idle"
    LOADING_DATA = "loading data"
    TRAINING = "training"
    PAUSED = "paused"
    STOPPING = "stopping"
    EVALUATING = "evaluating"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """True while the job's thread has work left."""
        return self in _ACTIVE

    @property
    def ended(self) -> bool:
        return self in (Status.FINISHED, Status.STOPPED, Status.DIVERGED, Status.FAILED)


_ACTIVE = {Status.LOADING_DATA, Status.TRAINING, Status.PAUSED, Status.STOPPING, Status.EVALUATING}


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of a job's progress; safe to read from any thread."""

    status: Status
    config: TrainConfig
    error: str | None = None
    data_source: str | None = None
    data_reason: str | None = None
    train_size: int = 0  # training digits, once the data has loaded
    epoch: int = 0  # the epoch in progress (1-based), or the last one when the job ended
    batch: int = 0  # batches finished in that epoch
    batches_per_epoch: int = 0
    samples_per_second: float | None = None  # the run's progress: epoch ends included, pauses not
    # The seconds to the job's end (validation, testing and saving included), as estimated at
    # `seconds_left_at` (time.perf_counter()); None until there is a pace.
    seconds_left: float | None = None
    seconds_left_at: float = 0.0
    history: tuple[dict[str, float], ...] = ()  # one row per finished epoch (runs.METRIC_KEYS)
    # The per-batch loss, at most DISPLAY_POINTS of it: every batch of a short run, every k-th of a long
    # one. `batch_steps` numbers each point's batch over the run, from 1.
    batch_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    batch_loss: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    batch_loss_smoothed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    kernels: tuple[np.ndarray, ...] = ()  # first-layer kernels [784, units], float16 (float32 if huge)
    kernel_epochs: tuple[int, ...] = ()  # the epoch after which each kernel was taken (0 = initial)
    timeline: Timeline | None = None  # every layer's weights and the validation answers over time
    report: TestReport | None = None
    run_dir: Path | None = None
    train_seconds: float = 0.0  # time spent in training batches, pauses excluded
    finishing: bool = False  # the last batch is done: validation, testing and saving remain
    holding: bool = False  # paused, and the batch that was running when Pause came has finished
    stop_requested: bool = False  # Stop was pressed (the job may still be testing and saving)
    task: str = TRAINING  # what the job does: TRAINING or FINE_TUNING
    pace: Pace | None = None  # the slow motion the job is held to; None: full speed

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
        """Seconds left to the job's end, counting down from its last estimate (a validation pass,
        the test and the saving go on between batches); None until there is a pace."""
        if not self.status.active:
            return None
        if self.seconds_left is not None:
            if self.status == Status.PAUSED:  # nothing moves while paused: nor does the estimate
                return self.seconds_left
            return max(0.0, self.seconds_left - (time.perf_counter() - self.seconds_left_at))
        if not self.samples_per_second:
            return None
        left = (self.total_batches - self.batches_done) * self.config.batch_size
        return left / self.samples_per_second

    @property
    def epochs_completed(self) -> int:
        return len(self.history)

    @property
    def stopped_early(self) -> bool:
        """Stopped by the user (a STOPPED run), or being tested after a Stop that came before its
        last epoch was done (a stop after the last epoch cut nothing short)."""
        if self.status == Status.STOPPED:
            return True
        return (self.stop_requested and self.status == Status.EVALUATING
                and self.epochs_completed < self.config.epochs)


# What a snapshot carries of the per-batch loss: about what a chart ~1000 px wide can show.
DISPLAY_POINTS = 2000


class LossHistory:
    """The per-batch loss of a run in a fixed number of bytes, however long the run.

    Every batch is kept until the buffer is full; then every other point is dropped and from then on
    only every 2nd (4th, 8th...) batch is recorded, so a 1000-epoch run at batch size 1 costs the
    same memory as a short one. Not thread-safe: the job guards it with its lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 4:
            raise ValueError("a loss history needs room for at least 4 points")
        self.capacity = capacity
        self.stride = 1
        self._size = 0
        self._steps = np.zeros(capacity, np.int64)
        self._values = np.zeros((2, capacity), np.float32)  # loss, smoothed

    @property
    def nbytes(self) -> int:
        return self._steps.nbytes + self._values.nbytes

    def __len__(self) -> int:
        return self._size

    def append(self, step: int, loss: float, smoothed: float) -> None:
        if step % self.stride:
            return
        if self._size == self.capacity:
            # The kept steps are multiples of the stride (s, 2s, 3s...): those of 2s sit at odd indices.
            keep = slice(1, None, 2)
            half = len(range(self._size)[keep])
            self._steps[:half] = self._steps[: self._size][keep]
            self._values[:, :half] = self._values[:, : self._size][:, keep]
            self._size = half
            self.stride *= 2
            if step % self.stride:
                return
        self._steps[self._size] = step
        self._values[:, self._size] = (loss, smoothed)
        self._size += 1

    def view(self, max_points: int = DISPLAY_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, loss, smoothed): copies of at most `max_points` evenly spread points, the newest
        always included; costs O(max_points), not O(run length)."""
        size = self._size
        if size <= max_points:
            index = np.arange(size)
        else:
            index = np.linspace(0, size - 1, max_points).round().astype(np.int64)
        return self._steps[index], self._values[0, index], self._values[1, index]
