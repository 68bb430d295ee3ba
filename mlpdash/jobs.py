"""The server's one training job, and the model that answers drawings when no job runs.

A dashboard page is rerun for every browser tab and every interaction, but training belongs to the
server process: one `JobManager` (the page keeps it in `st.cache_resource`) holds at most one active
job, so a refresh or a second tab finds the same job, and a second Start is refused while it runs.
Loaded datasets and reloaded run models are kept here too, so neither is read twice.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpdash.budgets import cache_bytes
from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist, resolve_source
from mlpdash.explain import HiddenMap, Network, fit_map
from mlpdash.mistakes import Answers
from mlpdash.progress import Snapshot, Status
from mlpdash.runs import (
    CONFUSIONS_FILE,
    MAX_NAME_CHARS,
    TIMELINE_DIR,
    RunError,
    RunInfo,
    SavedRun,
    list_runs,
    load_run,
    load_run_model,
    read_info,
    read_test_predictions,
    read_timeline,
    runs_root,
    set_notes,
    trash_run,
)
from mlpdash.sweep import QUEUE_FILE, QueueItem, RunQueue, Sweep
from mlpdash.timeline import Timeline

if TYPE_CHECKING:
    from mlpdash.predict import Predictor
    from mlpdash.training import TrainingJob


LOG = logging.getLogger("mlpdash")
# Cached in place of a run's missing timeline (the cache keeps values, and None means "not cached").
NO_TIMELINE = Timeline((), np.zeros(0, np.int64), np.zeros((0, 10, 10), np.int64))


class JobBusyError(RuntimeError):
    """A job is already running; only one trains at a time."""


@dataclasses.dataclass(frozen=True)
class ModelInFocus:
    """The model the exploration views are about, as arrays (`explain.Network`): the current job's
    (its weights as they are now, mid-training too) or a saved run's. `data_spec` names the data it
    learned from (its test split is what the views compare with); `state` changes whenever what was
    fitted to the model (the hidden-space map) must be fitted again: a new job, an epoch's end, another
    run."""

    network: Network
    title: str
    data_spec: str | None
    state: tuple


@dataclasses.dataclass(frozen=True)
class TimelineInFocus:
    """What the views over time are about: the timeline of the current job or of a saved run (None
    with `missing` saying why: a run saved before timelines were recorded, a job not started yet),
    the run's title, data source and activation, and `state`, which changes with every new record."""

    timeline: Timeline | None
    title: str
    data_spec: str | None
    activation: str
    state: tuple
    missing: str | None = None


