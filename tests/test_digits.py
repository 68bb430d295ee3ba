"""The data view's numbers against direct counts on a small made-up split and on the sample."""

from __future__ import annotations

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.digits import class_counts, class_pictures, examples, pictures_grid, random_examples, source_reason


def _splits() -> MnistSplits:
    images = np.zeros((6, 28, 28), np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 255, 51  # two 3s: a mean of 153/255 and a spread at pixel (0, 0)
    labels = np.array([3, 3, 1, 1, 1, 9])
    return MnistSplits(images, labels, images[:2], labels[:2], images[:1], labels[:1], "sample", "test")


def test_class_counts_per_split():
    counts = class_counts(_splits())
    assert counts["training"].tolist() == [0, 3, 0, 2, 0, 0, 0, 0, 0, 1]
    assert counts["validation"].tolist()[3] == 2 and counts["test"].sum() == 1


def test_mean_and_spread_of_each_digit():
    data = _splits()
    pictures = class_pictures(data.x_train, data.y_train)
    assert pictures.means[3, 0, 0] == np.float32((255 + 51) / 2 / 255)
    assert pictures.spreads[3, 0, 0] == np.float32((255 - 51) / 2 / 255)
    assert not pictures.means[1].any() and not pictures.means[0].any()  # all black, and an absent class


def test_random_examples_are_of_their_class_and_distinct(sample_data):
    picked = random_examples(sample_data.y_train, 8, np.random.default_rng(3))
    assert picked.shape == (10, 8)
    for digit in range(10):
        assert set(sample_data.y_train[picked[digit]]) == {digit} and len(set(picked[digit])) == 8
    few = random_examples(np.array([1, 1, 2]), 3, np.random.default_rng(0))
    assert sorted(few[1][:2]) == [0, 1] and few[1][2] == -1 and few[0].tolist() == [-1, -1, -1]
    assert (random_examples(sample_data.y_train, 8, np.random.default_rng(4)) != picked).any()  # reshuffled


# --- what the page shows, computed headless


def test_the_reason_for_a_source_does_not_restate_it():
    data = _splits()
    assert source_reason(data) == "test"
    arrays = [getattr(data, field) for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")]
    restated = MnistSplits(*arrays, "sample", f"{data.description}, as no other source was found")
    assert source_reason(restated) == "as no other source was found"


def test_the_average_and_the_spread_of_each_digit_as_one_grid():
    pictures = class_pictures(_splits().x_train, _splits().y_train)
    images, hover = pictures_grid(pictures)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert images[3, 0, 0] == int(153 / 255 * 255) and images[13, 0, 0] == 255  # the largest spread: full scale
    assert hover[3] == "the average 3" and hover[13] == "how much the 3s vary, pixel by pixel"


def test_random_examples_flattened_digit_by_digit_with_their_labels():
    labels = np.array([1, 1, 2, 5])
    shown, hover = examples(labels, 2, seed=0)
    assert sorted(shown[:2]) == [0, 1] and shown[2:] == [2, 3]  # the gaps of digits with too few left out
    assert hover[2] == "test digit #2, a 2" and hover[3] == "test digit #3, a 5"
    assert examples(labels, 2, seed=0) == (shown, hover)  # a seed, the same picks

