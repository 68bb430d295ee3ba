"""What the page shows of a live job or a saved run, as plain values (no Streamlit here).

A `RunView` is the same whether it comes from a job's snapshot while it trains or from a run folder
read back from disk, so every panel draws both the same way. The status line is built here too, so
that its wording is tested without a browser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.pace import Pace
from mlpdash.progress import TRAINING, Snapshot, Status
from mlpdash.runs import SavedRun


# At a batch pace (a batch a second) the class watches batches, not epochs: over a run's whole length
# the first minute's curve would be a few pixels wide. The charts span the batches so far and half as
# many again, at least this many, so the curve fills half the width or more and visibly grows.
FITTED_BATCHES = 30


@dataclass(frozen=True)
class RunView:
    """One run's figures, wherever they come from."""

    title: str
    config: TrainConfig
    history: tuple[dict[str, float], ...]
    batch_loss: np.ndarray | None  # smoothed, per batch (every k-th of a long run); None for saved runs
    batch_steps: np.ndarray | None  # the batch (over the run, from 1) of each batch_loss point
    batches_per_epoch: int
    confusion: np.ndarray | None  # int [10, 10] once tested
    per_class_accuracy: list[float | None] | None
    kernel: np.ndarray | None  # the newest first-layer kernel [784, units], float16 or float32
    initial_kernel: np.ndarray | None  # the same layer before training
    kernel_epoch: int | None
    test_accuracy: float | None
    test_loss: float | None
    run_dir: Path | None
    live: bool = False  # the current job's, from its snapshot (its weights may move); else a saved run's
    # How the run ended ("finished", "stopped", "diverged", "failed", "interrupted"); None while it
    # trains (or is a saved run still being written).
    ended: str | None = None
    pace: Pace | None = None  # the current job's slow motion, while it trains


def view_of_snapshot(snap: Snapshot) -> RunView:
    report = snap.report
    per_class = None
    if report is not None:
        per_class = [None if np.isnan(a) else float(a) for a in report.per_class_accuracy]
    return RunView(
        title="Current run",
        config=snap.config,
        history=snap.history,
        batch_loss=snap.batch_loss_smoothed,
        batch_steps=snap.batch_steps,
        batches_per_epoch=snap.batches_per_epoch,
        confusion=None if report is None else report.confusion,
        per_class_accuracy=per_class,
        # float16 as the job keeps them (converting 2 x 2 MB every second for the charts' sake would
        # cost the training thread): the weights panel converts what it draws.
        kernel=snap.kernels[-1] if snap.kernels else None,
        initial_kernel=snap.kernels[0] if snap.kernels else None,
        kernel_epoch=snap.kernel_epochs[-1] if snap.kernel_epochs else None,
        test_accuracy=None if report is None else report.accuracy,
        test_loss=None if report is None else report.loss,
        run_dir=snap.run_dir,
        live=True,
        ended=snap.status.value if snap.status.ended else None,
        pace=snap.pace,
    )


def view_of_run(run: SavedRun) -> RunView:
    summary = run.info.summary or {}
    confusion = summary.get("confusion_matrix")
    return RunView(
        title=f"Run {run.info.run_id}",
        config=run.info.config,
        history=tuple(run.metrics),
        batch_loss=None,
        batch_steps=None,
        batches_per_epoch=0,
        confusion=None if confusion is None else np.asarray(confusion, dtype=np.int64),
        per_class_accuracy=summary.get("per_class_accuracy"),
        kernel=None if run.kernels is None else run.kernels[-1],
        initial_kernel=None if run.kernels is None else run.kernels[0],
        kernel_epoch=None if run.kernel_epochs is None else int(run.kernel_epochs[-1]),
        test_accuracy=summary.get("test_accuracy"),
        test_loss=summary.get("test_loss"),
        run_dir=run.path,
        ended=None if run.info.status == "training" else run.info.status,
    )


