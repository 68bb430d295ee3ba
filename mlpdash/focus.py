"""Which run, model and data every view is about: decided here, by one rule, without Streamlit.

The rule: the run picked under Runs; else the current job, once it is worth showing (it is loading
or training, or it made a run folder that is still there); else the newest saved run that can answer
drawings. The charts, the result, the drawing's answer, the explanation, the views over time and the
mistakes all show that one run, so they never disagree. A run that cannot answer (damaged, no
weights, diverged) is shown only when it is picked or is the current job: a job that diverged stays
in focus with the curves that show why, and the drawing panel says its model cannot answer rather
than answering with another run's.

A `Focus` is made for one page run (or one CLI call) from the job manager, the store and the run
picked; it decides once and hands each view what it needs.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.explain import HiddenMap, Network
from mlpdash.jobs import JobManager
from mlpdash.mistakes import Answers
from mlpdash.progress import Snapshot, Status
from mlpdash.runs import TIMELINE_DIR, RunError, RunInfo, read_info
from mlpdash.store import Store, stamp
from mlpdash.timeline import Timeline
from mlpdash.run_view import RunView, view_of_run, view_of_snapshot

if TYPE_CHECKING:
    from mlpdash.predict import Predictor
    from mlpdash.training import TrainingJob


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


@dataclasses.dataclass(frozen=True)
class RunInFocus:
    """The one run every view is about: the current job (`job` and its `snapshot`) or a saved run
    (`path`); `picked` when the user chose it under Runs."""

    job: TrainingJob | None = None
    snapshot: Snapshot | None = None
    path: Path | None = None
    picked: bool = False
    serial: int = 0  # the job's number (JobManager.current): names its model's states in caches

    @property
    def live(self) -> bool:
        """Whether it is the current job (whose figures change while it trains)."""
        return self.job is not None


def pick(jobs: JobManager, picked: Path | None) -> RunInFocus | None:
    """The rule (see the module's docstring); None when there is no run at all."""
    if picked is not None:
        return RunInFocus(path=Path(picked), picked=True)
    job, serial = jobs.current()
    if job is not None:
        snap = job.snapshot()
        if snap.status.active or (snap.run_dir is not None and Path(snap.run_dir).is_dir()):
            return RunInFocus(job=job, snapshot=snap, serial=serial)
    newest = next((run for run in jobs.runs() if run.can_answer), None)
    return None if newest is None else RunInFocus(path=newest.path)


class Focus:
    """What the views are about for one page run: the run in focus, its model, timeline and answers."""

    def __init__(self, jobs: JobManager, store: Store, picked: Path | None = None) -> None:
        self.jobs, self.store = jobs, store
        self.picked = None if picked is None else Path(picked)

    @functools.cached_property
    def run(self) -> RunInFocus | None:
        return pick(self.jobs, self.picked)

    def now(self) -> Focus:
        """The same question asked again, for a view that redraws on a timer (the job moves on)."""
        return Focus(self.jobs, self.store, self.picked)

    def changing(self) -> bool:
        """Whether the run in focus is the current job and it is still running (its model, figures
        and answers change from one look to the next)."""
        run = self.run
        return run is not None and run.live and run.snapshot.status.active

    def active(self) -> bool:
        """Whether a job is running now (whatever run is in focus): live views poll while it does."""
        return self.jobs.active()

    def data(self, spec: str | None) -> MnistSplits:
        """The splits of a data source, loaded once for the server (DataError)."""
        return self.store.data(spec)

    # --- the run's figures -------------------------------------------------------------------------

    def run_view(self) -> RunView | None:
        """The run's curves, result and first-layer weights; RunError for a picked run that cannot
        be read."""
        run = self.run
        if run is None:
            return None
        if run.live:
            return view_of_snapshot(run.snapshot)
        return view_of_run(self.store.saved_run(run.path))

    def info(self) -> RunInfo | None:
        """The saved run in focus (the current job's once it has ended and saved a model); None
        while the job trains, or when there is none."""
        run = self.run
        if run is None:
            return None
        if not run.live:
            return read_info(run.path)
        if run.snapshot.status.active or run.snapshot.status in (Status.FAILED, Status.DIVERGED):
            return None
        return read_info(Path(run.snapshot.run_dir))

    # --- the model ---------------------------------------------------------------------------------

    def has_model(self) -> bool:
        """Whether a drawing can be answered (now, or once the job has built its model), decided
        without loading TensorFlow."""
        run = self.run
        if run is None:
            return False
        if run.live:
            return run.snapshot.status.active or self._live_predictor() is not None
        return read_info(run.path).can_answer

    def missing_model(self) -> str | None:
        """Why there is no model to answer with, said as what happened to the run in focus (or to the
        current job, when it left no run folder to focus on); None when there is one, or will be once
        the job has built it, or when nothing was trained yet. Plain text, a run's id in it."""
        run = self.run
        if run is None or run.live:
            job = run.job if run is not None else self.jobs.current()[0]
            status = None if job is None else job.status
            if status is Status.DIVERGED:
                return ("The current run diverged — its weights blew up, so its model cannot answer. Lower the "
                        "learning rate (a tenth of it is a good next try) and train again, or pick a saved run "
                        "under Runs.")
            if status is Status.FAILED:
                return ("The current run failed (the status line says why), so it has no model to answer "
                        "with: train again, or pick a saved run under Runs.")
            return None
        info = read_info(run.path)
        if info.can_answer:
            return None
        what = "diverged, so its model cannot answer" if info.status == "diverged" else \
            f"has no model that can answer ({info.label})"
        return f"Run {info.run_id} {what}: pick another under Runs, or train one."

    def predictor(self) -> Predictor | None:
        """The model that answers drawings: the job's live one (None until it is built, or for a job
        that failed), else the saved run's (RunError when it cannot be loaded)."""
        run = self.run
        if run is None:
            return None
        if run.live:
            return self._live_predictor()
        return self.store.predictor(run.path)

    def model(self) -> ModelInFocus | None:
        """The model as arrays; None when there is none yet; RunError for a saved run without one."""
        run = self.run
        if run is None:
            return None
        if run.live:
            live = self._live_predictor()
            if live is None:
                return None
            from mlpdash.model import network_weights  # TensorFlow, already loaded by the job

            snap = run.snapshot
            if snap.status.active:
                title = f"The current run, live (epoch {max(snap.epoch, 1)}, batch {snap.batch})"
            else:
                title = f"The current run ({snap.epochs_completed} epochs)"
            return ModelInFocus(Network.from_weights(network_weights(live.model), run.job.config.activation),
                                title, run.job.data_spec or snap.data_source,
                                ("job", run.serial, snap.epochs_completed))
        return self._saved_model(run.path)

    def settled_model(self) -> ModelInFocus | None:
        """The model as `model()` gives it, except that a job in training gives its newest finished
        epoch (0: as initialised) instead of its weights of this instant: views that measure the whole
        test split (Units) then compute once an epoch, every part of them from the same weights, and
        change when an epoch ends. None when the job has recorded no epoch yet."""
        run = self.run
        if run is None or not run.live or not run.snapshot.status.active:
            return self.model()
        timeline = run.snapshot.timeline
        if timeline is None or not timeline.records:
            return None
        record = timeline.records[-1]
        title = ("The current run as initialised" if record.epoch == 0 else
                 f"The current run after epoch {record.epoch}") + " (it trains on: this view moves on as each epoch ends)"
        return ModelInFocus(record.network(run.job.config.activation), title,
                            run.job.data_spec or run.snapshot.data_source, ("job", run.serial, "epoch", record.epoch))

    def settled_epoch(self) -> tuple | None:
        """What `settled_model` would give, named cheaply (no weights copied): a page polls it to see
        whether an epoch ended since it drew a view."""
        run = self.run
        if run is None or not run.live or not run.snapshot.status.active:
            return None
        timeline = run.snapshot.timeline
        return ("job", run.serial, timeline.records[-1].epoch if timeline and timeline.records else None)

    def hidden_map(self, model: ModelInFocus) -> HiddenMap:
        """The hidden-space map of `model` over its data's test split, fitted once per model state."""
        return self.store.hidden_map(model.network, model.data_spec, model.state)

    def _live_predictor(self) -> Predictor | None:
        job = self.run.job
        if job.status in (Status.FAILED, Status.DIVERGED):
            return None  # its weights may be NaN or half-updated
        return job.predictor

    def _saved_model(self, path: Path) -> ModelInFocus:
        info = read_info(path)
        if info.config is None or not info.can_answer:
            raise RunError(f"{info.run_id} has no model to explain ({info.label})")
        return ModelInFocus(Network.from_weights(self.store.weights(path), info.config.activation),
                            f"Saved run {info.run_id}", info.data_source, ("run", str(path), stamp(path)))

    # --- over time and the answers ---------------------------------------------------------------

    def timeline(self) -> TimelineInFocus | None:
        """The timeline of the run in focus; None when there is no run; RunError for a damaged one."""
        run = self.run
        if run is None:
            return None
        if run.live:
            snap, job = run.snapshot, run.job
            epochs = [] if snap.timeline is None else snap.timeline.epochs
            # The source as resolved when it loaded ("auto" could resolve to another one now, whose
            # validation digits come in another order).
            return TimelineInFocus(snap.timeline, "The current run" + (", live" if snap.status.active else ""),
                                   snap.data_source or job.data_spec, job.config.activation,
                                   ("job", run.serial, tuple(epochs)),
                                   None if snap.timeline else "the run has not recorded its start yet")
        return self._saved_timeline(run.path)

    def _saved_timeline(self, path: Path) -> TimelineInFocus:
        info = read_info(path)
        if info.config is None:
            raise RunError(info.error or f"{path}: damaged run folder")
        timeline = self.store.timeline(path)
        missing = None
        if timeline is None:
            if (path / TIMELINE_DIR).is_dir():
                missing = "the run has not recorded its start yet (or stopped before it)"
            else:
                missing = ("this run was saved before mlpdash recorded every layer over time; its first "
                           "layer's weights are under First-layer weights")
        return TimelineInFocus(timeline, f"Saved run {info.run_id}", info.data_source, info.config.activation,
                               ("run", str(path), stamp(path)), missing)

    def test_answers(self) -> tuple[Answers | None, str, str | None, str | None]:
        """(the final model's answers on the test split, the run's title, its data source, why there
        are none)."""
        run = self.run
        if run is None:
            return None, "", None, "no run yet"
        if run.live:
            snap = run.snapshot
            spec = snap.data_source or run.job.data_spec
            if snap.report is None:
                return None, "The current run", spec, _untested(snap)
            report = snap.report
            return (Answers("test", report.labels, report.predictions, report.confidences), "The current run",
                    spec, None)
        info = read_info(run.path)
        title = f"Saved run {info.run_id}"
        arrays = self.store.test_predictions(run.path)
        if not arrays:
            why = "this run's test answers were not saved" if info.summary else \
                f"this run has not been tested ({info.label})"
            return None, title, info.data_source, why
        return (Answers("test", arrays["labels"], arrays["predictions"], arrays["confidences"]), title,
                info.data_source, None)

    def validation_answers(self, shown: TimelineInFocus, epoch: int) -> Answers:
        """The answers of the model kept at `epoch` (or the newest kept before it) on the validation
        split of the run's data; RunError when they do not fit that split."""
        assert shown.timeline is not None
        record = shown.timeline.record(epoch)
        labels = self.store.data(shown.data_spec).y_val
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


def _untested(snap: Snapshot) -> str:
    """Why the current run has no test answers: it has not ended yet, or how it ended without them."""
    if snap.status == Status.DIVERGED:
        return "the current run diverged: its weights blew up, so it was not tested"
    if snap.status == Status.FAILED:
        return "the current run failed before it could be tested"
    if not snap.status.active:
        return "the current run ended before it could be tested"
    return "a run is tested on the test split when it ends"