class JobManager:
    """Starts jobs one at a time and remembers the last one, for every tab of the server."""

    def __init__(self, runs_dir: str | Path | None = None, keep_queue: bool = True) -> None:
        self.runs_dir = runs_root(runs_dir)
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._job_serial = 0
        # Sweeps wait here; with `keep_queue` (the server's) the queue lives in the runs folder.
        self.queue = RunQueue(self.runs_dir / QUEUE_FILE if keep_queue else None)
        self._queue_worker: threading.Thread | None = None
        self._queue_item: QueueItem | None = None  # the queued run being trained now
        self._cancelled: set[str] = set()
        if keep_queue:
            self._unstarted_after_restart()
        # One byte budget for everything loaded on demand (full MNIST ~55 MB, a saved run's
        # snapshots up to hundreds of MB, a model ~4 bytes a parameter): oldest out first.
        self._cache = ByteBudgetCache(cache_bytes())

    def active(self) -> bool:
        """Whether a job is loading, training, paused, stopping or evaluating."""
        return self._job is not None and self._job.status.active

    @property
    def job(self) -> TrainingJob | None:
        """The current or most recent job (None before the first Start)."""
        return self._job

    def start(self, config: TrainConfig, data_spec: str | None = None,
              pace: float | None = None) -> TrainingJob:
        """Start a job for `config` (at `pace` samples/s in slow motion; None: full speed);
        JobBusyError while another one is active."""
        with self._lock:
            return self._start_locked(config, data_spec, pace)

    def _start_locked(self, config: TrainConfig, data_spec: str | None, pace: float | None,
                      on_run_dir: Callable[[Path], None] | None = None) -> TrainingJob:
        # Imported here: TensorFlow loads on the first Start, not on page load.
        from mlpdash.training import TrainingJob

        if self.active():
            raise JobBusyError("a training run is already in progress: stop it or wait for it to end")
        previous = self._job
        spare = previous.release_model() if previous is not None else None
        job = TrainingJob(config, data_spec, self.runs_dir, loader=self.load_data, spare=spare, pace=pace,
                          on_run_dir=on_run_dir)
        job.start()  # ShuttingDownError leaves the previous job in place
        self._job_serial += 1  # names the job in caches: an id() may be reused once it is freed
        self._job = job
        return job

    # --- the queue of sweeps -----------------------------------------------------------------------

    def enqueue(self, configs: list[TrainConfig], data_spec: str | None, name: str,
                swept: list[str]) -> Sweep:
        """Queue a sweep's runs; they train one after another once no other job is active."""
        sweep = self.queue.add(configs, data_spec, name, swept)
        self._drain()
        return sweep

    def resume_sweep(self, sweep: str) -> int:
        """Queue again the runs of a sweep that a server restart left unstarted."""
        count = self.queue.resume(sweep)
        self._drain()
        return count

    def cancel_queued(self, item_ids: list[str]) -> None:
        """Cancel queued runs; one being trained is stopped (it is saved, as a stopped run is)."""
        for item in self.queue.cancel(item_ids):
            with self._lock:
                current, job = self._queue_item, self._job
            if current is not None and current.item == item.item and job is not None:
                self._cancelled.add(item.item)
                job.stop()

    def _unstarted_after_restart(self) -> None:
        """A queued run whose process died after making its folder but before its first epoch left
        an empty "interrupted after 0 epochs" run: it goes to the trash (restorable for a day) and
        the run is "not run", so that Resume trains it."""
        for item in self.queue.items():
            if item.state != "interrupted" or not item.run:
                continue
            info = read_info(self.runs_dir / item.run)
            # Empty for sure: no epoch in its metrics (a damaged metrics file reads as none) and no
            # weights, which only an epoch's end writes.
            if info.status != "interrupted" or info.epochs_completed or info.has_model:
                continue
            try:
                trash_run(info.path)
            except (RunError, OSError) as err:
                LOG.warning("could not move the empty run %s to the trash: %s", info.path, err)
                continue
            self.queue.update(item.item, state="not run", run=None)

    def queue_item(self) -> QueueItem | None:
        """The queued run being trained now, if the current job is one."""
        return self._queue_item

    def queue_running(self) -> bool:
        """Whether queued runs are training or waiting to."""
        return self._queue_worker is not None

    def _drain(self) -> None:
        with self._lock:
            if self._queue_worker is None:
                self._queue_worker = threading.Thread(target=self._work_queue, name="mlpdash-queue", daemon=True)
                self._queue_worker.start()

    def _work_queue(self) -> None:
        """Train the queue's runs one at a time; a job started by hand meanwhile is waited for. Whatever
        happens, the worker ends cleanly: a later sweep starts a new one, and no run stays "running"."""
        try:
            self._drain_queue()
        except BaseException as err:
            LOG.exception("the sweep queue's worker failed")
            item = self._queue_item
            if item is not None:
                self.queue.update(item.item, state="failed", error=f"the queue's worker failed: {err}"[:500])
            with self._lock:
                self._queue_worker, self._queue_item = None, None

    def _drain_queue(self) -> None:
        from mlpdash.training import ShuttingDownError

        while True:
            with self._lock:
                busy = self._job if self.active() else None
                item = None if busy else self.queue.take_next()
                if busy is None and item is None:
                    self._queue_worker = None  # under the lock: an enqueue now starts a new worker
                    return
                if item is not None:
                    try:
                        job = self._start_locked(item.config, item.data, None,
                                                 on_run_dir=functools.partial(self._record_run, item))
                    except ShuttingDownError:
                        self.queue.update(item.item, state="queued")  # read back as "not run"
                        self._queue_worker = None
                        return
                    except Exception as err:  # a run that cannot start must not stop the queue
                        self.queue.update(item.item, state="failed", error=str(err)[:500])
                        continue
                    self._queue_item = item
            if busy is not None:
                busy.join(1.0)
                continue
            self._follow(item, job)

    def _record_run(self, item: QueueItem, path: Path) -> None:
        """The queued run's folder exists: record it at once (a restart then finds it) and name it."""
        self.queue.update(item.item, run=path.name)
        _name_sweep_run(path, item)

    def _follow(self, item: QueueItem, job: TrainingJob) -> None:
        """Wait for the queued run to end and record how it ended."""
        job.join()
        snap = job.snapshot()
        state = snap.status.value if snap.status.ended else "failed"
        if item.item in self._cancelled:
            self._cancelled.discard(item.item)
            if snap.status == Status.STOPPED:  # a cancel that came after the run had finished is no stop
                state = "cancelled"
        self.queue.update(item.item, state=state, error=snap.error,
                          run=Path(snap.run_dir).name if snap.run_dir else None)
        with self._lock:
            self._queue_item = None

    def load_data(self, spec: str | None) -> MnistSplits:
        """`load_mnist`, kept per resolved source so that a second run starts at once."""
        source, reason = resolve_source(spec)
        cached = self._cache.get(("data", source), lambda: load_mnist(source), _splits_bytes)
        # The arrays are shared; the reason is this request's own (auto's "offline — ..." and so on).
        return dataclasses.replace(cached, reason=reason)

    def runs(self) -> list[RunInfo]:
        return list_runs(self.runs_dir)

    def predictor_for_run(self, path: Path) -> Predictor:
        """A Predictor on a saved run's model, loaded once per run folder."""
        from mlpdash.predict import Predictor

        path = Path(path)
        return self._cache.get(("model", path, _stamp(path)), lambda: Predictor(load_run_model(path)),
                               lambda p: 4 * sum(int(np.prod(w.shape)) for w in p.model.weights))

    def has_model(self) -> bool:
        """Whether a drawing can be answered (now, or once the job has built its model), decided
        without loading TensorFlow."""
        if self.active():
            return True
        return self._live_predictor() is not None or self._newest_model_run() is not None

    def answering_predictor(self) -> Predictor | None:
        """The current job's model (live while it trains), else the newest saved run's, else None."""
        live = self._live_predictor()
        if live is not None:
            return live
        newest = self._newest_model_run()
        return self.predictor_for_run(newest.path) if newest else None

    def model_in_focus(self, picked: Path | None = None) -> ModelInFocus | None:
        """The run picked under Runs, else the current job's model, else the newest saved run's;
        None when there is none (or the current job has not built its model yet)."""
        if picked is not None:
            return self._saved_focus(Path(picked))
        job, live = self._job, self._live_predictor()
        if job is not None and live is not None:
            from mlpdash.model import network_weights  # TensorFlow, already loaded by the job

            snap = job.snapshot()
            if snap.status.active:
                title = f"The current run, live (epoch {max(snap.epoch, 1)}, batch {snap.batch})"
            else:
                title = f"The current run ({snap.epochs_completed} epochs)"
            return ModelInFocus(Network.from_weights(network_weights(live.model), job.config.activation),
                                title, job.data_spec or snap.data_source,
                                ("job", self._job_serial, snap.epochs_completed))
        newest = self._newest_model_run()
        return self._saved_focus(newest.path) if newest else None

    def timeline_in_focus(self, picked: Path | None = None) -> TimelineInFocus | None:
        """The timeline of the run picked under Runs, else of the current job, else of the newest
        saved run; None when there is no run at all."""
        job, snap, path = self._shown_run(picked)
        if snap is not None:
            title = "The current run" + (", live" if snap.status.active else "")
            epochs = [] if snap.timeline is None else snap.timeline.epochs
            # The source as resolved when it loaded ("auto" could resolve to another one now, whose
            # validation digits come in another order).
            return TimelineInFocus(snap.timeline, title, snap.data_source or job.data_spec, job.config.activation,
                                   ("job", self._job_serial, tuple(epochs)),
                                   None if snap.timeline else "the run has not recorded its start yet")
        return None if path is None else self._saved_timeline(path)

    def test_answers(self, picked: Path | None = None) -> tuple[Answers | None, str, str | None, str | None]:
        """(the final model's answers on the test split, the run's title, its data source, why there
        are none) for the run picked, else the current job, else the newest saved run."""
        job, snap, path = self._shown_run(picked)
        if snap is not None:
            spec = snap.data_source or job.data_spec
            if snap.report is None:
                return None, "The current run", spec, "a run is tested on the test split when it ends"
            report = snap.report
            return Answers("test", report.labels, report.predictions, report.confidences), "The current run", spec, None
        if path is None:
            return None, "", None, "no run yet"
        info = read_info(path)
        title = f"Saved run {info.run_id}"
        arrays = self._cache.get(("test answers", path, _stamp(path)), lambda: read_test_predictions(path) or {},
                                 lambda a: sum(v.nbytes for v in a.values()))
        if not arrays:
            why = "this run's test answers were not saved" if info.summary else \
                f"this run has not been tested ({info.label})"
            return None, title, info.data_source, why
        return Answers("test", arrays["labels"], arrays["predictions"], arrays["confidences"]), title, \
            info.data_source, None

    def _shown_run(self, picked: Path | None) -> tuple[TrainingJob | None, Snapshot | None, Path | None]:
        """What the views over a run show: (the current job and its snapshot, None) when nothing is
        picked and the job has a run folder; else (None, None, the picked run, or the newest saved
        one with a model, as the other views fall back on; None when there is none)."""
        job = self._job
        if picked is None and job is not None:
            snap = job.snapshot()
            if snap.run_dir is not None:
                return job, snap, None
        if picked is None:
            newest = self._newest_model_run()
            return None, None, None if newest is None else newest.path
        return None, None, Path(picked)

    def validation_answers(self, shown: TimelineInFocus, epoch: int) -> Answers:
        """The answers of the model kept at `epoch` (or the newest kept before it) on the validation
        split of the run's data; RunError when they do not fit that split."""
        assert shown.timeline is not None
        record = shown.timeline.record(epoch)
        labels = self.load_data(shown.data_spec).y_val
        if len(labels) != len(record.predictions):
            raise RunError(f"the run kept answers for {len(record.predictions):,} validation digits, but "
                           f"{shown.data_spec} has {len(labels):,}")
        kept = np.flatnonzero(shown.timeline.confusion_epochs == record.epoch)
        if kept.size and not np.array_equal(np.bincount(labels, minlength=10),
                                            shown.timeline.confusions[kept[0]].sum(axis=1)):
            raise RunError(f"the run's validation digits are not those of {shown.data_spec} (other counts "
                           "per digit): it was trained on other data")
        return Answers("validation", np.asarray(labels, np.int64), record.predictions.astype(np.int64),
                       record.confidences.astype(np.float32))

    def _saved_timeline(self, path: Path) -> TimelineInFocus:
        info = read_info(path)
        if info.config is None:
            raise RunError(info.error or f"{path}: damaged run folder")
        stamp = _stamp(path)
        timeline = self._cache.get(("timeline", path, stamp), lambda: read_timeline(path) or NO_TIMELINE,
                                   lambda t: 0 if t is NO_TIMELINE else sum(r.nbytes for r in t.records))
        missing = None
        if timeline is NO_TIMELINE:
            timeline = None
            if (path / TIMELINE_DIR).is_dir():
                missing = "the run has not recorded its start yet (or stopped before it)"
            else:
                missing = ("this run was saved before mlpdash recorded every layer over time; its first "
                           "layer's weights are under First-layer weights")
        return TimelineInFocus(timeline, f"Saved run {info.run_id}", info.data_source, info.config.activation,
                               ("run", str(path), stamp), missing)

    def hidden_map(self, model: ModelInFocus) -> HiddenMap:
        """The hidden-space map of `model` over its data's test split, fitted once per model state."""
        from mlpdash.model import to_model_input

        def fit() -> HiddenMap:
            data = self.load_data(model.data_spec)
            return fit_map(model.network, to_model_input(data.x_test), data.y_test)

        return self._cache.get(("map", model.state, model.data_spec), fit,
                               lambda m: m.features.nbytes + m.points.nbytes)

    def _saved_focus(self, path: Path) -> ModelInFocus:
        from mlpdash.model import network_weights

        info = read_info(path)
        if info.config is None or not info.can_answer:
            raise RunError(f"{info.run_id} has no model to explain ({info.label})")
        model = self.predictor_for_run(path).model
        return ModelInFocus(Network.from_weights(network_weights(model), info.config.activation),
                            f"Saved run {info.run_id}", info.data_source, ("run", str(path), _stamp(path)))

    def saved_run(self, path: Path) -> SavedRun:
        """A run folder read back once (its weight snapshots are megabytes); RunError if damaged."""
        path = Path(path)
        return self._cache.get(("run", path, _stamp(path)), lambda: load_run(path), _run_bytes)

    def evaluate_run(self, path: Path, data_spec: str | None = None) -> RunInfo:
        """Test an interrupted run's model and record the result in its folder (its summary), so
        that it lists with a test accuracy; RunError when it cannot be."""
        from mlpdash.training import evaluate_saved_run  # TensorFlow

        info = read_info(Path(path))
        if info.status != "interrupted":
            raise RunError(f"{info.run_id} is {info.label}: only an interrupted run needs evaluating")
        data = self.load_data(data_spec or info.data_source)
        evaluate_saved_run(info, data)
        return read_info(info.path)

    def run_in_focus(self, picked: Path | None = None) -> RunInfo | None:
        """The saved run that the model in focus is: the one picked, else the current job's once it
        has ended, else the newest with a model; None when there is none (or the job still trains)."""
        if picked is not None:
            return read_info(Path(picked))
        job = self._job
        if job is not None:
            snap = job.snapshot()
            if snap.status.active:
                return None
            # As the model in focus: a failed or diverged job, or one without a folder (stopped before
            # it trained, or its run deleted since), gives way to the newest saved model.
            if (snap.status not in (Status.FAILED, Status.DIVERGED) and snap.run_dir is not None
                    and Path(snap.run_dir).is_dir()):
                return read_info(Path(snap.run_dir))
        return self._newest_model_run()

    def _live_predictor(self) -> Predictor | None:
        job = self._job
        if job is None or job.status in (Status.FAILED, Status.DIVERGED):
            return None
        if job.status == Status.STOPPED and job.snapshot().run_dir is None:
            return None  # stopped before it trained: nothing worth asking
        return job.predictor

    def _newest_model_run(self) -> RunInfo | None:
        return next((run for run in self.runs() if run.can_answer), None)