def chart_epochs(view: RunView | None, training: bool, planned: int | None = None) -> float | None:
    """The epochs the loss and accuracy charts span, the same on both: a run in training, its whole
    planned length (held to a batch pace, the batches so far and half as many again: see
    `FITTED_BATCHES`); an ended run, what it did (its last batch, or its last finished epoch; one epoch
    when it did nothing, never a negative axis); no run yet, the sidebar's `planned` epochs."""
    if view is None:
        return planned
    if training:
        return _fitted(view) or view.config.epochs
    done = float(len(view.history) and max(int(row["epoch"]) for row in view.history))
    if view.batch_steps is not None and len(view.batch_steps) and view.batches_per_epoch > 0:
        done = max(done, float(view.batch_steps[-1]) / view.batches_per_epoch)
    return done if done > 0 else 1


def _fitted(view: RunView) -> float | None:
    """For a run held to a batch pace, the epochs that show its batches moving; None otherwise."""
    if view.pace is None or view.pace.unit != "batch" or view.batches_per_epoch <= 0:
        return None
    done = int(view.batch_steps[-1]) if view.batch_steps is not None and len(view.batch_steps) else 0
    window = max(FITTED_BATCHES, math.ceil(1.5 * done))
    return min(window / view.batches_per_epoch, float(view.config.epochs))


def stopped_mid_epoch(view: RunView) -> str | None:
    """For a run stopped inside an epoch (the current job's: a saved run keeps no batch count), what
    its result is of: 'tested as it stopped, 8 batches into epoch 1'; else None."""
    if view.ended != "stopped" or view.batch_steps is None or not len(view.batch_steps) \
            or view.batches_per_epoch <= 0:
        return None
    finished = len(view.history) and max(int(row["epoch"]) for row in view.history)
    into = int(view.batch_steps[-1]) - finished * view.batches_per_epoch
    if into <= 0:
        return None
    return f"tested as it stopped, {into} batch{'' if into == 1 else 'es'} into epoch {finished + 1}"


# What the charts of an ended run with nothing to draw say (instead of "waiting for…").
_NOTHING_DONE = {"stopped": "stopped", "interrupted": "interrupted", "diverged": "diverged", "failed": "failed"}


def chart_notes(view: RunView | None, training: bool) -> tuple[str | None, str | None]:
    """(the loss chart's note, the accuracy chart's) when they have nothing to draw and the run has
    ended, saying what happened; None: the charts' own "waiting for…" (a run still to come)."""
    if view is None or training or view.ended is None:
        return None, None
    how = _NOTHING_DONE.get(view.ended, view.ended)
    epoch = f"{how} before its first epoch finished: no epoch to show"
    if view.batch_loss is None:  # a saved run keeps no per-batch loss
        return epoch, epoch
    return f"{how} before its first batch finished", epoch


