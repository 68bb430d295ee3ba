"""MNIST's shapes and the model's input scaling: defined here once, for every module.

A digit is a 28x28 grid of uint8 pixels (0 background, 255 ink); the network sees it flattened to 784
float32 values in [0, 1]. Ten classes, the digits 0 to 9.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
MAX_PIXEL = 255.0


def scale(images: np.ndarray) -> np.ndarray:
    """Raw uint8 pixels (any shape) -> the model's float32 input in [0, 1]."""
    return np.asarray(images).astype(np.float32) / MAX_PIXEL


def pixels(images: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (any shape) -> uint8 pixels as MNIST stores them: `scale` undone, rounded,
    and kept in 0-255 (NaN as 0)."""
    return np.clip(np.rint(np.nan_to_num(np.asarray(images, np.float64) * MAX_PIXEL)), 0, MAX_PIXEL).astype(np.uint8)
