"""What a training job records as it trains, and the Keras callback that feeds it.

`RunRecorder` keeps a run's progress twice: in memory, for the job's snapshots (the per-batch loss, each
epoch's metrics, first-layer snapshots, the timeline's records and confusions), and in the run's folder
through `RunWriter`, as it goes, so that a killed process loses at most the epoch in flight. It shares
its job's lock, so that a snapshot reads the job's state and the recorder's in one consistent go.

`Reporter` is the callback inside `model.fit`: it turns Keras's progress into the recorder's entries,
judges divergence, and applies the job's pause, slow motion and stop through the job's public controls
(`JobControls`). `write_summary` is the one place that builds and writes a run's summary, for a job's
end and for an interrupted run tested afterwards.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from mlpdash.budgets import loss_history_points, snapshot_bytes, timeline_bytes
from mlpdash.config import TrainConfig
from mlpdash.evaluate import TestReport, report_from_logits
from mlpdash.mnist import NUM_CLASSES
from mlpdash.model import first_layer_kernel, network_weights
from mlpdash.predict import EVAL_BATCH, Predictor
from mlpdash.progress import LossHistory
from mlpdash.runs import RunWriter
from mlpdash.timeline import MAX_RECORDS, EpochRecord, Timeline, compact, thinned

# Debiased exponential moving average of the per-batch loss, as TensorBoard smooths its curves.
LOSS_SMOOTHING = 0.9
# First-layer snapshots are kept for every epoch up to this many, and within the byte budget of
# budgets.snapshot_bytes(); beyond either every other one is dropped (the first and the newest always
# stay), so neither a 1000-epoch run nor a 4096-unit layer can exhaust memory.
MAX_KERNEL_SNAPSHOTS = 101
# Batches over which the training steps' pace is measured (the displayed samples/s and time left add
# what each epoch's end costs to it).
PACE_WINDOW = 20
# Exporting the model at a run's end (a SavedModel, whose tracing dominates, and the .keras file):
# 0.7 s for the default model on the 2-core machine here. Not measurable before the run's end, so the
# time left counts it at this, beside what the weights' writes and the validation passes measured.
EXPORT_SECONDS = 1.0
# A uniform guess over 10 digits has a cross-entropy of ln 10. An epoch far above it, or a network
# stuck at chance with no better loss than that guess, has diverged, whatever Keras says.
UNIFORM_LOSS = math.log(NUM_CLASSES)
DIVERGED_EPOCH_LOSS = 10 * UNIFORM_LOSS
DIVERGED_BATCH_LOSS = 1e4
CHANCE_ACCURACY = 0.2
# Stuck at chance is judged only after this many updates: a run of one huge batch per epoch has
# barely begun after two epochs.
MIN_STUCK_STEPS = 100
DIVERGENCE_ADVICE = "lower the learning rate (a tenth of it is a good next try)"


class DivergedError(FloatingPointError):
    """The loss blew up or the network is stuck at chance: a run that cannot learn. `what` says what
    happened without the advice, for a caller that words its own message (a fine-tune does)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Diverged: {what} — {DIVERGENCE_ADVICE}")
        self.what = what


