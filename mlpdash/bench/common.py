"""What every bench module shares: where the repository is, the drawing canvas, a sample drawing on
it, and the way latencies are printed. Nothing here imports TensorFlow or Streamlit at import time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The drawing widget's canvas, in pixels a side (mlpdash/ui/drawing.py draws it this size).
CANVAS = 280
REPO_ROOT = Path(__file__).resolve().parents[2]
FULL_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"


def default_source() -> str:
    """Full MNIST beside the checkout when it is there, else the bundled sample."""
    return f"idx:{FULL_MNIST}" if (FULL_MNIST / "train-images-idx3-ubyte.gz").is_file() else "sample"


def sample_drawing() -> np.ndarray:
    """A real sample digit blown up onto a black RGBA canvas, as the drawing widget returns it."""
    from PIL import Image

    from mlpdash.data import load_mnist

    digit = load_mnist("sample").x_test[0]
    big = Image.fromarray(digit).resize((200, 200), Image.Resampling.BILINEAR)
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[40:240, 50:250, :3] = np.asarray(big)[..., None]
    return canvas


def ms(seconds: Sequence[float], percentile: int) -> str:
    """A percentile of `seconds`, in milliseconds with two decimals, as every latency line prints it."""
    return f"{np.percentile(seconds, percentile) * 1000:.2f}"


def default_architecture() -> str:
    """The default model's layer sizes as the bench's headings name them (784-700-500-10)."""
    from mlpdash.config import TrainConfig

    return TrainConfig().architecture


def status_mb(field: str) -> float:
    """A memory field of this process's /proc/self/status (VmRSS; VmHWM, the peak RSS) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")
