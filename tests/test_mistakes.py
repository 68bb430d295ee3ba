"""What sits in a cell of the confusion matrix, and the hardest mistakes, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.mistakes import Answers, captions, cell, describe_cell, hardest, short_captions


def _answers(n: int = 500, seed: int = 0) -> Answers:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    predictions = np.where(rng.random(n) < 0.8, labels, rng.integers(0, 10, n))
    return Answers("test", labels, predictions, rng.random(n).astype(np.float32))


@pytest.mark.parametrize(("true", "predicted"), [(3, 5), (7, 7), (0, 9)])
def test_a_cell_holds_exactly_its_images_in_confidence_order(true, predicted):
    answers = _answers()
    shown = cell(answers, true, predicted)
    expected = [i for i in range(len(answers.labels))
                if answers.labels[i] == true and answers.predictions[i] == predicted]
    assert sorted(shown.tolist()) == expected
    assert len(shown) == answers.confusion[true, predicted]
    confidence = answers.confidences[shown]
    # Mistakes: the most confident first; the diagonal: the least confident (nearly missed) first.
    assert list(confidence) == sorted(confidence, reverse=true != predicted)


def test_a_cell_is_cut_at_the_limit_keeping_the_first_in_order():
    answers = _answers(2000)
    assert list(cell(answers, 4, 4, limit=10)) == list(cell(answers, 4, 4)[:10])
    with pytest.raises(ValueError, match="pair of digits"):
        cell(answers, 10, 1)


def test_the_hardest_mistakes_are_the_most_confident_wrong_answers():
    answers = _answers()
    shown = hardest(answers, 15)
    wrong = [i for i in range(len(answers.labels)) if answers.labels[i] != answers.predictions[i]]
    brute = sorted(wrong, key=lambda i: -answers.confidences[i])[:15]
    assert shown.tolist() == brute
    assert hardest(Answers("test", np.arange(3), np.arange(3), np.ones(3))).size == 0


def test_per_class_accuracy_and_captions():
    answers = Answers("validation", np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), np.array([0.9, 0.6, 0.8, 0.99]))
    assert answers.per_class_accuracy[:3] == [0.5, 1.0, 1.0] and answers.per_class_accuracy[3] is None
    assert captions(answers, np.array([1])) == ["#1: a 0 read as 1 (60%)"]
    with pytest.raises(ValueError, match="one each per image"):
        Answers("test", np.zeros(3), np.zeros(2), np.zeros(3))


# --- what the page shows, computed headless


def test_the_share_read_right_and_the_text_over_each_digit():
    answers = Answers("validation", np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), np.array([0.9, 0.6, 0.8, 0.994]))
    assert answers.accuracy == 0.75
    assert short_captions(answers, np.array([1, 3])) == ["0→1<br>60%", "2→2<br>99%"]
    assert short_captions(answers, np.array([1]), with_labels=False) == ["60%"]


def test_a_cell_says_how_many_it_holds_and_in_which_order():
    labels = np.array([3] * 5 + [5] * 2)
    predictions = np.array([3, 3, 3, 5, 5, 5, 5])
    answers = Answers("test", labels, predictions, np.full(7, 0.5))
    assert describe_cell(answers, 3, 5, 2) == (
        "3 read as 5: 2", "2 3s read as 5, the most confident first. ")
    assert describe_cell(answers, 3, 3, 2) == (
        "3 read right: 3", "3 3s read right, the least confident first (the right answers nearly missed); the "
                           "first 2 of them. ")

