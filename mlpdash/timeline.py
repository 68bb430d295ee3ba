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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mlpdash.evaluate import confusion_matrix
from mlpdash.explain import Network
from mlpdash.mnist import NUM_CLASSES

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

    @property
    def keeps_every_epoch(self) -> bool:
        """Whether every epoch's model is kept, from step 0 on (a long run keeps every other one)."""
        epochs = self.epochs
        return not epochs or epochs == list(range(epochs[-1] + 1))

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


def epoch_name(epoch: int) -> str:
    """A kept epoch as the page names it: 'step 0' (the model as initialised) or 'epoch N'."""
    return "step 0" if epoch == 0 else f"epoch {epoch}"


def epoch_when(epoch: int) -> str:
    """When a kept model is from: 'at step 0' or 'after epoch N'."""
    return "at step 0" if epoch == 0 else f"after epoch {epoch}"


def play_step(epochs: Sequence[int], current: int) -> tuple[int, bool]:
    """One step of playing through the kept `epochs` from `current`: (the epoch shown next, whether
    the play ends there, at the newest)."""
    later = [e for e in epochs if e > current]
    return (later[0] if later else current), len(later) <= 1


def common_range(views: Iterable[np.ndarray], measure: Callable[[np.ndarray], float]) -> float:
    """One colour range for several views of the weights: the largest `measure` (a robust range) of
    those that hold anything; 1.0 when none does (a change of zero, step 0's since itself)."""
    return max((measure(v) for v in views if np.any(v)), default=1.0)


def fixed_range(timeline: Timeline, mode: str, measure: Callable[[np.ndarray], float]) -> float:
    """The first layer's colour range, the same at every kept epoch (`common_range` of every epoch's
    `first_layer_view`), so that a tile changes only when its weights do."""
    return common_range((first_layer_view(timeline, e, mode) for e in timeline.epochs), measure)


def all_layer_bands(timeline: Timeline) -> list[np.ndarray]:
    """`layer_bands` of every Dense layer, the first one first and the output last."""
    return [layer_bands(timeline, layer) for layer in range(len(timeline.records[0].weights) // 2)]


def layer_names(timeline: Timeline) -> list[str]:
    """Each Dense layer with its shape: 'layer 1 (784→128)', ..., 'output (128→10)'."""
    shapes = [w.shape for w in timeline.records[0].weights[::2]]
    return [f"layer {i + 1} ({a}→{b})" if i < len(shapes) - 1 else f"output ({a}→{b})"
            for i, (a, b) in enumerate(shapes)]


def unit_norms(timeline: Timeline, unit: int) -> np.ndarray:
    """[R]: the length of first-layer unit `unit`'s weights in each kept record."""
    return np.linalg.norm(unit_over_time(timeline, unit), axis=1)


def stable_since(epochs: Sequence[int], answers: np.ndarray) -> int:
    """The first kept epoch from which the answer (one per kept epoch, `epochs` order) never changed
    again."""
    start = len(answers) - 1
    while start > 0 and answers[start - 1] == answers[-1]:
        start -= 1
    return epochs[start]


@dataclass(frozen=True)
class Learned:
    """When a model learned to read one input: its answer at the epoch asked about and that answer's
    probability, the newest kept model's answer, and the first kept epoch since which it has been
    the answer."""

    answer: int
    probability: float
    final: int
    since: int


def learned(timeline: Timeline, probabilities: np.ndarray, epoch: int) -> Learned:
    """`probabilities` ([R, 10], `answers_over_time`) read at `epoch` (or the kept record before it)
    and over the whole run."""
    at = timeline.epochs.index(timeline.record(epoch).epoch)
    answers = np.asarray(probabilities).argmax(axis=1)
    answer = int(answers[at])
    return Learned(answer, float(probabilities[at, answer]), int(answers[-1]), stable_since(timeline.epochs, answers))


# --- the first layer as the weights panel shows it ----------------------------------------------------


def layer_shown(kernel: np.ndarray, initial: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A first-layer kernel [784, units] as shown: float32, minus `initial` when given (the change
    since step 0); and its units by the size of what is shown, largest first (ties by number, NaN as
    0), for "most changed first"."""
    values = np.asarray(kernel, np.float32)
    if initial is not None:
        values = values - np.asarray(initial, np.float32)
    return values, np.argsort(-np.linalg.norm(np.nan_to_num(values), axis=0), kind="stable")


def units_on_page(order: np.ndarray, by_change: bool, page: int, per_page: int) -> np.ndarray:
    """The units of page `page` (from 1) of the grid: in `order` (`layer_shown`'s, most changed
    first) or, not `by_change`, by number."""
    ranked = order if by_change else np.arange(len(order))
    return ranked[(page - 1) * per_page: page * per_page]