class ByteBudgetCache:
    """Values loaded on demand, dropped oldest first once their bytes exceed a budget (the newest
    entry always stays, so a single value larger than the budget still works). Thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[Any, int]] = {}

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Any, load: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        """The cached value of `key`, else `load()` (outside the lock: loads take seconds)."""
        with self._lock:
            if key in self._entries:
                return self._entries[key][0]
        value = load()
        nbytes = int(size(value))
        with self._lock:
            self._entries[key] = (value, nbytes)
            total = sum(n for _, n in self._entries.values())
            while total > self.budget and len(self._entries) > 1:
                _, dropped = self._entries.pop(next(iter(self._entries)))  # insertion order: oldest
                total -= dropped
        return value


def _name_sweep_run(path: Path, item: QueueItem) -> None:
    """A sweep's runs are named for what they vary ("learning_rate 0.01, hidden 128"), so that the
    comparison's legends say it; a user may rename them."""
    try:
        set_notes(path, item.label[:MAX_NAME_CHARS], f"A run of {item.sweep_name}")
    except (OSError, ValueError):
        pass  # a name is a convenience: the run trains on without one


def _splits_bytes(data: MnistSplits) -> int:
    return sum(getattr(data, key).nbytes for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))


def _run_bytes(run: SavedRun) -> int:
    return 0 if run.kernels is None else int(run.kernels.nbytes)


def _stamp(path: Path) -> float:
    """A run folder's metrics change while it trains and its summary when it is evaluated: key
    cached reads by them, so a reader never keeps an outdated copy."""
    latest = 0.0
    for name in ("metrics.jsonl", "summary.json", "model.weights.npz", f"{TIMELINE_DIR}/{CONFUSIONS_FILE}"):
        try:
            latest = max(latest, (path / name).stat().st_mtime)
        except OSError:
            pass
    return latest
