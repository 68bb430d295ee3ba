"""Run folders of earlier releases, read as safely as today's: a model saved only as `model.keras`
(before `model.weights.npz`), and first-layer snapshots kept together in one `weights.npz` (before
`snapshots/`).

Only the weights are ever taken from a legacy file, each shape checked against the run's own config
before its data is read; the Keras model config inside a `.keras` archive is never used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.files import UnsafeFileError, read_archive
from mlpdash.runs.base import LEGACY_WEIGHTS, RunError, _check_finite, _read_bytes, _read_npz

LEGACY_MEMBERS = 8  # a .keras archive holds config.json, metadata.json and model.weights.h5


def _load_legacy_weights(model: Any, file: Path, limit: int) -> str | None:
    """Weights of a `model.keras` written before `model.weights.npz` existed, read from its HDF5
    part with every shape checked before its data is read (never the file's model config)."""
    import io

    import h5py

    raw = _read_bytes(file, limit)
    try:
        h5 = read_archive(raw, str(file), limit, limit, LEGACY_MEMBERS,
                          wanted=lambda name: name == "model.weights.h5")["model.weights.h5"]
        with h5py.File(io.BytesIO(h5), "r") as store:
            arrays = []
            dense = [layer for layer in model.layers if layer.weights]
            for i, layer in enumerate(dense):
                group = f"layers/{'dense' if i == 0 else f'dense_{i}'}/vars"
                for j, variable in enumerate(layer.weights):
                    data = _plain_dataset(store, f"{group}/{j}")
                    if tuple(data.shape) != tuple(variable.shape):
                        return f"{layer.name} weight {j} has shape {data.shape}, expected {variable.shape}"
                    arrays.append(np.asarray(data[()], np.float32))
    except UnsafeFileError as err:
        raise RunError(str(err)) from None
    except (KeyError, OSError, ValueError) as err:
        raise RunError(f"{file}: cannot read its weights ({type(err).__name__}: {err})") from None
    from mlpdash.model import set_network_weights

    _check_finite(arrays, file)
    return set_network_weights(model, arrays)


def _plain_dataset(store: Any, name: str) -> Any:
    """A dataset stored inside the HDF5 file itself. HDF5 follows soft, external and virtual links
    and external storage by path, which would read (or block on) any file on the server."""
    import h5py

    node = store
    for part in name.split("/"):
        link = node.get(part, getlink=True)
        if link is None:
            raise KeyError(f"{name} is missing")
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"{name} is a link, not a dataset stored in the file")
        node = node[part]
    if not isinstance(node, h5py.Dataset) or node.external or node.is_virtual:
        raise ValueError(f"{name} is not a dataset stored in the file")
    return node


def _read_legacy_snapshots(path: Path, shape: tuple[int, int], cap: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernels [K, *shape] and their epochs from a run's `weights.npz`, at most `cap` bytes."""
    arrays = _read_npz(path / LEGACY_WEIGHTS, cap, max_members=2)
    kernels, epochs = arrays.get("kernels"), arrays.get("epochs")
    if (kernels is None or epochs is None or kernels.ndim != 3 or kernels.shape[1:] != shape
            or epochs.shape != (len(kernels),) or not np.issubdtype(epochs.dtype, np.integer)
            or kernels.dtype not in (np.float16, np.float32)):
        raise RunError(f"{path / LEGACY_WEIGHTS}: unreadable weight snapshots (wrong arrays)")
    _check_finite([kernels], path / LEGACY_WEIGHTS)
    return kernels, epochs.astype(np.int64)