def page_count(count: int, per_page: int) -> int:
    """Pages of `per_page` that `count` items fill (one at least): the weights grid, the gallery of
    drawings."""
    return max(1, -(-count // per_page))


def status_line(snap: Snapshot | None, other_run_shown: bool = False) -> str:
    """One line that names the state: 'Training — epoch 2/10, batch 120/391 · …', 'Finished — …'; a
    fine-tune's says so: 'Fine-tuning — epoch 2/5, batch 3/40 · …', 'Finished fine-tuning — …'.
    With `other_run_shown` (a saved run is picked), a line with the job's result says it is the
    current job's, so that its numbers are not read as the shown run's."""
    line = _state_line(snap)
    if other_run_shown and snap is not None and (snap.status.ended or snap.report is not None):
        return f"Current job: {line}"
    return line


def _state_line(snap: Snapshot | None) -> str:
    if snap is None or snap.status == Status.IDLE:
        return "Idle — choose a model in the sidebar and press Start training"
    epochs = snap.config.epochs
    where = f"epoch {max(snap.epoch, 1)}/{epochs}, batch {snap.batch}/{snap.batches_per_epoch}"
    # Training's lines name the state alone; another task's name it after the state ("Paused fine-tuning").
    training = snap.task == TRAINING
    task = "" if training else f" {snap.task.lower()}"
    if snap.status == Status.LOADING_DATA:
        return "Loading data…" if training else f"Loading data for{task}…"
    if snap.status == Status.TRAINING and snap.finishing:
        return (f"Finishing{task} — last batch done, validating · epoch {max(snap.epoch, 1)}/{epochs}"
                f"{_left(snap)}")
    if snap.status == Status.TRAINING:
        return f"{snap.task} — {where}{_pace(snap)}"
    if snap.status == Status.PAUSED and not snap.holding:
        # The batch in flight when Pause came still finishes: the counter has one more step to go.
        if snap.batch >= snap.batches_per_epoch:
            return f"Pausing{task} — after the validation of epoch {max(snap.epoch, 1)}"
        return f"Pausing{task} — finishing batch {snap.batch + 1} of epoch {max(snap.epoch, 1)}"
    if snap.status == Status.PAUSED:
        return f"Paused{task} — {where}"
    if snap.status == Status.STOPPING:
        return f"Stopping{task} — finishing batch {snap.batch} of epoch {max(snap.epoch, 1)}"
    if snap.status == Status.EVALUATING and snap.stopped_early:
        if snap.report is None:
            return f"Stopping{task} — testing the model as it stopped…"
        return f"{_stopped(snap, task)} · saving the run…"
    if snap.status == Status.EVALUATING:
        return ("Evaluating on the test set and saving the run…" if training else (
            f"{snap.task} done — evaluating on the test set and saving the run…")) + _left(snap)
    if snap.status == Status.FAILED:
        return f"Failed: {snap.error}" if training else f"{snap.task} failed: {snap.error}"
    if snap.status == Status.DIVERGED:
        return snap.error or "Diverged — lower the learning rate"
    if snap.status == Status.STOPPED and snap.report is None:
        if not training:  # a fine-tune keeps nothing stopped before its first epoch had finished
            return f"{snap.task} stopped before its first epoch had finished — nothing was saved"
        return "Stopped before training began — nothing was trained or saved"
    if snap.status == Status.STOPPED:
        return _stopped(snap, task)
    return f"Finished{task} — {_result(snap)}"


def _stopped(snap: Snapshot, task: str) -> str:
    """Where a stopped run stopped and what its model, tested as it stopped, scored: 'Stopped after 2
    of 10 epochs — …' at an epoch's end, else 'Stopped in epoch 2 of 10, at batch 94/469 (1 epoch
    finished) — …', so that a result never sits beside a count of no epochs."""
    epochs, done = snap.config.epochs, snap.epochs_completed
    epoch = max(snap.epoch, 1)
    if done and epoch <= done:
        where = f"after {done} of {epochs} epochs"
    elif snap.batches_per_epoch and snap.batch >= snap.batches_per_epoch:
        where = f"at the end of epoch {epoch} of {epochs}, before its validation"
    else:
        where = f"in epoch {epoch} of {epochs}, at batch {snap.batch}/{snap.batches_per_epoch}"
    if done and epoch <= done:
        return f"Stopped{task} {where} — {_result(snap)}"
    where += f" ({done} epoch{'' if done == 1 else 's'} finished)" if done else " (no epoch finished)"
    return f"Stopped{task} {where} — the model as it stopped: {_result(snap)}"


def _pace(snap: Snapshot) -> str:
    speed = f" · {snap.samples_per_second:,.0f} samples/s" if snap.samples_per_second else ""
    return speed + _left(snap)


def _left(snap: Snapshot) -> str:
    """' · 35 s left' (validation, testing and saving included), ' · almost done' once the estimate
    has run out; '' with no estimate."""
    left = snap.eta_seconds
    if left is None:
        return ""
    return " · almost done" if left < 0.5 else f" · {format_duration(left)} left"


def _result(snap: Snapshot) -> str:
    report = snap.report
    if report is None:
        return "no test result"
    return f"test accuracy {report.accuracy:.4f}, test loss {report.loss:.4f}"


def format_duration(seconds: float) -> str:
    """'45 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
