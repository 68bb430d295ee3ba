"""The training engine: one job trains in a background thread and reports through a snapshot.

The thread never talks to a user interface. It writes into the job's lock-protected state from a Keras
callback; readers (the CLI, the page, tests) call `job.snapshot()`, which returns an immutable copy. The
controls (pause, resume, stop) are events the callback checks after every batch, so each takes effect
within one batch. Every run is saved through `RunWriter` as it goes: the model's weights and the
snapshots at the end of every epoch, so a killed process loses at most the epoch in flight.

The job says it has ended through an Event set in a `finally` of its thread, never through
`Thread.is_alive()`: on Python 3.11 a `join()` interrupted by Ctrl-C can report a running thread as
finished. And since the thread is a daemon, which the interpreter kills at exit wherever it is, an
`atexit` hook stops every live job and waits (at most SHUTDOWN_GRACE_SECONDS) for it to save.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mlpdash.budgets import loss_history_points, return_freed_memory, snapshot_bytes, timeline_bytes
from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist
from mlpdash.evaluate import TestReport, report_from_logits
from mlpdash.model import (
    SpareModel,
    build_model,
    first_layer_kernel,
    graph_key,
    network_weights,
    reuse_model,
    spare_model,
    to_model_input,
)
from mlpdash.predict import EVAL_BATCH, Prediction, Predictor, predict_drawing
from mlpdash.progress import LossHistory, Snapshot, Status
from mlpdash.runs import RunInfo, RunWriter
from mlpdash.timeline import MAX_RECORDS, EpochRecord, Timeline, compact, thinned

__all__ = ["NotReadyError", "Snapshot", "Status", "TrainingJob"]

# Debiased exponential moving average of the per-batch loss, as TensorBoard smooths its curves.
LOSS_SMOOTHING = 0.9
# First-layer snapshots are kept for every epoch up to this many, and within the byte budget of
# budgets.snapshot_bytes(); beyond either every other one is dropped (the first and the newest always
# stay), so neither a 1000-epoch run nor a 4096-unit layer can exhaust memory.
MAX_KERNEL_SNAPSHOTS = 101
PAUSE_POLL_SECONDS = 0.1
# Batches over which the displayed pace (samples/s, time left) is measured.
PACE_WINDOW = 20
# A uniform guess over 10 digits has a cross-entropy of ln 10. An epoch far above it, or a network
# stuck at chance with no better loss than that guess, has diverged, whatever Keras says.
UNIFORM_LOSS = math.log(10)
DIVERGED_EPOCH_LOSS = 10 * UNIFORM_LOSS
DIVERGED_BATCH_LOSS = 1e4
CHANCE_ACCURACY = 0.2
# Stuck at chance is judged only after this many updates: a run of one huge batch per epoch has
# barely begun after two epochs.
MIN_STUCK_STEPS = 100
DIVERGENCE_ADVICE = "lower the learning rate (a tenth of it is a good next try)"
# How long an exiting process waits for a stopped job to evaluate and save.
SHUTDOWN_GRACE_SECONDS = 30.0
# An ended job's thread still closes its files and returns memory (milliseconds); a next Start waits
# this long for it to hand over its model.
RELEASE_WAIT_SECONDS = 5.0

LOG = logging.getLogger("mlpdash")
_live_jobs: weakref.WeakSet[TrainingJob] = weakref.WeakSet()
_shutting_down = threading.Event()


class DivergedError(FloatingPointError):
    """The loss blew up or the network is stuck at chance: a run that cannot learn."""


class ShuttingDownError(RuntimeError):
    """The process is exiting: no new job may start (a queue must not start one mid-shutdown)."""


class NotReadyError(RuntimeError):
    """The job has no model yet (it is still loading data)."""


class TrainingJob:
    """Train one model in a background thread; control it and read its progress from any thread.

    `data` is a source spec for `load_mnist` (None = the default source) or already-loaded splits.
    `strategy` is the `tf.distribute` strategy the model is built under (None = the current one, the
    default strategy on one CPU or GPU). `spare` is an ended job's compiled model
    (`release_model`), used instead of a new one when it has this config's graph. `pace` is slow
    motion (`set_pace`). `on_run_dir` is called with the run folder the moment it exists, in the
    training thread (a sweep's queue records it then, so that a restart finds it).
    """

    def __init__(
        self,
        config: TrainConfig,
        data: str | MnistSplits | None = None,
        runs_dir: str | Path | None = None,
        *,
        verbose: int = 0,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        loader: Callable[[str | None], MnistSplits] = load_mnist,
        strategy: tf.distribute.Strategy | None = None,
        spare: SpareModel | None = None,
        pace: float | None = None,
        on_run_dir: Callable[[Path], None] | None = None,
    ) -> None:
        self.config = config
        self._on_run_dir = on_run_dir
        self._data = data
        self._runs_dir = runs_dir
        self._verbose = verbose
        self._extra_callbacks = list(callbacks)
        self._loader = loader
        self._strategy = strategy
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._thread = threading.Thread(target=self._run, name="mlpdash-training", daemon=True)
        self._done = threading.Event()
        self._predictor: Predictor | None = None
        self._pace: float | None = None
        self._pace_changed = threading.Event()  # wakes a slow-motion hold: new pace or a stop
        self.set_pace(pace)
        self._spare = spare  # before _build: one offered to this job; after: this job's own model
        self._writer: RunWriter | None = None
        # Mutable progress, guarded by _lock; snapshot() copies it.
        self._status = Status.IDLE
        self._error: str | None = None
        self._source: tuple[str, str] | None = None
        self._train_size = 0
        self._epoch = 0
        self._batch = 0
        self._steps = 0
        self._speed: float | None = None
        self._history: tuple[dict[str, float], ...] = ()  # replaced, never changed: snapshots share it
        self._losses = LossHistory(loss_history_points())
        self._kernels: list[np.ndarray] = []
        self._kernel_epochs: list[int] = []
        self._records: list[EpochRecord] = []  # thinned; the confusions are kept for every epoch
        self._confusion_epochs: list[int] = []
        self._confusions = np.zeros((0, 10, 10), np.int64)  # replaced, never changed: snapshots share it
        self._val_images: np.ndarray | None = None
        self._val_labels: np.ndarray | None = None
        self._report: TestReport | None = None
        self._train_seconds = 0.0
        self._samples_trained = 0
        self._finishing = False
        self._holding = False  # the thread is waiting in a pause (not merely asked to)
        self._batches_trained = 0
        self._batches_at_stop: int | None = None  # batches trained when stop() was first called
        self._stop_deadline: float | None = None  # time.monotonic() by which a stopped job must be saved

    # --- controls --------------------------------------------------------------------------------

    def start(self) -> TrainingJob:
        if _shutting_down.is_set():
            raise ShuttingDownError("the server is shutting down: no new run starts")
        with self._lock:
            if self._status != Status.IDLE:
                raise RuntimeError("this job has already been started")
            self._status = Status.LOADING_DATA
        _live_jobs.add(self)
        self._thread.start()
        return self

    def pause(self) -> bool:
        """Hold training after the current batch; False when there is nothing to pause (also once
        the last batch is done: only testing and saving are left, and they are not held)."""
        with self._lock:
            if self._status != Status.TRAINING or self._finishing:
                return False
            self._unpaused.clear()
            self._status = Status.PAUSED
            return True

    def resume(self) -> bool:
        with self._lock:
            if self._status != Status.PAUSED:
                return False
            self._status = Status.TRAINING
            self._unpaused.set()
            return True

    def stop(self) -> bool:
        """End training within one batch; the partial run is still evaluated and saved."""
        with self._lock:
            if self._status not in (Status.LOADING_DATA, Status.TRAINING, Status.PAUSED):
                return False
            self._stop.set()
            self._pace_changed.set()
            self._unpaused.set()
            self._status = Status.STOPPING
            if self._batches_at_stop is None:
                self._batches_at_stop = self._batches_trained
                self._stop_deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
            return True

    def wait_for_save(self) -> bool:
        """After stop(): wait until the job has saved, at most until its save deadline (one shared
        deadline, however many callers wait: the CLI, then the exit hook); True when it ended."""
        with self._lock:
            deadline = self._stop_deadline
        if deadline is None:
            return self.join(0)
        return self.join(max(0.0, deadline - time.monotonic()))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job to end (saved, failed or stopped); True when it has."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def status(self) -> Status:
        """The status alone: cheaper than a snapshot for readers that poll it."""
        with self._lock:
            return self._status

    @property
    def finishing(self) -> bool:
        """The last batch is done: a pause would hold nothing."""
        with self._lock:
            return self._finishing

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            source, reason = self._source or (None, None)
            steps, losses, smoothed = self._losses.view()
            return Snapshot(
                status=self._status,
                config=self.config,
                error=self._error,
                data_source=source,
                data_reason=reason,
                train_size=self._train_size,
                epoch=self._epoch,
                batch=self._batch,
                batches_per_epoch=self._steps,
                samples_per_second=self._speed,
                history=self._history,
                batch_steps=steps,
                batch_loss=losses,
                batch_loss_smoothed=smoothed,
                kernels=tuple(self._kernels),
                kernel_epochs=tuple(self._kernel_epochs),
                timeline=self._timeline(),
                report=self._report,
                run_dir=self._writer.path if self._writer else None,
                train_seconds=self._train_seconds,
                finishing=self._finishing,
                holding=self._holding,
            )

    def _timeline(self) -> Timeline | None:
        """The records and confusions so far (called under the lock); None before step 0's."""
        if not self._records:
            return None
        return Timeline(tuple(self._records), np.asarray(self._confusion_epochs, np.int64), self._confusions)

    @property
    def predictor(self) -> Predictor | None:
        """The live model's predictor (current weights), or None before the model exists."""
        return self._predictor

    @property
    def pace(self) -> float | None:
        """Slow motion: the samples a second training is held to, or None for full speed."""
        return self._pace

    def set_pace(self, samples_per_second: float | None) -> None:
        """Slow the training down to `samples_per_second` (None or 0: full speed), at once, mid-run
        included, so that a class can watch the curves form. It changes no result, only the wall time."""
        if samples_per_second is not None and samples_per_second < 0:
            raise ValueError(f"a pace is a positive number of samples a second (got {samples_per_second})")
        self._pace = samples_per_second or None
        self._pace_changed.set()

    @property
    def data_spec(self) -> str | None:
        """The data source as it was asked for (None: the default), or None for splits handed in."""
        return self._data if isinstance(self._data, str) else None

    def live_kernel(self) -> tuple[np.ndarray, int, int] | None:
        """The first layer's kernel as it is now, mid-epoch included, float32 [784, units], with the
        (epoch, batch) it was read at; None before the model exists. The read races the training
        step, so it may mix two consecutive batches' values: fine for a picture, never saved."""
        predictor = self._predictor
        if predictor is None:
            return None
        with self._lock:
            epoch, batch = self._epoch, self._batch
        return first_layer_kernel(predictor.model), epoch, batch

    def release_model(self) -> SpareModel | None:
        """Hand this ended job's compiled model to the next job (JobManager does, on the next Start),
        so that retraining the same settings traces nothing new; the job answers no drawings after.
        None while the job runs, or when it failed (its model may be half-updated)."""
        # A job that has ended has a moment of cleanup left before its thread is done: wait it out.
        if self.status.active or not self._done.wait(RELEASE_WAIT_SECONDS):
            return None
        with self._lock:
            spare, self._spare = self._spare, None
            if self._status is Status.FAILED:
                return None
            self._predictor = None
        return spare

    def predict_drawing(self, drawing: np.ndarray) -> Prediction:
        """Classify a drawing with the weights as they are right now, even mid-training."""
        if self._predictor is None:
            raise NotReadyError("no model: it is not built yet (still loading data), or this job's "
                                "model went to a newer job")
        return predict_drawing(self._predictor, drawing)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            data = self._load()
            if self._stopped_before_training():
                return
            model = self._build(data)
            if self._stopped_before_training():
                return
            self._open_run(model, data)
            self._fit(model, data)
            if self._stopped_before_a_batch():
                return
            self._finish(model, data)
        except DivergedError as err:
            self._fail(err, Status.DIVERGED)
        except Exception as err:  # anything at all must reach the reader, not die with the thread
            self._fail(err, Status.FAILED)
        finally:
            self._val_images = None  # 31 MB of float32 for full MNIST: the page never needs them
            try:
                if self._writer is not None:
                    self._writer.close()
                return_freed_memory()
            finally:
                self._done.set()  # whatever happened above: a waiter must never hang on this job

    def _load(self) -> MnistSplits:
        data = self._data if isinstance(self._data, MnistSplits) else self._loader(self._data)
        if self.config.train_digits:
            # The first N of the split (a view: the loaded arrays are shared with other jobs).
            n = self.config.train_digits
            have = len(data.x_train)
            reason = (f"{data.reason}; training on the first {n:,} digits" if n <= have else
                      f"{data.reason}; {n:,} training digits asked for, the split has {have:,}: all are used")
            data = dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n], reason=reason)
        with self._lock:
            self._source = (data.source, data.reason)
            self._train_size = len(data.x_train)
        return data

    def _stopped_before_training(self) -> bool:
        """A stop while the data loaded or the model was built ends the job there: nothing trained,
        nothing saved."""
        with self._lock:
            if not self._stop.is_set():
                return False
            self._status = Status.STOPPED
            return True

    def _stopped_before_a_batch(self) -> bool:
        """A stop pressed before the first batch had finished (while the training step was being
        traced, say) ends the job as if training had not begun: the run folder is removed, so no
        model trained on one batch ever answers drawings."""
        with self._lock:
            if self._batches_at_stop != 0:
                return False
            self._status = Status.STOPPED
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()
        return True

    def _build(self, data: MnistSplits) -> keras.Model:
        steps = math.ceil(len(data.x_train) / self.config.batch_size)
        # Seeds Python, NumPy and TensorFlow: the same config and data give the same metrics.
        keras.utils.set_random_seed(self.config.seed)
        model = self._compiled_model(graph_key(self.config, steps), steps)
        self._predictor = Predictor(model)
        with self._lock:
            self._steps = steps
        return model

    def _compiled_model(self, key: tuple, steps: int) -> keras.Model:
        """The offered spare model reset to this config's start when its graph fits, else a new one
        (kept as this job's spare unless it was built under a strategy of the caller's)."""
        offered, self._spare = self._spare, None
        own_graph = self._strategy is None and not tf.distribute.has_strategy()
        # A spare was built outside any strategy: a caller's strategy gets a model built under it.
        if offered is not None and offered.key == key and own_graph:
            self._spare = offered
            return reuse_model(offered, self.config)
        model = build_model(self.config, steps, self._strategy)
        if own_graph:
            self._spare = spare_model(model, key)
        return model

    def _open_run(self, model: keras.Model, data: MnistSplits) -> None:
        self._writer = RunWriter(self._runs_dir, self.config, data.source)
        if self._on_run_dir is not None:
            try:
                self._on_run_dir(self._writer.path)
            except Exception:  # bookkeeping of the caller's: the run trains on without it
                LOG.exception("recording the run folder %s failed", self._writer.path)
        self._keep_kernel(first_layer_kernel(model), 0)
        self._val_images, self._val_labels = to_model_input(data.x_val), np.asarray(data.y_val)
        self._validate(0, model)  # the model as initialised: where the views over time start
        with self._lock:
            if not self._stop.is_set():
                self._status = Status.TRAINING

    def _fit(self, model: keras.Model, data: MnistSplits) -> None:
        model.fit(
            to_model_input(data.x_train),
            data.y_train,
            batch_size=self.config.batch_size,
            epochs=self.config.epochs,
            # The validation pass is ours (_validate, at each epoch's end): one pass gives Keras's
            # metrics and the answers that the views over time need.
            callbacks=[_Reporter(self, len(data.x_train)), *self._extra_callbacks],
            shuffle=True,
            verbose=self._verbose,
        )

    def _finish(self, model: keras.Model, data: MnistSplits) -> None:
        with self._lock:
            # A stop that came after the last batch of the last epoch cut nothing short.
            stopped = self._stop.is_set() and len(self._history) < self.config.epochs
            self._status = Status.EVALUATING
        assert self._predictor is not None and self._writer is not None
        report = report_from_logits(self._predictor.logits(to_model_input(data.x_test)), data.y_test)
        with self._lock:
            self._report = report
            summary = self._summary(report, stopped, data.source)
        writer = self._writer
        _write_report(writer, report)
        # A stop mid-epoch leaves weights newer than the last epoch's checkpoint: the run's model
        # is the one that was tested.
        writer.write_model_weights(network_weights(model))
        writer.write_model(model)
        writer.write_summary(summary)  # last: its presence marks the run as complete
        with self._lock:
            self._status = Status.STOPPED if stopped else Status.FINISHED

    def _summary(self, report: TestReport, stopped: bool, source: str) -> dict[str, Any]:
        seconds = self._train_seconds
        return {
            **report.summary(),
            "epochs_completed": len(self._history),
            "stopped_early": stopped,
            "outcome": "stopped" if stopped else "finished",
            "data_source": source,
            "samples_per_second": self._samples_trained / seconds if seconds > 0 else None,
            "train_seconds": seconds,
        }

    def _fail(self, err: Exception, status: Status) -> None:
        if isinstance(err, ValueError | DivergedError) and str(err):
            message = str(err)
        else:
            message = f"{type(err).__name__}: {err}"
        with self._lock:
            self._status = status
            self._error = message
        if self._writer is not None:
            try:
                self._writer.write_failure(message, status.value)
            except OSError:
                pass  # the failure itself is already visible in the snapshot

    # --- called by _Reporter from inside fit ------------------------------------------------------

    def _record_batch(self, epoch: int, batch: int, loss: float, smoothed: float,
                      samples: int, seconds: float, speed: float | None, last: bool) -> None:
        with self._lock:
            self._epoch, self._batch = epoch, batch
            self._losses.append((epoch - 1) * self._steps + batch, loss, smoothed)
            self._batches_trained += 1
            self._samples_trained += samples
            self._train_seconds += seconds
            if speed is not None:  # keep the last known pace until this epoch has one
                self._speed = speed
            self._finishing = self._finishing or last

    def _validation_logits(self) -> np.ndarray | None:
        """The model's logits for the validation split, or None when a stop came meanwhile (it is
        checked between batches: a stop does not wait for the pass)."""
        assert self._predictor is not None and self._val_images is not None
        parts = []
        for start in range(0, len(self._val_images), EVAL_BATCH):
            if self._stop.is_set():
                return None
            parts.append(self._predictor.logits(self._val_images[start : start + EVAL_BATCH]))
        return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)

    def _validate(self, epoch: int, model: keras.Model) -> dict[str, float] | None:
        """The end of an epoch's validation: its loss and accuracy (as Keras's own validation would
        give them), with the model's record kept; None when a stop cut the pass short."""
        logits = self._validation_logits()
        if logits is None:
            return None
        assert self._val_labels is not None
        report = report_from_logits(logits, self._val_labels)
        record = EpochRecord.of(epoch, network_weights(model), report.predictions, report.confidences)
        self._keep_record(record, report.confusion)
        return {"val_loss": report.loss, "val_accuracy": report.accuracy}

    def _keep_record(self, record: EpochRecord, confusion: np.ndarray) -> None:
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

    def _record_epoch(self, row: dict[str, float], model: keras.Model) -> None:
        self._keep_kernel(first_layer_kernel(model), int(row["epoch"]))
        with self._lock:
            self._history = (*self._history, row)
            rows = self._history
        assert self._writer is not None
        self._writer.write_epoch(rows, network_weights(model))

    def _keep_kernel(self, kernel: np.ndarray, epoch: int) -> None:
        """Keep a snapshot in memory and in the run folder, thinning both the same way."""
        kernel = compact(kernel)
        assert self._writer is not None
        self._writer.write_snapshot(kernel, epoch)
        with self._lock:
            self._kernels.append(kernel)
            self._kernel_epochs.append(epoch)
            dropped = self._thin_kernels()
        for gone in dropped:
            self._writer.remove_snapshot(gone)

    def _thin_kernels(self) -> list[int]:
        """Drop every other snapshot (never the first or the newest) while over count or bytes."""
        keep = thinned([k.nbytes for k in self._kernels], MAX_KERNEL_SNAPSHOTS, snapshot_bytes())
        dropped = [e for i, e in enumerate(self._kernel_epochs) if i not in set(keep)]
        self._kernels = [self._kernels[i] for i in keep]
        self._kernel_epochs = [self._kernel_epochs[i] for i in keep]
        return dropped

    def _hold_pace(self, samples: int, took: float) -> float:
        """Slow motion: make a batch of `samples` that took `took` s last samples/pace seconds;
        returns the seconds held. A new pace applies at once (the wait is recomputed from it) and a
        stop ends the wait; a pause pressed meanwhile takes effect after it."""
        if not self._pace:
            return 0.0
        began = time.perf_counter()
        while not self._stop.is_set():
            # Cleared before the pace is read, so that a set_pace() in between still wakes the wait.
            self._pace_changed.clear()
            pace = self._pace
            if not pace:
                break
            left = samples / pace - took - (time.perf_counter() - began)
            if left <= 0:
                break
            self._pace_changed.wait(left)
        return time.perf_counter() - began

    def _wait_while_paused(self) -> float:
        """Block while paused; returns the seconds spent waiting."""
        if self._unpaused.is_set():
            return 0.0
        began = time.perf_counter()
        with self._lock:
            self._holding = True
        try:
            while not self._unpaused.wait(PAUSE_POLL_SECONDS):
                pass
        finally:
            with self._lock:
                self._holding = False
        return time.perf_counter() - began


