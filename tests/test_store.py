"""The store: data, runs and models loaded once for the server, under one byte budget."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.store import ByteBudgetCache, Store

QUICK = TrainConfig(hidden=(16,), epochs=1, batch_size=64)


def test_data_is_loaded_once_per_source_with_each_requests_reason(monkeypatch):
    store = Store()
    first = store.data("sample")
    monkeypatch.setenv("MLPDASH_DATA", "sample")
    again = store.data(None)
    assert again.x_train is first.x_train  # the same arrays, not a second copy
    assert first.reason.endswith("as chosen") and again.reason.startswith("MLPDASH_DATA=sample")


def test_saved_runs_are_read_once_and_the_cache_is_bounded_by_bytes(tmp_path, monkeypatch):
    from mlpdash.runs import RunWriter

    paths = []
    for _ in range(6):
        writer = RunWriter(tmp_path, QUICK, "sample")
        writer.write_snapshot(np.zeros((784, QUICK.hidden[0]), np.float32), 0)
        writer.write_summary({"test_accuracy": 0.5, "stopped_early": False})
        writer.close()
        paths.append(writer.path)
    monkeypatch.setenv("MLPDASH_CACHE_MB", str(3 * 784 * QUICK.hidden[0] * 2 / 2**20))  # room for three runs
    store = Store()
    first = store.saved_run(paths[0])
    assert store.saved_run(paths[0]) is first
    for path in paths[1:]:
        store.saved_run(path)
    assert len(store.cache) == 3 and store.cache.nbytes <= 3 * 784 * QUICK.hidden[0] * 2
    assert store.saved_run(paths[0]) is not first  # dropped, then read again


def test_the_byte_budget_cache_drops_the_oldest_but_keeps_one_oversized_value():
    cache = ByteBudgetCache(100)
    for key in "abc":
        cache.get(key, lambda: key, lambda _: 40)
    assert len(cache) == 2 and cache.nbytes == 80  # "a" went first
    assert cache.get("b", lambda: "reloaded", lambda _: 40) == "b"
    assert cache.get("big", lambda: "big", lambda _: 500) == "big"
    assert len(cache) == 1 and cache.nbytes == 500


def test_a_saved_runs_weights_are_read_without_building_a_keras_model_and_once(tmp_path, monkeypatch):
    """The views that explain a model (Units, Inside a prediction...) compute with NumPy: on a
    server's first visit they read the weights file, not a Keras model built only to be read back."""
    import mlpdash.model
    from mlpdash.model import build_network, network_weights
    from mlpdash.runs import MODEL_WEIGHTS, RunError, RunWriter

    model = build_network(QUICK)
    writer = RunWriter(tmp_path, QUICK, "sample")
    writer.write_model_weights(network_weights(model))
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": False, "epochs_completed": 1})
    writer.close()
    built = []
    monkeypatch.setattr(mlpdash.model, "build_network", lambda config: built.append(config))
    store = Store()
    weights = store.weights(writer.path)
    assert built == [] and len(store.cache) == 1  # no Keras model, no predictor cached beside them
    assert all(w.dtype == np.float32 for w in weights)
    for read, saved in zip(weights, network_weights(model), strict=True):
        np.testing.assert_array_equal(read, saved)
    assert store.weights(writer.path) is weights  # read once
    (writer.path / MODEL_WEIGHTS).unlink()  # a run that kept no weights file: a RunError, as its model's
    with pytest.raises(RunError):
        Store().weights(writer.path)
