"""Shared fixtures: full MNIST if present, the bundled sample, and small slices of it for fast training."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The full MNIST IDX files live beside the project, never inside it.
FULL_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="session")
def full_mnist_dir() -> Path | None:
    """Folder with the four full MNIST IDX files, or None where it is absent."""
    return FULL_MNIST_DIR if FULL_MNIST_DIR.is_dir() else None


@pytest.fixture(scope="session")
def sample_data():
    from mlpdash.data import load_mnist

    return load_mnist("sample")


@pytest.fixture(scope="session")
def tiny_data(sample_data):
    """A slice of the real sample small enough to train on in a second or two."""
    from mlpdash.data import MnistSplits

    return MnistSplits(
        x_train=sample_data.x_train[:2000], y_train=sample_data.y_train[:2000],
        x_val=sample_data.x_val[:500], y_val=sample_data.y_val[:500],
        x_test=sample_data.x_test[:500], y_test=sample_data.y_test[:500],
        source="sample", reason="test slice of the bundled sample",
    )


def pytest_configure(config) -> None:
    # Keras 3.15 calls np.array(x, copy=False) on TF tensors: harmless noise under NumPy 2.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy")
    # A thread that dies with an exception after its test (a leaked probe, say) fails the run.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