class RunRecorder:
    """A run's progress, in memory for snapshots and in its run folder, thinned the same way in both.

    The training thread writes (through `Reporter` and the job); any thread reads, under `lock`, which
    is the job's (re-entrant: the job holds it while it reads the recorder for a snapshot). The
    validation pass checks `stop` between its batches, so that a stop does not wait for it.
    """

    def __init__(self, lock: threading.RLock, stop: threading.Event) -> None:
        self._lock = lock
        self._stop = stop
        self._writer: RunWriter | None = None
        self._predictor: Predictor | None = None
        self._val_images: np.ndarray | None = None
        self._val_labels: np.ndarray | None = None
        # Guarded by the lock.
        self._steps = 0
        self._epoch = 0
        self._batch = 0
        self._speed: float | None = None
        self._left: float | None = None  # seconds left to the run's end, as of `_left_at`
        self._left_at = 0.0  # time.perf_counter() when `_left` was estimated
        self._validation_seconds: float | None = None  # the newest validation pass's time
        self._write_seconds = 0.0  # the newest epoch's weights write
        self._start_seconds: float | None = None  # recording epoch 0: a validation and a snapshot
        self._history: tuple[dict[str, float], ...] = ()  # replaced, never changed: snapshots share it
        self._losses = LossHistory(loss_history_points())
        self._kernels: list[np.ndarray] = []
        self._kernel_epochs: list[int] = []
        self._records: list[EpochRecord] = []  # thinned; the confusions are kept for every epoch
        self._confusion_epochs: list[int] = []
        self._confusions = np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)  # replaced, never changed
        self._train_seconds = 0.0
        self._samples_trained = 0
        self._batches_trained = 0
        self._finishing = False

    # --- set up by the job -----------------------------------------------------------------------

    def set_steps(self, steps: int) -> None:
        """The batches an epoch has (known once the arrays to fit are)."""
        with self._lock:
            self._steps = steps

    def open(self, writer: RunWriter) -> None:
        """Record into `writer`'s run folder from now on."""
        self._writer = writer

    def set_validation(self, predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> None:
        """What each epoch's end is validated with: the live model's predictor and the validation split
        (images as the model takes them)."""
        self._predictor, self._val_images, self._val_labels = predictor, images, np.asarray(labels)

    def record_start(self, model: keras.Model) -> None:
        """The model as it is before training (epoch 0), where the views over time start. Its time is
        the first measure of what an epoch's end costs (the same validation and snapshot)."""
        began = time.perf_counter()
        self.keep_kernel(first_layer_kernel(model), 0)
        self.validate(0, model)
        self._start_seconds = time.perf_counter() - began

    @property
    def start_seconds(self) -> float | None:
        """What recording epoch 0 took (None before it): what an epoch's end costs, until one has."""
        return self._start_seconds

    @property
    def finish_seconds(self) -> float:
        """What the run's end will take after its last epoch's end, from what was measured so far:
        the test pass (the test split is the validation split's size, for every source) and the
        model's saving (its weights twice, and the export)."""
        return (self._validation_seconds or 0.0) + 2 * self._write_seconds + EXPORT_SECONDS

    # --- the run's progress, from the reporter -----------------------------------------------------

    def record_batch(self, epoch: int, batch: int, loss: float, smoothed: float,
                     samples: int, seconds: float, speed: float | None, last: bool,
                     left: float | None = None) -> None:
        """A finished batch: where training is, its loss, and its share of the time and the samples;
        `speed` the run's progress in samples a second and `left` the seconds to its end (both None
        while unknown)."""
        with self._lock:
            self._epoch, self._batch = epoch, batch
            self._losses.append((epoch - 1) * self._steps + batch, loss, smoothed)
            self._batches_trained += 1
            self._samples_trained += samples
            self._train_seconds += seconds
            if speed is not None:  # keep the last known pace until this epoch has one
                self._speed = speed
            if left is not None:
                self._left, self._left_at = left, time.perf_counter()
            self._finishing = self._finishing or last

    def paused_for(self, seconds: float) -> None:
        """A pause of `seconds` ended: the estimate of the time left counts down from its end, not
        through it (else it would read the pause's length too short until the next batch)."""
        with self._lock:
            self._left_at += seconds

    def validate(self, epoch: int, model: keras.Model) -> dict[str, float] | None:
        """The end of an epoch's validation: its loss and accuracy (as Keras's own validation would
        give them), with the model's record kept; None when a stop cut the pass short."""
        began = time.perf_counter()
        logits = self._validation_logits()
        if logits is None:
            return None
        self._validation_seconds = time.perf_counter() - began
        assert self._val_labels is not None
        report = report_from_logits(logits, self._val_labels)
        record = EpochRecord.of(epoch, network_weights(model), report.predictions, report.confidences)
        self.keep_record(record, report.confusion)
        return {"val_loss": report.loss, "val_accuracy": report.accuracy}

    def _validation_logits(self) -> np.ndarray | None:
        """The model's logits for the validation split, or None when a stop came meanwhile (it is
        checked between batches: a stop does not wait for the pass)."""
        assert self._predictor is not None and self._val_images is not None
        parts = []
        for start in range(0, len(self._val_images), EVAL_BATCH):
            if self._stop.is_set():
                return None
            parts.append(self._predictor.logits(self._val_images[start : start + EVAL_BATCH]))
        return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)

    def record_epoch(self, row: dict[str, float], model: keras.Model) -> None:
        """A finished epoch: its metrics row, the weights it ended with, its first-layer snapshot."""
        self.keep_kernel(first_layer_kernel(model), int(row["epoch"]))
        with self._lock:
            self._history = (*self._history, row)
            rows = self._history
        assert self._writer is not None
        began = time.perf_counter()
        self._writer.write_epoch(rows, network_weights(model))
        self._write_seconds = time.perf_counter() - began

    def keep_record(self, record: EpochRecord, confusion: np.ndarray) -> None:
        """Keep an epoch's record in memory and in the run folder, thinning both the same way, and its
        confusion matrix for good."""
        assert self._writer is not None
        self._writer.write_record(record)
        with self._lock:
            self._records.append(record)
            keep = thinned([r.nbytes for r in self._records], MAX_RECORDS, timeline_bytes())
            dropped = [r.epoch for i, r in enumerate(self._records) if i not in set(keep)]
            self._records = [self._records[i] for i in keep]
            self._confusion_epochs.append(record.epoch)
            self._confusions = np.concatenate([self._confusions, confusion[None]])
            epochs, confusions = list(self._confusion_epochs), self._confusions
        for gone in dropped:
            self._writer.remove_record(gone)
        self._writer.write_confusions(epochs, confusions)

    def keep_kernel(self, kernel: np.ndarray, epoch: int) -> None:
        """Keep a snapshot in memory and in the run folder, thinning both the same way."""
        kernel = compact(kernel)
        assert self._writer is not None
        self._writer.write_snapshot(kernel, epoch)
        with self._lock:
            self._kernels.append(kernel)
            self._kernel_epochs.append(epoch)
            keep = thinned([k.nbytes for k in self._kernels], MAX_KERNEL_SNAPSHOTS, snapshot_bytes())
            dropped = [e for i, e in enumerate(self._kernel_epochs) if i not in set(keep)]
            self._kernels = [self._kernels[i] for i in keep]
            self._kernel_epochs = [self._kernel_epochs[i] for i in keep]
        for gone in dropped:
            self._writer.remove_snapshot(gone)

    # --- reading, from any thread -------------------------------------------------------------------

    @property
    def run_dir(self) -> Path | None:
        writer = self._writer
        return writer.path if writer is not None else None

    @property
    def epochs_completed(self) -> int:
        with self._lock:
            return len(self._history)

    @property
    def batches_trained(self) -> int:
        with self._lock:
            return self._batches_trained

    @property
    def finishing(self) -> bool:
        """The last batch of the last epoch is done."""
        with self._lock:
            return self._finishing

    def position(self) -> tuple[int, int]:
        """(epoch, batch): the epoch in progress and the batches finished in it."""
        with self._lock:
            return self._epoch, self._batch

    def progress(self) -> dict[str, Any]:
        """The recorded progress as `Snapshot` fields, consistent with each other."""
        with self._lock:
            steps, losses, smoothed = self._losses.view()
            timeline = None  # before step 0's record
            if self._records:
                timeline = Timeline(tuple(self._records), np.asarray(self._confusion_epochs, np.int64),
                                    self._confusions)
            return dict(
                epoch=self._epoch, batch=self._batch, batches_per_epoch=self._steps,
                samples_per_second=self._speed, seconds_left=self._left, seconds_left_at=self._left_at,
                history=self._history,
                batch_steps=steps, batch_loss=losses, batch_loss_smoothed=smoothed,
                kernels=tuple(self._kernels), kernel_epochs=tuple(self._kernel_epochs), timeline=timeline,
                run_dir=self.run_dir, train_seconds=self._train_seconds, finishing=self._finishing,
            )

    # --- the run's end --------------------------------------------------------------------------------

    def save(self, report: TestReport, model: keras.Model) -> None:
        """The test results and the model as it was tested (after a stop mid-epoch, newer than the last
        epoch's checkpoint)."""
        assert self._writer is not None
        write_test_results(self._writer, report)
        self._writer.write_model_weights(network_weights(model))
        self._writer.write_model(model)

    def write_summary(self, report: TestReport, stopped: bool, data_source: str) -> None:
        """The run's summary, from what was recorded: last, as its presence marks the run complete."""
        assert self._writer is not None
        with self._lock:
            epochs, seconds, samples = len(self._history), self._train_seconds, self._samples_trained
        write_summary(self._writer, report, epochs_completed=epochs, outcome="stopped" if stopped else "finished",
                      data_source=data_source, train_seconds=seconds,
                      samples_per_second=samples / seconds if seconds > 0 else None)

    def write_failure(self, message: str, kind: str) -> None:
        if self._writer is not None:
            self._writer.write_failure(message, kind)

    def discard(self) -> None:
        """Remove the run folder (a run that ended with nothing worth keeping)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()

    def close(self) -> None:
        """The job has ended: close the run folder and free the validation images (31 MB of float32 for
        full MNIST, which readers never need)."""
        self._val_images = None
        if self._writer is not None:
            self._writer.close()


def write_test_results(writer: RunWriter, report: TestReport) -> None:
    writer.write_test_results(
        {"labels": report.labels.astype(np.uint8), "predictions": report.predictions.astype(np.uint8),
         "confidences": report.confidences},
        report.mistakes(),
    )


def write_summary(writer: RunWriter, report: TestReport, *, epochs_completed: int, outcome: str,
                  data_source: str, train_seconds: float, samples_per_second: float | None = None) -> None:
    """Build and write a run's summary.json (every writer of one comes here): the test report's
    figures, how the run ended ("finished", "stopped", "interrupted") and how long it trained."""
    writer.write_summary({
        **report.summary(),
        "epochs_completed": epochs_completed,
        "stopped_early": outcome != "finished",
        "outcome": outcome,
        "data_source": data_source,
        "samples_per_second": samples_per_second,
        "train_seconds": train_seconds,
    })


class JobControls(Protocol):
    """What the reporter needs of its job (`TrainingJob` provides it)."""

    config: TrainConfig

    @property
    def recorder(self) -> RunRecorder: ...

    @property
    def stop_requested(self) -> bool: ...

    def hold_pace(self, samples: int, took: float) -> float: ...

    def held_sample_seconds(self) -> float: ...

    def wait_while_paused(self) -> float: ...

    def epoch_recorded(self, epoch: int) -> None: ...


class Reporter(keras.callbacks.Callback):
    """Turns Keras' progress into the job's records and applies its pause and stop requests.

    Per-epoch bookkeeping lives here, touched only by the training thread, so the job's lock guards
    just what readers see. A loss that is not a finite number always ends the run as diverged; with
    `judge_divergence` (a normal run's), so do a loss far above a uniform guess's and a network stuck at
    chance (a fine-tune is judged by its finite numbers alone, as it always was).
    """

    def __init__(self, job: JobControls, train_size: int, judge_divergence: bool = True) -> None:
        super().__init__()
        self.job = job
        self.judge_divergence = judge_divergence
        self.recorder = job.recorder
        self.train_size = train_size
        self.batch_size = job.config.batch_size
        self.steps = math.ceil(train_size / self.batch_size)
        self.epochs = job.config.epochs
        self.ema = 0.0
        self.ema_count = 0
        self.stuck_epochs = 0
        self.last_val_loss: float | None = None
        # The pace over the whole run, on a clock that stops while paused: the steps' pace (the window
        # below) and what each epoch's end costs (validation, records, the next epoch's set-up). Both
        # count toward the samples/s shown, as they do toward the run's real progress.
        self.all_paused = 0.0
        self.last_end: float | None = None  # that clock at the newest batch's end
        self.sample_seconds: float | None = None  # a training sample's share of the steps' time
        self.epoch_ends: list[float] = []  # each measured epoch end's cost, in seconds

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # A pause pressed during the validation pass holds here, before the next epoch starts.
        waited = self.job.wait_while_paused()
        if waited:
            self.recorder.paused_for(waited)
        self.all_paused += waited
        self.epoch = epoch + 1
        self.batches = 0
        self.samples = 0
        self.mean_loss = 0.0
        self.started = self.mark = time.perf_counter()
        self.paused = 0.0
        self.held = 0.0  # slow motion's waits: not training time, as pauses are not
        self.pace: deque[tuple[float, int]] = deque(maxlen=PACE_WINDOW)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        mean_loss = float((logs or {})["loss"])
        size = min(self.batch_size, self.train_size - self.samples)
        # Keras logs the running mean over the epoch, weighted by batch size: recover this batch's.
        done = self.samples + size
        loss = (mean_loss * done - self.mean_loss * self.samples) / size
        self.samples, self.mean_loss, self.batches = done, mean_loss, self.batches + 1
        last = self.epoch == self.epochs and self.batches == self.steps
        self.recorder.record_batch(self.epoch, self.batches, loss, self._smooth(loss), size,
                                   now - self.mark, self._run_speed(), last, self._seconds_left())
        if not math.isfinite(loss) or (self.judge_divergence and loss > DIVERGED_BATCH_LOSS):
            raise DivergedError(f"the loss reached {loss:.3g} in epoch {self.epoch}, batch {self.batches}")
        held = self.job.hold_pace(size, now - self.mark)
        waited = self.job.wait_while_paused()
        if waited:
            self.recorder.paused_for(waited)
        self.paused += waited
        self.all_paused += waited
        self.held += held
        # The next batch is timed from here: neither a pause nor slow motion is its compute time.
        self.mark = time.perf_counter() if waited or held else now
        # The pace counts a batch to the end of its slow-motion hold, where the next one starts: timed
        # at its end instead, the first interval of a window would hold no hold, and the pace shown
        # would run ahead of slow motion (2,800 samples/s at 2,000).
        self.pace.append((self.mark - self.started - self.paused, done))
        self._measure(self.mark - self.all_paused, size)
        if self.job.stop_requested:
            self.model.stop_training = True

    def _measure(self, clock: float, size: int) -> None:
        """After a batch, on the clock without pauses: the steps' recent pace, and, at an epoch's
        first batch, what the previous epoch's end cost (the gap since its last batch, less this
        batch's own steps)."""
        if len(self.pace) >= 2:
            # Over the last few batches of this epoch: the first batch of a run includes tracing the
            # training step (seconds), which an average from the epoch's start would spread over it.
            (t0, s0), (t1, s1) = self.pace[0], self.pace[-1]
            if t1 > t0 and s1 > s0:
                self.sample_seconds = (t1 - t0) / (s1 - s0)
        if self.batches == 1 and self.last_end is not None and self.sample_seconds is not None:
            self.epoch_ends.append(max(0.0, clock - self.last_end - size * self.sample_seconds))
        self.last_end = clock

    def _epoch_end_seconds(self) -> float:
        """What an epoch's end costs: the mean of those measured, else recording epoch 0's time."""
        if self.epoch_ends:
            return sum(self.epoch_ends) / len(self.epoch_ends)
        return self.recorder.start_seconds or 0.0

    def _run_speed(self) -> float | None:
        """The run's progress in samples a second, as a clock on the wall sees the batch counter
        advance: the steps' pace with each epoch's end spread over its epoch."""
        if self.sample_seconds is None:
            return None
        epoch_seconds = self.train_size * self.sample_seconds + self._epoch_end_seconds()
        return self.train_size / epoch_seconds if epoch_seconds > 0 else None

    def _seconds_left(self) -> float | None:
        """The seconds to the run's end: the samples left at the steps' pace, the epoch ends left
        (this epoch's included), and the test pass and saving after the last one."""
        if self.sample_seconds is None:
            return None
        samples_left = (self.epochs - self.epoch) * self.train_size + self.train_size - self.samples
        ends_left = self.epochs - self.epoch + 1
        # A pace just slowed takes the measured steps' window (up to 20 batches: 20 s at a batch a
        # second) to show; the pace itself says at once how long the samples left take at least.
        sample_seconds = max(self.sample_seconds, self.job.held_sample_seconds())
        return (samples_left * sample_seconds + ends_left * self._epoch_end_seconds()
                + self.recorder.finish_seconds)

    def _smooth(self, loss: float) -> float:
        self.ema_count += 1
        self.ema = LOSS_SMOOTHING * self.ema + (1 - LOSS_SMOOTHING) * loss
        return self.ema / (1 - LOSS_SMOOTHING**self.ema_count)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.batches < self.steps:
            return  # stopped mid-epoch: a partial epoch is no row of the history
        validation = self.recorder.validate(epoch + 1, self.model)
        if validation is None:  # a stop cut the validation short: no row for this epoch either
            self.model.stop_training = True
            return
        if logs is not None:
            # Shared with the callbacks after this one: Keras's progress line and History show them.
            logs.update(validation)
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            "loss": float(logs["loss"]),
            "accuracy": float(logs["accuracy"]),
            **validation,
            "seconds": time.perf_counter() - self.started - self.paused - self.held,
        }
        self.recorder.record_epoch(row, self.model)
        self._check_divergence(row)
        self.job.epoch_recorded(epoch + 1)

    def _check_divergence(self, row: dict[str, float]) -> None:
        """After an epoch: a loss far above a uniform guess's, or a network stuck at chance (accuracy
        at chance, a loss no better than a guess's and no better than the epoch before, for two
        epochs running and at least MIN_STUCK_STEPS updates), ends the run as diverged. A slow
        learner near chance still improves its loss, and is left alone."""
        epoch, loss = int(row["epoch"]), row["loss"]
        if not math.isfinite(loss) or (self.judge_divergence and loss > DIVERGED_EPOCH_LOSS):
            raise DivergedError(f"the training loss of epoch {epoch} is {loss:.3g}, far above the "
                                f"{UNIFORM_LOSS:.2f} of a uniform guess")
        if not self.judge_divergence:
            return
        val_loss = row["val_loss"]
        stuck = (row["val_accuracy"] < CHANCE_ACCURACY and val_loss >= UNIFORM_LOSS - 0.05
                 and self.last_val_loss is not None and val_loss >= self.last_val_loss - 1e-3)
        self.last_val_loss = val_loss
        self.stuck_epochs = self.stuck_epochs + 1 if stuck else 0
        if self.stuck_epochs >= 2 and epoch * self.steps >= MIN_STUCK_STEPS:
            raise DivergedError(f"the network is stuck at chance — validation accuracy "
                                f"{row['val_accuracy']:.1%} and a loss no better than a uniform guess, "
                                f"not improving")
