"""Shared fixtures: full MNIST if present, the bundled sample and small slices of it for fast training;
one small run trained once a session (`trained_run` and what derives from it); the page under AppTest
(`app_env`, `app`; the helpers are in tests/apptest.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --- one small trained run, shared ----------------------------------------------------------------

# The settings of the shared run: two hidden ReLU layers (what explanations and the units' lab reach
# through), three epochs (a timeline of four records) on `tiny_data`. Tests read its sizes from
# `trained_run.config`, never from these numbers.
TRAINED_HIDDEN = (64, 32)
TRAINED_EPOCHS = 3
TRAINED_BATCH_SIZE = 64


@dataclass(frozen=True)
class TrainedRun:
    """A run trained by the real engine: the finished job (its live predictor, its snapshot) and the
    run folder it wrote, alone in its parent folder. Shared by the whole session: read them, never
    write into the folder (copy it first: the `trained_run_copy` fixture) or change the model."""

    job: Any  # mlpdash.training.TrainingJob, imported lazily (TensorFlow)
    snapshot: Any  # the job's last Snapshot
    written: dict[str, str]  # what training left: `_fingerprint`

    @property
    def config(self):
        return self.job.config

    @property
    def run_dir(self) -> Path:
        return Path(self.snapshot.run_dir)

    @property
    def model(self):
        """The job's own Keras model (the one its predictor answers with)."""
        return self.job.predictor.model


def _fingerprint(folder: Path, model) -> dict[str, str]:
    """Each file's SHA-256, and the live model's weights'."""
    files = {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
             for path in sorted(folder.rglob("*")) if path.is_file()}
    weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    return {**files, "(the job's model: its weights)": weights}


@pytest.fixture(scope="session")
def trained_run(tiny_data, tmp_path_factory) -> TrainedRun:
    """One small MLP trained once a session on `tiny_data`, for the tests that need a trained model or
    run folder whose exact settings do not matter to what they prove. After each test that used it,
    its folder must still hold exactly what training wrote (`_shared_run_left_as_trained`)."""
    from mlpdash.config import TrainConfig
    from mlpdash.training import Status, TrainingJob

    config = TrainConfig(hidden=TRAINED_HIDDEN, epochs=TRAINED_EPOCHS, batch_size=TRAINED_BATCH_SIZE)
    job = TrainingJob(config, tiny_data, tmp_path_factory.mktemp("shared-run")).start()
    assert job.join(300), "the shared run did not finish training"
    snapshot = job.snapshot()
    assert snapshot.status == Status.FINISHED, snapshot.error
    return TrainedRun(job, snapshot, _fingerprint(Path(snapshot.run_dir), job.predictor.model))


@pytest.fixture(autouse=True)
def _shared_run_left_as_trained(request) -> Iterator[None]:
    """A test that used the shared run and wrote into its folder, or changed its model, fails by name."""
    yield
    if "trained_run" in request.fixturenames:
        run = request.getfixturevalue("trained_run")
        now = _fingerprint(run.run_dir, run.model)
        changed = sorted(name for name in {*now, *run.written} if now.get(name) != run.written.get(name))
        run.written.update(now)  # told once: the tests after this one are not blamed for it
        assert not changed, (f"this test changed the shared run {run.run_dir} ({', '.join(changed)}): "
                             "give it a copy (trained_run_copy, or a clone of the model)")


@pytest.fixture
def trained_run_copy(trained_run, tmp_path) -> Path:
    """A copy of the shared run folder, in `tmp_path / "runs"`, for a test that writes into it."""
    copy = tmp_path / "runs" / trained_run.run_dir.name
    shutil.copytree(trained_run.run_dir, copy)
    return copy


@pytest.fixture(scope="session")
def trained_model(trained_run):
    """The shared run's Keras model (the live one of its job: do not train it or set its weights)."""
    return trained_run.model


@pytest.fixture
def trained_network(trained_run):
    """The shared run's model as our own forward pass (mlpdash.explain.Network), on fresh arrays."""
    from mlpdash.explain import Network
    from mlpdash.model import network_weights

    return Network.from_weights(network_weights(trained_run.model), trained_run.config.activation)


# --- the page under AppTest -------------------------------------------------------------------------


@pytest.fixture
def app_env(tmp_path, monkeypatch) -> Path:
    """The environment a page under test runs in: a fresh runs folder (the server-wide manager is per
    runs folder), drawings beside it (where the page keeps them by default), the bundled sample, and
    no control password whatever the shell has set. Returns the runs folder (not made yet)."""
    monkeypatch.setenv("MLPDASH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MLPDASH_DRAWINGS", str(tmp_path / "drawings"))
    monkeypatch.setenv("MLPDASH_DATA", "sample")
    monkeypatch.delenv("MLPDASH_CONTROL_PASSWORD", raising=False)
    return tmp_path / "runs"


@pytest.fixture
def app(app_env):
    """A fresh page (app.py under Streamlit's AppTest) on a fresh runs folder, run once. A module
    whose page starts otherwise overrides this fixture by name and asks for it (`def app(app)`)."""
    from apptest import new_page

    return new_page().run()


def pytest_configure(config) -> None:
    # Keras 3.15 calls np.array(x, copy=False) on TF tensors: harmless noise under NumPy 2.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy")
    # A thread that dies with an exception after its test (a leaked probe, say) fails the run.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnhandledThreadExceptionWarning")
