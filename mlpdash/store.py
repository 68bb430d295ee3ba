"""The server's store of what is loaded on demand: datasets, saved runs' models, runs, timelines, test
answers and hidden-space maps, under one byte budget.

Caching on the page has two homes and one rule. What is *read or loaded* (a dataset, a run folder, a
model: seconds of disk or TensorFlow, tens to hundreds of MB) lives here, shared by every tab and every
rerun, keyed by what it came from (a run folder's key includes its files' times, so an edited run is
read again), and dropped oldest first once the budget (`budgets.cache_bytes`) is spent. What is
*computed* from those values for a figure lives in the page's own cache (`mlpdash.ui.cache`). The page
caches nowhere else.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpdash.budgets import cache_bytes
from mlpdash.data import MnistSplits, load_mnist, resolve_source
from mlpdash.explain import HiddenMap, Network, fit_map
from mlpdash.mnist import NUM_CLASSES, scale
from mlpdash.runs import (
    CONFUSIONS_FILE,
    TIMELINE_DIR,
    SavedRun,
    load_run,
    load_run_model,
    read_test_predictions,
    read_timeline,
    saved_weights,
)
from mlpdash.timeline import Timeline

if TYPE_CHECKING:
    from mlpdash.predict import Predictor

# Kept in place of a run's missing timeline or test answers (the cache keeps values; None would read
# as "not cached").
NO_TIMELINE = Timeline((), np.zeros(0, np.int64), np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64))


class ByteBudgetCache:
    """Values loaded on demand, dropped oldest first once their bytes exceed a budget (the newest
    entry always stays, so a single value larger than the budget still works). Thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[Any, int]] = {}

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, load: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        """The cached value of `key`, else `load()` (outside the lock: loads take seconds)."""
        with self._lock:
            if key in self._entries:
                return self._entries[key][0]
        value = load()
        nbytes = int(size(value))
        with self._lock:
            self._entries[key] = (value, nbytes)
            total = sum(n for _, n in self._entries.values())
            while total > self.budget and len(self._entries) > 1:
                _, dropped = self._entries.pop(next(iter(self._entries)))  # insertion order: oldest
                total -= dropped
        return value


class Store:
    """Datasets, run models, runs, timelines, test answers and maps, each loaded once, one budget."""

    def __init__(self, budget: int | None = None,
                 loader: Callable[[str], MnistSplits] = load_mnist) -> None:
        # One budget for everything (full MNIST ~55 MB, a saved run's snapshots up to hundreds of
        # MB, a model ~4 bytes a parameter): oldest out first.
        self.cache = ByteBudgetCache(cache_bytes() if budget is None else budget)
        self._loader = loader

    def data(self, spec: str | None) -> MnistSplits:
        """`load_mnist`, kept per resolved source so that a second run starts at once."""
        source, reason = resolve_source(spec)
        cached = self.cache.get(("data", source), lambda: self._loader(source), _splits_bytes)
        # The arrays are shared; the reason is this request's own (auto's "offline — ..." and so on).
        return dataclasses.replace(cached, reason=reason)

    def predictor(self, path: Path) -> Predictor:
        """A Predictor on a saved run's model (TensorFlow), loaded once per run folder; RunError."""
        from mlpdash.predict import Predictor

        path = Path(path)
        return self.cache.get(("model", path, stamp(path)), lambda: Predictor(load_run_model(path)),
                              lambda p: 4 * sum(int(np.prod(w.shape)) for w in p.model.weights))

    def weights(self, path: Path) -> list[np.ndarray]:
        """A saved run's weights (kernel, bias, ... in layer order, float32), read once per run folder
        without TensorFlow: the views that explain a model compute with NumPy, and building a Keras
        model only to read its weights back cost their first visit 25 ms, 130 ms where it was the
        process's first model. A run saved before model.weights.npz existed goes through its Keras
        model. RunError."""
        path = Path(path)
        return self.cache.get(("weights", path, stamp(path)), lambda: self._read_weights(path),
                              lambda weights: sum(w.nbytes for w in weights))

    def _read_weights(self, path: Path) -> list[np.ndarray]:
        weights = saved_weights(path)
        if weights is None:  # a legacy run's model.keras: only Keras reads it
            from mlpdash.model import network_weights

            return network_weights(self.predictor(path).model)
        return [np.asarray(w, np.float32) for w in weights]

    def saved_run(self, path: Path) -> SavedRun:
        """A run folder read back once (its weight snapshots are megabytes); RunError if damaged."""
        path = Path(path)
        return self.cache.get(("run", path, stamp(path)), lambda: load_run(path), _run_bytes)

    def timeline(self, path: Path) -> Timeline | None:
        """A saved run's timeline (None when it recorded none); RunError if damaged."""
        path = Path(path)
        found = self.cache.get(("timeline", path, stamp(path)), lambda: read_timeline(path) or NO_TIMELINE,
                               lambda t: 0 if t is NO_TIMELINE else sum(r.nbytes for r in t.records))
        return None if found is NO_TIMELINE else found

    def test_predictions(self, path: Path) -> dict[str, np.ndarray]:
        """A saved run's answers on the test split ({} when it kept none); RunError if damaged."""
        path = Path(path)
        return self.cache.get(("test answers", path, stamp(path)), lambda: read_test_predictions(path) or {},
                              lambda a: sum(v.nbytes for v in a.values()))

    def hidden_map(self, network: Network, data_spec: str | None, state: Hashable) -> HiddenMap:
        """The hidden-space map of `network` over its data's test split, fitted once per `state`
        (a model's state changes whenever its weights do)."""
        def fit() -> HiddenMap:
            data = self.data(data_spec)
            return fit_map(network, scale(data.x_test), data.y_test)

        return self.cache.get(("map", state, data_spec), fit, lambda m: m.features.nbytes + m.points.nbytes)


def stamp(path: Path) -> float:
    """A run folder's metrics change while it trains and its summary when it is evaluated: cached
    reads are keyed by them, so a reader never keeps an outdated copy."""
    latest = 0.0
    for name in ("metrics.jsonl", "summary.json", "model.weights.npz", f"{TIMELINE_DIR}/{CONFUSIONS_FILE}"):
        try:
            latest = max(latest, (path / name).stat().st_mtime)
        except OSError:
            pass
    return latest


def _splits_bytes(data: MnistSplits) -> int:
    return sum(getattr(data, key).nbytes for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"))


def _run_bytes(run: SavedRun) -> int:
    return 0 if run.kernels is None else int(run.kernels.nbytes)
