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


@dataclass(frozen=True, eq=False)  # arrays: compared by identity, never element by element
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


@dataclass(frozen=True, eq=False)
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


# --- what the views over time compute ---------------------------------------------------------------

# The distribution of a layer's weights, as TensorBoard's *distributions* draw it: bands between
# these percentiles, and the median.
BAND_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
WEIGHTS, SINCE_START, SINCE_PREVIOUS = "weights", "since step 0", "since the previous epoch"


def kernel(record: EpochRecord, layer: int = 0) -> np.ndarray:
    """Layer `layer`'s kernel [inputs, units] (0: the first, whose inputs are the 784 pixels), float32."""
    return np.asarray(record.weights[2 * layer], np.float32)


def first_layer_view(timeline: Timeline, epoch: int, mode: str = WEIGHTS) -> np.ndarray:
    """The first layer at `epoch` as the grid shows it: its weights, or their change since step 0 or
    since the kept record before (no change for the first one)."""
    records = timeline.records
    record = timeline.record(epoch)
    now = kernel(record)
    if mode == WEIGHTS:
        return now
    if mode == SINCE_START:
        return now - kernel(records[0])
    if mode == SINCE_PREVIOUS:
        index = next(i for i, r in enumerate(records) if r is record)
        return now - kernel(records[max(index - 1, 0)])
    raise ValueError(f"unknown view of the weights {mode!r}: one of {WEIGHTS!r}, {SINCE_START!r}, {SINCE_PREVIOUS!r}")


def layer_bands(timeline: Timeline, layer: int) -> np.ndarray:
    """[R, len(BAND_PERCENTILES)]: the percentiles of the layer's weights in each kept record."""
    return np.stack([np.percentile(kernel(r, layer), BAND_PERCENTILES) for r in timeline.records])


def unit_over_time(timeline: Timeline, unit: int, mode: str = WEIGHTS) -> np.ndarray:
    """[R, 784]: first-layer unit `unit` in each kept record, as `first_layer_view` shows the layer."""
    units = timeline.records[0].weights[0].shape[1]
    if not 0 <= unit < units:
        raise ValueError(f"unit {unit} is out of range: the first layer has {units} units")
    tiles = np.stack([np.asarray(r.weights[0][:, unit], np.float32) for r in timeline.records])
    if mode == WEIGHTS:
        return tiles
    if mode == SINCE_START:
        return tiles - tiles[0]
    if mode == SINCE_PREVIOUS:
        return tiles - np.concatenate([tiles[:1], tiles[:-1]])
    raise ValueError(f"unknown view of the weights {mode!r}: one of {WEIGHTS!r}, {SINCE_START!r}, {SINCE_PREVIOUS!r}")


def answers_over_time(timeline: Timeline, image: np.ndarray, activation: str = "relu") -> np.ndarray:
    """[R, 10]: the probabilities each kept record's model gives one 28x28 image in [0, 1]."""
    image = np.asarray(image, np.float32).reshape(1, 28, 28)
    logits = np.concatenate([r.network(activation).logits(image) for r in timeline.records])
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
