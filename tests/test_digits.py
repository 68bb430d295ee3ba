"""The data view's numbers against direct counts on a small made-up split and on the sample."""

from __future__ import annotations

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.digits import class_counts, class_pictures, random_examples


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
