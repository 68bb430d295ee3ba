"""A saved run's model is rebuilt from its validated config by our code; only weights come from the folder."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.model import build_network, network_weights
from mlpdash.runs import RunError, RunWriter, load_run_model, read_info

from hostile import MB, peak_bytes

CONFIG = TrainConfig(hidden=(16,), epochs=1)


def run_with(tmp_path, **files: bytes):
    writer = RunWriter(tmp_path, CONFIG, "sample")
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": False, "epochs_completed": 1})
    writer.close()
    for name, data in files.items():
        (writer.path / name).write_bytes(data)
    return writer.path


def keras_file(model: keras.Model, config_edit=None) -> bytes:
    """A model.keras as Keras writes it, with its config.json optionally rewritten."""
    buffer = io.BytesIO()
    path = f"/tmp/mlpdash-test-{time.monotonic_ns()}.keras"
    model.save(path)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json" and config_edit:
                data = json.dumps(config_edit(json.loads(data))).encode()
            target.writestr(item, data)
    return buffer.getvalue()


@pytest.fixture
def no_keras_loading(monkeypatch):
    """Fail if anything asks Keras to build a model from a file's config."""
    def refuse(*args, **kwargs):
        raise AssertionError("keras.models.load_model was called")

    monkeypatch.setattr(keras.models, "load_model", refuse)
    monkeypatch.setattr(keras.saving, "load_model", refuse)


def test_weights_round_trip_into_a_model_built_from_the_config(tmp_path, no_keras_loading):
    source = build_network(CONFIG)
    writer = RunWriter(tmp_path, CONFIG, "sample")
    writer.write_model_weights(network_weights(source))
    writer.close()
    model = load_run_model(writer.path)
    x = np.random.default_rng(0).random((4, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(model(x).numpy(), source(x).numpy(), atol=1e-6)


def test_weights_of_another_shape_are_refused_without_unpacking_them(tmp_path, no_keras_loading):
    buffer = io.BytesIO()
    # What a folder declaring Dense(30000) would hold: 94 MB of weights packed into ~100 KB.
    np.savez_compressed(buffer, w0=np.zeros((784, 30000), np.float32), w1=np.zeros(30000, np.float32))
    path = run_with(tmp_path, **{"model.weights.npz": buffer.getvalue()})

    def refuse():
        with pytest.raises(RunError, match=r"model.weights.npz\[w0.npy\]: declares 94,080,128 bytes, more than the"):
            load_run_model(path)

    # Refused from what it declares: nothing near its 94 MB is ever unpacked (the time and the peak
    # RSS it takes: `python -m mlpdash bench --memory-runs 1`, mlpdash/bench/run_loading.py). Measured
    # on a second call: the first may import modules that a call alone does not allocate.
    refuse()
    assert peak_bytes(refuse) < 8 * MB
    small = io.BytesIO()
    np.savez(small, w0=np.zeros((784, 8), np.float32), w1=np.zeros(8, np.float32))
    path = run_with(tmp_path, **{"model.weights.npz": small.getvalue()})
    with pytest.raises(RunError, match="the weights do not match the run's layers"):
        load_run_model(path)


def test_a_legacy_model_file_declaring_a_huge_layer_only_lends_its_weights(tmp_path, no_keras_loading):
    source = build_network(CONFIG)

    def huge(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Dense" and layer["config"]["name"] == "hidden_1":
                layer["config"]["units"] = 300_000
        return config

    path = run_with(tmp_path, **{"model.keras": keras_file(source, huge)})
    assert read_info(path).has_model
    built = []
    dense_build = keras.layers.Dense.build

    def recorded(layer, input_shape):  # Dense.build's own signature: Keras reads it to pass the shape
        built.append(layer.units)
        return dense_build(layer, input_shape)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.layers.Dense, "build", recorded)
        model = load_run_model(path)
    # Only the run's own layers were ever made, never the file's 300,000 units (940 MB); the time and
    # peak RSS of the load: `python -m mlpdash bench --memory-runs 1` (mlpdash/bench/run_loading.py).
    assert built == [16, 10]
    assert model.layers[1].units == 16  # built from the run's config.json, not the file's
    np.testing.assert_allclose(model.get_weights()[0], source.get_weights()[0])


def test_a_legacy_model_file_with_a_lambda_layer_is_never_executed(tmp_path, no_keras_loading):
    marker = str(tmp_path / "payload-ran")
    hostile = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Lambda(lambda x: (open(marker, "w").close(), x)[1]),  # noqa: SIM115
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    data = keras_file(hostile)
    Path(marker).unlink(missing_ok=True)  # building the model ran the lambda once
    path = run_with(tmp_path / "runs", **{"model.keras": data})
    with pytest.raises(RunError):
        load_run_model(path)
    assert not Path(marker).exists()


def test_keras_own_loader_still_refuses_lambda_layers_in_safe_mode(tmp_path, monkeypatch):
    # mlpdash never loads a graph from a folder; this pins the Keras behaviour STACK-NOTES records,
    # for anyone who loads a run's model.keras themselves.
    file = tmp_path / "lambda.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)]).save(file)
    with pytest.raises(ValueError, match="(?i)lambda"):
        keras.models.load_model(file, compile=False)


def test_a_legacy_weights_file_pointing_outside_itself_is_refused(tmp_path, no_keras_loading):
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"root:x:0:0" * 5100)
    source = build_network(CONFIG)
    data = keras_file(source)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        h5 = archive.read("model.weights.h5")
    store_path = tmp_path / "w.h5"
    store_path.write_bytes(h5)
    with h5py.File(store_path, "r+") as store:
        del store["layers/dense/vars/0"]
        store["layers/dense/vars"].create_dataset("0", shape=(784, 16), dtype="float32",
                                                  external=[(str(secret), 0, 784 * 16 * 4)])
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(rebuilt, "w") as target:
        for item in archive.infolist():
            target.writestr(item, store_path.read_bytes() if item.filename == "model.weights.h5"
                            else archive.read(item))
    path = run_with(tmp_path / "runs", **{"model.keras": rebuilt.getvalue()})
    with pytest.raises(RunError, match="not a dataset stored in the file"):
        load_run_model(path)
