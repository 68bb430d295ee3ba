"""The training engine: one job trains in a background thread and reports through a snapshot.

The thread never talks to a user interface. It writes into the job's lock-protected state from a Keras
callback; readers (the CLI, the page, tests) call `job.snapshot()`, which returns an immutable copy. The
controls (pause, resume, stop) are events the callback checks after every batch, so each takes effect
within one batch. Every run is saved through `RunWriter` as it goes: the model's weights and the
snapshots at the end of every epoch, so a killed process loses at most the epoch in flight.

What a job trains is its plan (`mlpdash.plan`): a normal training run by default, or a fine-tune of
a saved run's model (`mlpdash.finetune`); either way the same thread, controls, recorder
(`mlpdash.recorder`: metrics, timeline, snapshots, run folder) and summary, written last by `_finish`.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mlpdash.budgets import return_freed_memory
from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist
from mlpdash.evaluate import TestReport, report_from_logits
from mlpdash.mnist import scale
from mlpdash.model import SpareModel, build_model, first_layer_kernel, graph_key, reuse_model, spare_model
from mlpdash.plan import TrainPlan
from mlpdash.predict import Prediction, Predictor, predict_drawing
from mlpdash.pace import Pace
from mlpdash.progress import Snapshot, Status
from mlpdash.recorder import DivergedError, Reporter, RunRecorder, write_summary, write_test_results
from mlpdash.runs import RunInfo, RunWriter

__all__ = ["DivergedError", "NotReadyError", "ShuttingDownError", "Snapshot", "Status", "TrainPlan", "TrainingJob",
           "any_live_job", "evaluate_saved_run", "stop_live_jobs"]

PAUSE_POLL_SECONDS = 0.1
# How long an exiting process waits for a stopped job to evaluate and save.
SHUTDOWN_GRACE_SECONDS = 30.0
# An ended job's thread still closes its files and returns memory (milliseconds); a next Start waits
# this long for it to hand over its model.
RELEASE_WAIT_SECONDS = 5.0

LOG = logging.getLogger("mlpdash")
_live_jobs: weakref.WeakSet[TrainingJob] = weakref.WeakSet()
_shutting_down = threading.Event()


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
    training thread (a sweep's queue records it then, so that a restart finds it). `plan` says what
    is trained and which ends leave a run (None: a normal training run of `config`).

    The reporter inside `fit` uses the job's public side only: `config`, `recorder` (what the run
    records), `stop_requested`, `hold_pace` and `wait_while_paused`.
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
        pace: Pace | float | None = None,
        on_run_dir: Callable[[Path], None] | None = None,
        plan: TrainPlan | None = None,
    ) -> None:
        self.config = config
        self._plan = plan if plan is not None else TrainPlan()
        self._on_run_dir = on_run_dir
        self._data = data
        self._runs_dir = runs_dir
        self._verbose = verbose
        self._extra_callbacks = list(callbacks)
        self._loader = loader
        self._strategy = strategy
        # Re-entrant: the recorder shares it, and a snapshot reads the recorder while holding it.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._thread = threading.Thread(target=self._run, name="mlpdash-training", daemon=True)
        self._done = threading.Event()
        # Set once training has stopped and the test result is known (or the job has ended): what a
        # Stop waits for, so that the page says "Stopped" at once while the run is saved after.
        self._tested = threading.Event()
        self._predictor: Predictor | None = None
        self._pace: Pace | None = None
        self._pause_after: int | None = None  # pause_after_epoch's epoch
        self._pace_changed = threading.Event()  # wakes a slow-motion hold: new pace or a stop
        self.set_pace(pace)
        # Before _build: one offered to this job; after: this job's own model (a plan's model is never
        # one: the offered spare is kept for the next job).
        self._spare = spare
        self._recorder = RunRecorder(self._lock, self._stop)
        self._fit_on: tuple[np.ndarray, np.ndarray] | None = None  # the plan's arrays, until fit ends
        # Mutable state, guarded by _lock; snapshot() copies it with the recorder's.
        self._status = Status.IDLE
        self._error: str | None = None
        self._exception: Exception | None = None
        self._source: tuple[str, str] | None = None
        self._train_size = 0
        self._report: TestReport | None = None
        self._holding = False  # the thread is waiting in a pause (not merely asked to)
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
            if self._status != Status.TRAINING or self._recorder.finishing:
                return False
            self._unpaused.clear()
            self._status = Status.PAUSED
            return True

    def pause_after_epoch(self, epoch: int | None) -> None:
        """Pause once `epoch` has ended (validated and recorded), before the next one starts: the
        moment a guided lesson compares the weights with step 0. None: no such pause."""
        self._pause_after = epoch

    def epoch_recorded(self, epoch: int) -> None:
        """The reporter's word that `epoch` has ended (called from inside fit)."""
        if self._pause_after == epoch:
            self._pause_after = None
            self.pause()

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
                self._batches_at_stop = self._recorder.batches_trained
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

    def wait_until_tested(self, timeout: float) -> bool:
        """After stop(): wait, at most `timeout` s, until training has stopped and the model as it
        stopped is tested (the saving goes on after); True when it has, or the job has ended."""
        return self._tested.wait(timeout)

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
        return self._recorder.finishing

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def plan(self) -> TrainPlan:
        return self._plan

    @property
    def recorder(self) -> RunRecorder:
        """What the run records (for the reporter inside `fit`; readers use `snapshot`)."""
        return self._recorder

    @property
    def result(self) -> Any:
        """What the plan made of the run once it was saved (a fine-tune's report), else None."""
        return self._plan.result

    @property
    def exception(self) -> Exception | None:
        """The exception that ended the job as failed or diverged (as the plan words it), for a
        caller that waits for the job and re-raises it; None otherwise."""
        with self._lock:
            return self._exception

    # --- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            source, reason = self._source or (None, None)
            return Snapshot(
                status=self._status,
                config=self.config,
                task=self._plan.task,
                error=self._error,
                data_source=source,
                data_reason=reason,
                train_size=self._train_size,
                report=self._report,
                holding=self._holding,
                stop_requested=self._stop.is_set(),
                pace=self._pace,
                **self._recorder.progress(),
            )

    @property
    def predictor(self) -> Predictor | None:
        """The live model's predictor (current weights), or None before the model exists."""
        return self._predictor

    @property
    def pace(self) -> Pace | None:
        """Slow motion: what training is held to (a batch a second...), or None for full speed."""
        return self._pace

    def held_sample_seconds(self) -> float:
        """The least time a training sample takes at the pace set now (0 at full speed)."""
        pace = self._pace
        if not pace:
            return 0.0
        return 1 / pace.samples_per_second(self.config.batch_size, self._train_size)

    def set_pace(self, pace: Pace | float | None) -> None:
        """Slow the training down to `pace` (a number: samples a second; None or 0: full speed), at
        once, mid-run included, so that a class can watch the curves form. It changes no result,
        only the wall time."""
        if isinstance(pace, (int, float)):
            if pace < 0:
                raise ValueError(f"a pace is a positive number of samples a second (got {pace})")
            pace = Pace(pace) if pace else None
        self._pace = pace
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
        epoch, batch = self._recorder.position()
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
            self._plan.after_fit(model)
            if self._stopped_with_nothing_to_keep():
                return
            self._finish(model, data)
        except DivergedError as err:
            self._fail(err, Status.DIVERGED)
        except Exception as err:  # anything at all must reach the reader, not die with the thread
            self._fail(err, Status.FAILED)
        finally:
            self._fit_on = None  # 188 MB of float32 for full MNIST
            try:
                self._plan.close()
                self._recorder.close()
                return_freed_memory()
            finally:
                self._tested.set()
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

    def _stopped_with_nothing_to_keep(self) -> bool:
        """A stop that came before the plan had anything worth keeping ends the job as if training
        had not begun: the run folder is removed. A normal run keeps nothing stopped before its first
        batch had finished (while the training step was being traced, say), so that no model trained
        on one batch ever answers drawings; a fine-tune keeps nothing stopped before its first epoch."""
        with self._lock:
            if self._batches_at_stop is None or self._plan.keeps(self._recorder.epochs_completed,
                                                                 self._batches_at_stop):
                return False
            self._status = Status.STOPPED
        self._recorder.discard()
        return True

    def _build(self, data: MnistSplits) -> keras.Model:
        x, y = self._plan.arrays(data)
        steps = math.ceil(len(x) / self.config.batch_size)
        # Seeds Python, NumPy and TensorFlow: the same config and data give the same metrics.
        keras.utils.set_random_seed(self.config.seed)
        model = self._plan.model(data)
        if model is None:
            model = self._compiled_model(graph_key(self.config, steps), steps)
        self._predictor = Predictor(model)
        self._recorder.set_steps(steps)
        with self._lock:
            self._train_size = len(x)
        self._fit_on = (x, y)
        self._plan.before_fit(model, self._predictor, data)
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
        writer = RunWriter(self._runs_dir, self.config, data.source)
        self._recorder.open(writer)
        if self._on_run_dir is not None:
            try:
                self._on_run_dir(writer.path)
            except Exception:  # bookkeeping of the caller's: the run trains on without it
                LOG.exception("recording the run folder %s failed", writer.path)
        assert self._predictor is not None
        self._recorder.set_validation(self._predictor, scale(data.x_val), data.y_val)
        self._recorder.record_start(model)  # the model as it starts: where the views over time start
        with self._lock:
            if not self._stop.is_set():
                self._status = Status.TRAINING

    def _fit(self, model: keras.Model, data: MnistSplits) -> None:
        assert self._fit_on is not None
        x, y = self._fit_on
        model.fit(
            x,
            y,
            batch_size=self.config.batch_size,
            epochs=self.config.epochs,
            # The validation pass is the recorder's (at each epoch's end): one pass gives Keras's
            # metrics and the answers that the views over time need.
            callbacks=[Reporter(self, len(x), self._plan.judges_divergence), *self._extra_callbacks],
            shuffle=True,
            verbose=self._verbose,
        )

    def _finish(self, model: keras.Model, data: MnistSplits) -> None:
        with self._lock:
            epochs = self._recorder.epochs_completed
            # A stop that came after the last batch of the last epoch cut nothing short.
            stopped = self._stop.is_set() and epochs < self.config.epochs
            self._status = Status.EVALUATING
        assert self._predictor is not None
        report = report_from_logits(self._predictor.logits(scale(data.x_test)), data.y_test)
        with self._lock:
            self._report = report
        self._tested.set()
        self._recorder.save(report, model)
        run_dir = self._recorder.run_dir
        assert run_dir is not None
        self._plan.before_summary(run_dir, self._predictor, report, epochs, stopped)
        self._recorder.write_summary(report, stopped, data.source)  # last: it marks the run as complete
        with self._lock:
            self._status = Status.STOPPED if stopped else Status.FINISHED

    def _fail(self, err: Exception, status: Status) -> None:
        err = self._plan.failure(err)
        if isinstance(err, ValueError | DivergedError) and str(err):
            message = str(err)
        else:
            message = f"{type(err).__name__}: {err}"
        with self._lock:
            self._status = status
            self._error = message
            self._exception = err
        try:
            if self._plan.keeps_failures:
                self._recorder.write_failure(message, status.value)
            else:
                self._recorder.discard()
        except OSError:
            pass  # the failure itself is already visible in the snapshot

    # --- the reporter's controls (called from inside fit) ------------------------------------------

    def hold_pace(self, samples: int, took: float) -> float:
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
            rate = pace.samples_per_second(self.config.batch_size, self._train_size)
            left = samples / rate - took - (time.perf_counter() - began)
            if left <= 0:
                break
            self._pace_changed.wait(left)
        return time.perf_counter() - began

    def wait_while_paused(self) -> float:
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


def evaluate_saved_run(info: RunInfo, data: MnistSplits) -> TestReport:
    """Test the model an interrupted run saved at its last finished epoch, and record the result
    in its folder as the run's summary (outcome "interrupted")."""
    from mlpdash.runs import load_run_model, read_metrics

    model = load_run_model(info.path)
    report = report_from_logits(Predictor(model).logits(scale(data.x_test)), data.y_test)
    rows = read_metrics(info.path / "metrics.jsonl")
    writer = RunWriter.reopen(info)
    try:
        write_test_results(writer, report)
        write_summary(writer, report, epochs_completed=len(rows), outcome="interrupted", data_source=data.source,
                      train_seconds=float(sum(row["seconds"] for row in rows)))
    finally:
        writer.close()
    return report


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
