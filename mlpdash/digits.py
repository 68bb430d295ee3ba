"""The data itself: how many digits of each class each split holds, what the average digit of each
class looks like and how much its writers vary, random examples, and where the data comes from.

It reads the loaded splits (`data.MnistSplits`); nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.mnist import IMAGE_SIDE, NUM_CLASSES, scale

SPLITS = ("training", "validation", "test")
CREDIT = ("MNIST, by Yann LeCun, Corinna Cortes and Christopher J. C. Burges; licence CC BY-SA 3.0. "
          "Training and validation digits come from its 60,000 training images (the first 10,000 are "
          "held out for validation), the test digits from its 10,000 test images, written by other people.")


@dataclass(frozen=True)
class ClassPictures:
    """Per class, the mean image and the pixel-wise standard deviation over the training digits, in
    [0, 1], [10, 28, 28] each."""

    means: np.ndarray
    spreads: np.ndarray


def split_arrays(data: MnistSplits) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"training": (data.x_train, data.y_train), "validation": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}


def class_counts(data: MnistSplits) -> dict[str, np.ndarray]:
    """Per split, how many digits of each class it holds (int [10])."""
    return {name: np.bincount(np.asarray(labels, np.int64), minlength=NUM_CLASSES)
            for name, (_, labels) in split_arrays(data).items()}


def class_pictures(images: np.ndarray, labels: np.ndarray) -> ClassPictures:
    """The mean and the standard deviation of each class's images (uint8 0-255 in), pixel by pixel."""
    labels = np.asarray(labels, np.int64)
    means = np.zeros((NUM_CLASSES, IMAGE_SIDE, IMAGE_SIDE), np.float32)
    spreads = np.zeros((NUM_CLASSES, IMAGE_SIDE, IMAGE_SIDE), np.float32)
    for digit in range(NUM_CLASSES):
        chosen = scale(images[labels == digit])
        if len(chosen):
            means[digit] = chosen.mean(axis=0)
            spreads[digit] = chosen.std(axis=0)
    return ClassPictures(means, spreads)


def random_examples(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """[10, per_class] indices: `per_class` random digits of each class (fewer where a class has
    fewer; -1 fills the gaps)."""
    labels = np.asarray(labels, np.int64)
    picked = np.full((NUM_CLASSES, per_class), -1, np.int64)
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        picked[digit, : len(chosen)] = chosen
    return picked


def source_reason(data: MnistSplits) -> str:
    """Why this source is the one in use, without restating the source (its reason may start with
    its description)."""
    return data.reason.removeprefix(data.description).lstrip(", ")


def pictures_grid(pictures: ClassPictures) -> tuple[np.ndarray, list[str]]:
    """Each digit's average, then its spread scaled to the largest, as 20 uint8 images, with a hover
    text each."""
    spread = pictures.spreads / max(float(pictures.spreads.max()), 1e-6)
    images = (np.concatenate([pictures.means, spread]) * 255).astype(np.uint8)
    hover = ([f"the average {d}" for d in range(NUM_CLASSES)]
             + [f"how much the {d}s vary, pixel by pixel" for d in range(NUM_CLASSES)])
    return images, hover


def examples(labels: np.ndarray, per_class: int, seed: int) -> tuple[list[int], list[str]]:
    """`random_examples` drawn with `seed`, flattened (digit by digit), with a hover text each."""
    picked = random_examples(labels, per_class, np.random.default_rng(seed))
    shown = [int(i) for i in picked.ravel() if i >= 0]
    return shown, [f"test digit #{i}, a {int(labels[i])}" for i in shown]