class _Reporter(keras.callbacks.Callback):
    """Turns Keras' progress into the job's records and applies its pause and stop requests.

    Per-epoch bookkeeping lives here, touched only by the training thread, so the job's lock guards
    just what readers see.
    """

    def __init__(self, job: TrainingJob, train_size: int) -> None:
        super().__init__()
        self.job = job
        self.train_size = train_size
        self.batch_size = job.config.batch_size
        self.steps = math.ceil(train_size / self.batch_size)
        self.epochs = job.config.epochs
        self.ema = 0.0
        self.ema_count = 0
        self.stuck_epochs = 0
        self.last_val_loss: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # A pause pressed during the validation pass holds here, before the next epoch starts.
        self.job._wait_while_paused()
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
        self.pace.append((now - self.started - self.paused, done))
        last = self.epoch == self.epochs and self.batches == self.steps
        self.job._record_batch(self.epoch, self.batches, loss, self._smooth(loss), size,
                               now - self.mark, self._recent_speed(), last)
        if not math.isfinite(loss) or loss > DIVERGED_BATCH_LOSS:
            raise DivergedError(f"Diverged: the loss reached {loss:.3g} in epoch {self.epoch}, batch "
                                f"{self.batches} — {DIVERGENCE_ADVICE}")
        held = self.job._hold_pace(size, now - self.mark)
        waited = self.job._wait_while_paused()
        self.paused += waited
        self.held += held
        # The next batch is timed from here: neither a pause nor slow motion is its compute time.
        self.mark = time.perf_counter() if waited or held else now
        if self.job.stop_requested:
            self.model.stop_training = True

    def _recent_speed(self) -> float | None:
        """Samples per second over the last few batches of this epoch. The first batch of a run
        includes tracing the training step (seconds), so an average from the epoch's start would
        understate the pace, and the time left would be wrong, for a whole epoch."""
        if len(self.pace) < 2:
            return None
        (t0, s0), (t1, s1) = self.pace[0], self.pace[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else None

    def _smooth(self, loss: float) -> float:
        self.ema_count += 1
        self.ema = LOSS_SMOOTHING * self.ema + (1 - LOSS_SMOOTHING) * loss
        return self.ema / (1 - LOSS_SMOOTHING**self.ema_count)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.batches < self.steps:
            return  # stopped mid-epoch: a partial epoch is no row of the history
        validation = self.job._validate(epoch + 1, self.model)
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
        self.job._record_epoch(row, self.model)
        self._check_divergence(row)

    def _check_divergence(self, row: dict[str, float]) -> None:
        """After an epoch: a loss far above a uniform guess's, or a network stuck at chance (accuracy
        at chance, a loss no better than a guess's and no better than the epoch before, for two
        epochs running and at least MIN_STUCK_STEPS updates), ends the run as diverged. A slow
        learner near chance still improves its loss, and is left alone."""
        epoch, loss = int(row["epoch"]), row["loss"]
        if not math.isfinite(loss) or loss > DIVERGED_EPOCH_LOSS:
            raise DivergedError(f"Diverged: the training loss of epoch {epoch} is {loss:.3g}, far above "
                                f"the {UNIFORM_LOSS:.2f} of a uniform guess — {DIVERGENCE_ADVICE}")
        val_loss = row["val_loss"]
        stuck = (row["val_accuracy"] < CHANCE_ACCURACY and val_loss >= UNIFORM_LOSS - 0.05
                 and self.last_val_loss is not None and val_loss >= self.last_val_loss - 1e-3)
        self.last_val_loss = val_loss
        self.stuck_epochs = self.stuck_epochs + 1 if stuck else 0
        if self.stuck_epochs >= 2 and epoch * self.steps >= MIN_STUCK_STEPS:
            raise DivergedError(f"Diverged: the network is stuck at chance — validation accuracy "
                                f"{row['val_accuracy']:.1%} and a loss no better than a uniform guess, "
                                f"not improving — {DIVERGENCE_ADVICE}")


def evaluate_saved_run(info: RunInfo, data: MnistSplits) -> TestReport:
    """Test the model an interrupted run saved at its last finished epoch, and record the result
    in its folder as the run's summary (outcome "interrupted")."""
    from mlpdash.runs import load_run_model, read_metrics

    model = load_run_model(info.path)
    report = report_from_logits(Predictor(model).logits(to_model_input(data.x_test)), data.y_test)
    rows = read_metrics(info.path / "metrics.jsonl")
    writer = RunWriter.reopen(info)
    try:
        _write_report(writer, report)
        writer.write_summary({
            **report.summary(), "epochs_completed": len(rows), "stopped_early": True,
            "outcome": "interrupted", "data_source": data.source,
            "train_seconds": float(sum(row["seconds"] for row in rows)),
        })
    finally:
        writer.close()
    return report


def _write_report(writer: RunWriter, report: TestReport) -> None:
    writer.write_test_results(
        {"labels": report.labels.astype(np.uint8), "predictions": report.predictions.astype(np.uint8),
         "confidences": report.confidences},
        report.mistakes(),
    )


def any_live_job() -> bool:
    """Whether a job of this process is still going (training, or saving after a stop)."""
    return any(not job.done for job in list(_live_jobs))


def stop_live_jobs() -> None:
    """Stop every job still training and wait for each to save, at most SHUTDOWN_GRACE_SECONDS
    after it was first stopped."""
    _shutting_down.set()
    jobs = [job for job in list(_live_jobs) if not job.done]
    for job in jobs:
        job.stop()
    for job in jobs:
        job.wait_for_save()  # the deadline set by the job's first stop, not a new one


# The training thread is a daemon (a stuck job must never keep a process alive for ever), so the
# interpreter would kill it mid-save at exit: the CLI after SIGTERM, the Streamlit server shutting
# down. atexit hooks run while daemon threads still do, so this one lets a job finish saving.
atexit.register(stop_live_jobs)
