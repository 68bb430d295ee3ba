"""The test report: loss, accuracy, confusion matrix, per-class accuracy and the mistakes.

Everything is derived from the logits of the whole test split in one pass, so the numbers agree with
each other exactly (accuracy = trace / total of the confusion matrix). Only building a report needs
Keras; holding and reading one does not, so the page can show reports before TensorFlow has loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlpdash.mnist import NUM_CLASSES



@dataclass(frozen=True)
class TestReport:
    loss: float
    accuracy: float
    confusion: np.ndarray  # int64 [10, 10], rows = true digit, columns = predicted
    labels: np.ndarray  # int64 [N], the true digits
    predictions: np.ndarray  # int64 [N]
    confidences: np.ndarray  # float32 [N], probability of the predicted digit

    __test__ = False  # not a pytest test class, despite its name

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Recall of each true digit; NaN for a digit absent from the test split."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(totals > 0, np.diag(self.confusion) / totals, np.nan)

    @property
    def mistake_indices(self) -> np.ndarray:
        """Test indices of the misclassified images, least confident mistakes last."""
        wrong = np.flatnonzero(self.predictions != self.labels)
        return wrong[np.argsort(-self.confidences[wrong], kind="stable")]

    def mistakes(self) -> dict[str, list[Any]]:
        """Column-wise record of every misclassified test image, most confident first."""
        idx = self.mistake_indices
        return {
            "index": idx.tolist(),
            "label": self.labels[idx].tolist(),
            "prediction": self.predictions[idx].tolist(),
            "confidence": [round(float(c), 6) for c in self.confidences[idx]],
        }

    def summary(self) -> dict[str, Any]:
        """The report's figures as JSON-ready values (a digit absent from the test split: None)."""
        return {
            "test_accuracy": self.accuracy,
            "test_loss": self.loss,
            "confusion_matrix": self.confusion.tolist(),
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in self.per_class_accuracy],
            "mistakes": int(len(self.mistake_indices)),
        }

    def normalized_confusion(self) -> np.ndarray:
        """Each row divided by its total (the rate of each prediction for a true digit)."""
        totals = self.confusion.sum(axis=1, keepdims=True)
        return self.confusion / np.maximum(totals, 1)


def report_from_logits(logits: np.ndarray, labels: np.ndarray) -> TestReport:
    """Build the report from the model's logits [N, 10] and the true labels [N]."""
    logits = np.asarray(logits, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if logits.ndim != 2 or logits.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"expected logits of shape ({len(labels)}, {NUM_CLASSES}), got {logits.shape}")
    if len(labels) == 0:
        raise ValueError("the test split is empty")
    import keras  # here, not at the top: reading a report must not load TensorFlow

    loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    probabilities = keras.ops.softmax(logits)
    predictions = np.asarray(logits.argmax(axis=1), dtype=np.int64)
    confusion = confusion_matrix(labels, predictions)
    return TestReport(
        loss=float(np.mean(keras.ops.convert_to_numpy(loss))),
        accuracy=float(np.trace(confusion) / len(labels)),
        confusion=confusion,
        labels=labels,
        predictions=predictions,
        confidences=np.asarray(keras.ops.convert_to_numpy(probabilities).max(axis=1), np.float32),
    )


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """int64 [10, 10]: entry (t, p) counts the images of true digit t predicted as p."""
    flat = np.asarray(labels, np.int64) * NUM_CLASSES + np.asarray(predictions, np.int64)
    return np.bincount(flat, minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)
