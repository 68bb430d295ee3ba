"""Weights over time: what a run keeps of its model at step 0 and at the end of every epoch.

Each `EpochRecord` holds every Dense layer's kernel and bias (float16, or float32 where a weight is
beyond float16's range) and the validation split's answers at that point (predicted digit and its
probability), from which the epoch's confusion matrix and per-class accuracy follow. Records are
thinned as a run grows (every other one dropped, the first and the newest always kept) within a count
and a byte budget; the confusion matrices, 100 numbers an epoch, are kept for every epoch.

The records are enough to rebuild the model of any kept epoch without Keras: `EpochRecord.network()`
is an `explain.Network`, whose forward pass answers for any input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpdash.evaluate import confusion_matrix
from mlpdash.explain import Network

NUM_CLASSES = 10
FLOAT16_MAX = float(np.finfo(np.float16).max)
# Records kept at most; beyond it (or the byte budget) every other one is dropped. 32 records of the
# default model take 58 MB.
MAX_RECORDS = 32


def compact(values: np.ndarray) -> np.ndarray:
    """float16 halves the bytes, but turns values beyond ±65504 into inf: keep those in float32."""
    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    if finite.size and np.abs(finite).max() > FLOAT16_MAX:
        return values.astype(np.float32)
    return values.astype(np.float16)


@dataclass(frozen=True)
class EpochRecord:
    """The model after `epoch` epochs (0: as initialised) and its answers on the validation split."""

    epoch: int
    weights: tuple[np.ndarray, ...]  # kernel, bias, kernel, bias, ... as stored (float16 mostly)
    predictions: np.ndarray  # uint8 [N]: the digit answered for each validation digit
    confidences: np.ndarray  # float16 [N]: the probability of that answer

    @classmethod
    def of(cls, epoch: int, weights: Sequence[np.ndarray], predictions: np.ndarray,
           confidences: np.ndarray) -> EpochRecord:
        """A record from the model's float32 weights and its validation answers, compacted."""
        return cls(int(epoch), tuple(compact(w) for w in weights), np.asarray(predictions, np.uint8),
                   np.asarray(confidences, np.float16))

    @property
    def nbytes(self) -> int:
        return sum(w.nbytes for w in self.weights) + self.predictions.nbytes + self.confidences.nbytes

    def network(self, activation: str = "relu") -> Network:
        """This epoch's model, for our own forward pass (float32 copies of the stored weights)."""
        return Network.from_weights([np.asarray(w, np.float32) for w in self.weights], activation)

    def confusion(self, labels: np.ndarray) -> np.ndarray:
        """Counts [true, predicted] over the validation split, whose `labels` these answers are for."""
        return confusion_matrix(labels, self.predictions)


@dataclass(frozen=True)
class Timeline:
    """What a run kept over time: the thinned records, oldest first, and the validation confusion
    matrix of every epoch (`confusion_epochs[i]` is the epoch of `confusions[i]`)."""

    records: tuple[EpochRecord, ...]
    confusion_epochs: np.ndarray  # int64 [E]
    confusions: np.ndarray  # int64 [E, 10, 10]

    @property
    def epochs(self) -> list[int]:
        """The epochs whose model is kept (0: as initialised)."""
        return [r.epoch for r in self.records]

    def record(self, epoch: int) -> EpochRecord:
        """The kept record of `epoch`, or the newest one before it (a thinned run lacks some)."""
        kept = [r for r in self.records if r.epoch <= epoch]
        if not kept:
            raise KeyError(f"no record at or before epoch {epoch}")
        return kept[-1]

    def confusion(self, epoch: int) -> np.ndarray:
        where = np.flatnonzero(self.confusion_epochs == epoch)
        if not where.size:
            raise KeyError(f"no confusion matrix for epoch {epoch}")
        return self.confusions[where[0]]

    def per_class_accuracy(self) -> np.ndarray:
        """float [E, 10]: each epoch's validation accuracy per digit, in `confusion_epochs` order."""
        return np.stack([per_class_accuracy(c) for c in self.confusions]) if len(self.confusions) else \
            np.zeros((0, NUM_CLASSES))


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Each digit's share answered right (NaN for a digit with no examples)."""
    confusion = np.asarray(confusion, np.float64)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def thinned(sizes: Sequence[int], max_count: int, budget: int) -> list[int]:
    """Indices to keep of items with these byte `sizes` (oldest first): every other one is dropped,
    never the first or the newest, while there are more than `max_count` or more than `budget`
    bytes (two always stay, whatever their size)."""
    keep = list(range(len(sizes)))
    while len(keep) > 2 and (len(keep) > max_count or sum(sizes[i] for i in keep) > budget):
        keep = [keep[0], *keep[2:-1:2], keep[-1]]
    return keep
