"""What a lesson's claims are measured by: one number from a run that has ended.

Each measure reads the ended job's `Snapshot` (its epochs, its per-batch loss, its test report and how
it ended), so that `bench --lessons` on full MNIST and the unit tests on the bundled sample measure a
preset the same way, through the real training engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpdash.progress import Snapshot, Status


@dataclass(frozen=True)
class Measure:
    name: str
    what: str  # what the number is, for a table's reader
    unit: str  # how a figure is written: "percent", "points", "loss", "batches" or "epoch"
    read: Callable[[Snapshot], float]

    def format(self, value: float) -> str:
        """A figure as a sentence states it: '97.9 %', '3 points', '0.05', '12 batches', 'epoch 4'."""
        if self.unit == "percent":
            return f"{value * 100:.3g} %"
        if self.unit == "points":
            return f"{value * 100:.2g} points"
        if self.unit == "batches":
            return f"{value:.0f} batches"
        if self.unit == "epoch":
            return f"epoch {value:.0f}"
        return f"{value:.2g}"


def _test_accuracy(snap: Snapshot) -> float:
    return snap.report.accuracy if snap.report is not None else float("nan")


def _last(snap: Snapshot, key: str) -> float:
    return snap.history[-1][key] if snap.history else float("nan")


def _train_val_gap(snap: Snapshot) -> float:
    """Training accuracy less validation accuracy at the last epoch."""
    return _last(snap, "accuracy") - _last(snap, "val_accuracy")


def _loss_gap(snap: Snapshot) -> float:
    """Validation loss less training loss at the last epoch: how much worse the network does on digits
    it has not seen (dropout's training loss is measured with its units dropped, as Keras logs it)."""
    return _last(snap, "val_loss") - _last(snap, "loss")


def _val_losses(snap: Snapshot) -> np.ndarray:
    return np.array([row["val_loss"] for row in snap.history], dtype=np.float64)


def _best_val_epoch(snap: Snapshot) -> float:
    """The epoch whose validation loss is lowest (the last moment the network generalised best)."""
    losses = _val_losses(snap)
    return float(snap.history[int(np.argmin(losses))]["epoch"]) if len(losses) else float("nan")


def _val_loss_rise(snap: Snapshot) -> float:
    """How far the validation loss rose from its lowest to the last epoch's."""
    losses = _val_losses(snap)
    return float(losses[-1] - losses.min()) if len(losses) else float("nan")


def _climb_batches(snap: Snapshot) -> float:
    """For a run that diverged: the batches between its lowest loss and its end, each one of them a
    batch a class watched the loss climb; 0 for a run that did not diverge."""
    if snap.status != Status.DIVERGED or not len(snap.batch_loss):
        return 0.0
    losses = np.nan_to_num(snap.batch_loss.astype(np.float64), nan=np.inf)
    return float(len(losses) - 1 - int(np.argmin(losses)))


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("test_accuracy", "test accuracy", "percent", _test_accuracy),
    Measure("train_val_gap", "training less validation accuracy, last epoch", "points", _train_val_gap),
    Measure("loss_gap", "validation less training loss, last epoch", "loss", _loss_gap),
    Measure("best_val_epoch", "the epoch of the lowest validation loss", "epoch", _best_val_epoch),
    Measure("val_loss_rise", "validation loss, last epoch less its lowest", "loss", _val_loss_rise),
    Measure("climb_batches", "batches of a climbing loss before the run diverged", "batches", _climb_batches),
)}


def measured(claim_measure: str, snap: Snapshot, against: Snapshot | None = None) -> float:
    """A claim's figure: the measure of `snap`, or, against another run, that run's measure less this
    one's (how much lower this one is: dropout's narrower gap)."""
    read = MEASURES[claim_measure].read
    return read(snap) if against is None else read(against) - read(snap)
