"""The mistakes a model makes: which images sit in a cell of its confusion matrix, and the hardest ones.

`Answers` are a model's answers on one split (the test split for the final model, the validation
split for any kept epoch of a run): for every image its true label, the digit answered and that
answer's probability. A cell lists its images by confidence: an off-diagonal cell its most confident
mistakes first, the diagonal its *least* confident correct answers first (the ones nearly missed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpdash.evaluate import confusion_matrix
from mlpdash.mnist import NUM_CLASSES

# The most images a cell or a gallery shows: the grid is one image, so hundreds stay cheap.
MAX_SHOWN = 200


@dataclass(frozen=True, eq=False)
class Answers:
    """One model's answers on one split, image by image in the split's order."""

    split: str  # "test" or "validation"
    labels: np.ndarray  # int [N]
    predictions: np.ndarray  # int [N]
    confidences: np.ndarray  # float [N]: the probability of the answer

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.predictions.shape != (n,) or self.confidences.shape != (n,):
            raise ValueError(f"{n} labels, {len(self.predictions)} answers and {len(self.confidences)} "
                             "confidences: one each per image")

    @property
    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.labels, self.predictions)

    @property
    def accuracy(self) -> float:
        """The share of the split answered right."""
        return float(np.mean(self.labels == self.predictions))

    @property
    def per_class_accuracy(self) -> list[float | None]:
        """Each digit's share answered right; None for a digit the split lacks."""
        counts = self.confusion
        totals = counts.sum(axis=1)
        return [float(counts[d, d] / totals[d]) if totals[d] else None for d in range(NUM_CLASSES)]


def cell(answers: Answers, true: int, predicted: int, limit: int = MAX_SHOWN) -> np.ndarray:
    """The indices of the images of digit `true` answered `predicted`: a mistake's most confident
    first; on the diagonal (right answers) the least confident first. At most `limit`."""
    if not (0 <= true < NUM_CLASSES and 0 <= predicted < NUM_CLASSES):
        raise ValueError(f"a cell is a pair of digits 0-9, got ({true}, {predicted})")
    members = np.flatnonzero((answers.labels == true) & (answers.predictions == predicted))
    confidence = answers.confidences[members].astype(np.float64)
    order = np.argsort(confidence if true == predicted else -confidence, kind="stable")
    return members[order][:limit]


def hardest(answers: Answers, limit: int = 50) -> np.ndarray:
    """The indices of the most confident wrong answers, most confident first."""
    wrong = np.flatnonzero(answers.labels != answers.predictions)
    order = np.argsort(-answers.confidences[wrong].astype(np.float64), kind="stable")
    return wrong[order][:limit]


def captions(answers: Answers, indices: np.ndarray) -> list[str]:
    """'#412: a 4 read as 9 (97%)' for each image, for hover texts and titles."""
    return [f"#{int(i)}: a {int(answers.labels[i])} read as {int(answers.predictions[i])} "
            f"({float(answers.confidences[i]):.0%})" for i in indices]


def short_captions(answers: Answers, indices: np.ndarray, with_labels: bool = True) -> list[str]:
    """The text over each image of a grid: the answer's probability, under '4→9' (its label → the
    answer) where those differ from image to image. Two short lines: on a phone a tile is about
    40 px wide."""
    return [(f"{int(answers.labels[i])}→{int(answers.predictions[i])}<br>" if with_labels else "")
            + f"{float(answers.confidences[i]):.0%}" for i in indices]


def describe_cell(answers: Answers, true: int, predicted: int, shown: int) -> tuple[str, str]:
    """(title, note) of a cell whose first `shown` images are shown: how many images it holds, and
    in which order they come."""
    total = int(answers.confusion[true, predicted])
    right = true == predicted
    title = f"{true} read right: {total:,}" if right else f"{true} read as {predicted}: {total:,}"
    order = "the least confident first (the right answers nearly missed)" if right else "the most confident first"
    more = f"; the first {shown} of them" if shown < total else ""
    return title, f"{total:,} {true}s {'read right' if right else f'read as {predicted}'}, {order}{more}. "
