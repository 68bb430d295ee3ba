"""The test report against hand-counted and independently computed references."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.evaluate import confusion_matrix, report_from_logits


def one_hot_logits(predictions, confidence=5.0):
    logits = np.zeros((len(predictions), 10), np.float32)
    logits[np.arange(len(predictions)), predictions] = confidence
    return logits


def test_confusion_matrix_matches_a_hand_count():
    labels = [0, 0, 1, 2, 2, 2, 9]
    preds = [0, 1, 1, 2, 7, 2, 4]
    cm = confusion_matrix(np.array(labels), np.array(preds))
    expected = np.zeros((10, 10), int)
    for t, p in [(0, 0), (0, 1), (1, 1), (2, 2), (2, 7), (2, 2), (9, 4)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)


def test_report_numbers_agree_with_each_other_and_with_a_reference_loss():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    logits = rng.normal(size=(500, 10)).astype(np.float32)
    logits[np.arange(400), labels[:400]] += 4  # 80 % clearly right
    report = report_from_logits(logits, labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert report.loss == pytest.approx(-log_probs[np.arange(500), labels].mean(), rel=1e-5)
    assert report.accuracy == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert report.accuracy == pytest.approx(np.trace(report.confusion) / 500)
    assert report.confusion[labels[0]].sum() == np.sum(labels == labels[0])
    np.testing.assert_allclose(report.confidences, np.exp(log_probs).max(axis=1), rtol=1e-5)
    rows = report.normalized_confusion()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)


def test_per_class_accuracy_and_mistakes():
    labels = np.array([3, 3, 3, 3, 5, 5])
    preds = np.array([3, 3, 8, 3, 5, 3])
    logits = one_hot_logits(preds)
    logits[2, 8] = 9.0  # the 3 -> 8 mistake is made with more confidence than the 5 -> 3 one
    report = report_from_logits(logits, labels)
    per_class = report.per_class_accuracy
    assert per_class[3] == pytest.approx(0.75) and per_class[5] == pytest.approx(0.5)
    assert np.isnan(per_class[0])  # no 0 in this test set: unknown, not 0 %
    mistakes = report.mistakes()
    assert mistakes["index"] == [2, 5]  # most confident first
    assert mistakes["label"] == [3, 5] and mistakes["prediction"] == [8, 3]
    assert mistakes["confidence"][0] > mistakes["confidence"][1]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="expected logits of shape"):
        report_from_logits(np.zeros((3, 9)), np.zeros(3, int))
    with pytest.raises(ValueError, match="empty"):
        report_from_logits(np.zeros((0, 10)), np.zeros(0, int))
