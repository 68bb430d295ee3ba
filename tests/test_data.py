"""mlpdash.data: IDX parsing, every source, the auto choice and the bundled sample."""

from __future__ import annotations

import gzip
import shutil
import socket
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from mlpdash import data
from mlpdash.data import (
    ENV_VAR,
    SAMPLE_PATH,
    DataError,
    MnistSplits,
    load_mnist,
    read_idx,
    resolve_source,
    split_train,
    validate_source,
)

FULL_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"
needs_full_mnist = pytest.mark.skipif(
    not FULL_MNIST_DIR.is_dir(), reason=f"full MNIST not at {FULL_MNIST_DIR}"
)
STEMS = [stem for pair in data.IDX_STEMS.values() for stem in pair]
N_TINY_TRAIN = data.N_VAL + 50  # just enough that train[10000:] is non-empty
N_TINY_TEST = 30


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    raw = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def tiny_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), np.uint8), rng.integers(0, 10, n, np.uint8)


def write_idx_dir(folder: Path, gz: bool = True) -> dict[str, np.ndarray]:
    """The four IDX files of a tiny MNIST look-alike; returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(STEMS, (*tiny_arrays(N_TINY_TRAIN, 1), *tiny_arrays(N_TINY_TEST, 2)), strict=True))
    for stem, array in arrays.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array)
    return arrays


@pytest.fixture(scope="module")
def tiny_idx_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("idx")
    write_idx_dir(folder)
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """No env var, no tfds copy, no Keras cache and no network; returns the empty home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TFDS_DATA_DIR", str(home / "tfds"))
    monkeypatch.setenv("KERAS_HOME", str(home / "keras"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: False)
    return home


# ------------------------------------------------------------------ read_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_reads_plain_and_gzipped_files(tmp_path, name):
    images, labels = tiny_arrays(7, seed=0)
    assert np.array_equal(read_idx(write_idx(tmp_path / name, images)), images)
    assert np.array_equal(read_idx(str(write_idx(tmp_path / f"l{name}", labels))), labels)
    assert read_idx(tmp_path / name).dtype == np.uint8


def test_idx_folder_prefers_gz_but_reads_plain_files(tmp_path):
    written = write_idx_dir(tmp_path, gz=False)
    splits = load_mnist(f"idx:{tmp_path}")
    assert np.array_equal(splits.x_test, written["t10k-images-idx3-ubyte"])
    # a .gz beside the plain file wins
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(N_TINY_TEST, 7, np.uint8))
    assert set(load_mnist(f"idx:{tmp_path}").y_test) == {7}


def _missing_file(folder: Path) -> Path:
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    return folder / "train-labels-idx1-ubyte"


def _wrong_magic(folder: Path) -> Path:
    labels = tiny_arrays(N_TINY_TRAIN, 1)[1]
    return write_idx(folder / "train-labels-idx1-ubyte.gz", labels, magic=0x00000803)


def _truncated(folder: Path) -> Path:
    path = folder / "t10k-images-idx3-ubyte"
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    path.write_bytes(idx_bytes(tiny_arrays(N_TINY_TEST, 2)[0])[:-100])
    return path


def _truncated_gzip(folder: Path) -> Path:
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-50])
    return path


def _count_mismatch(folder: Path) -> Path:
    return write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(N_TINY_TEST - 1, np.uint8))


def _wrong_dims(folder: Path) -> Path:
    return write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((N_TINY_TEST, 28, 27), np.uint8))


@pytest.mark.parametrize(
    "break_folder, problem",
    [
        (_missing_file, "not found"),
        (_wrong_magic, "magic"),
        (_truncated, "truncated"),
        (_truncated_gzip, "truncated"),
        (_count_mismatch, "labels"),
        (_wrong_dims, "dimensions"),
    ],
)
def test_bad_idx_files_raise_a_data_error_naming_the_file(tmp_path, break_folder, problem):
    write_idx_dir(tmp_path)
    bad_path = break_folder(tmp_path)
    with pytest.raises(DataError, match=problem) as caught:
        load_mnist(f"idx:{tmp_path}")
    assert str(bad_path) in str(caught.value)


def test_missing_idx_folder_is_named_by_validate_and_load(tmp_path):
    folder = tmp_path / "nowhere"
    for check in (validate_source, load_mnist):
        with pytest.raises(DataError, match="folder not found") as caught:
            check(f"idx:{folder}")
        assert str(folder) in str(caught.value)


def test_a_folder_without_idx_files_is_refused_when_named_not_after_loading(tmp_path):
    (tmp_path / "notes.txt").write_text("not MNIST")
    with pytest.raises(DataError, match="holds no MNIST IDX files") as caught:
        resolve_source(f"idx:{tmp_path}")
    assert str(tmp_path) in str(caught.value)


def test_read_idx_rejects_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 definitely not IDX")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "junk")
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "absent")


# -------------------------------------------------------------------- splits


def test_split_train_takes_validation_from_the_front():
    x, y = np.arange(12_345), np.arange(12_345) % 10
    x_train, y_train, x_val, y_val = split_train(x, y)
    assert (len(x_train), len(x_val)) == (2_345, 10_000)
    assert x_val[0] == 0 and x_train[0] == 10_000 and np.array_equal(y_train, y[10_000:])
    assert [len(a) for a in split_train(x[:10], y[:10], n_val=3)] == [7, 7, 3, 3]
    with pytest.raises(DataError):
        split_train(x[:10_000], y[:10_000])


def test_idx_source_gives_the_standard_split(tiny_idx_dir):
    splits = load_mnist(f"idx:{tiny_idx_dir}")
    x_all, y_all = read_idx(tiny_idx_dir / f"{STEMS[0]}.gz"), read_idx(tiny_idx_dir / f"{STEMS[1]}.gz")
    assert splits.x_train.shape == (50, 28, 28) and splits.y_train.shape == (50,)
    assert splits.x_val.shape == (10_000, 28, 28) and splits.x_test.shape == (N_TINY_TEST, 28, 28)
    assert np.array_equal(splits.x_train, x_all[10_000:]) and np.array_equal(splits.y_val, y_all[:10_000])
    assert all(getattr(splits, key).dtype == np.uint8 for key in data.SPLIT_KEYS)
    assert splits.source == f"idx:{tiny_idx_dir.resolve()}"
    assert splits.description == f"full MNIST from IDX files in {tiny_idx_dir.resolve()}"
    assert splits.reason.endswith(", as chosen")


def test_splits_are_immutable(tiny_idx_dir):
    splits = load_mnist(f"idx:{tiny_idx_dir}")
    with pytest.raises(ValueError):
        splits.x_train[0, 0, 0] = 1
    with pytest.raises(AttributeError):
        splits.source = "sample"  # type: ignore[misc]


def test_idx_paths_resolve_against_cwd_and_expand_home(tiny_idx_dir, monkeypatch):
    monkeypatch.chdir(tiny_idx_dir.parent)
    assert resolve_source(f"idx:{tiny_idx_dir.name}")[0] == f"idx:{tiny_idx_dir.resolve()}"
    monkeypatch.setenv("HOME", str(tiny_idx_dir.parent))
    assert resolve_source(f"idx:~/{tiny_idx_dir.name}")[0] == f"idx:{tiny_idx_dir.resolve()}"


# -------------------------------------------------------------------- sample


def test_bundled_sample_is_small_balanced_real_mnist():
    assert SAMPLE_PATH.stat().st_size < 2_000_000
    splits = load_mnist("sample")
    assert (splits.source, splits.description) == ("sample", "bundled 10,000-digit MNIST sample")
    assert [len(splits.y_train), len(splits.y_val), len(splits.y_test)] == [6_000, 2_000, 2_000]
    assert splits.n_digits <= 10_000
    for split in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
        assert x.dtype == y.dtype == np.uint8 and x.shape[1:] == (28, 28)
        assert np.array_equal(np.bincount(y, minlength=10), np.full(10, len(y) // 10))
        # MNIST look: mean ink ~33/255, ~80 % background 0, a (nearly) blank border, white ink
        assert 25 < x.mean() < 45 and 0.75 < (x == 0).mean() < 0.85 and x.max() == 255
        border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
        assert (border == 0).mean() > 0.999


@needs_full_mnist
def test_sample_digits_are_the_documented_full_mnist_digits(full_mnist_dir):
    full = load_mnist(f"idx:{full_mnist_dir}")
    sample = load_mnist("sample")
    with np.load(SAMPLE_PATH) as npz:
        for split in ("train", "val", "test"):
            index = npz[f"{split}_index"]
            labels = getattr(full, f"y_{split}")
            assert np.array_equal(getattr(sample, f"x_{split}"), getattr(full, f"x_{split}")[index])
            # "the first N of each class": nothing of a class is skipped before its last pick
            for digit in range(10):
                picked = index[labels[index] == digit]
                assert np.array_equal(picked, np.flatnonzero(labels == digit)[: len(picked)])


# ------------------------------------------------------------ source choice


def test_auto_offline_falls_back_to_the_sample_fast(offline):
    start = time.perf_counter()
    source, reason = resolve_source()
    splits = load_mnist("auto")
    assert time.perf_counter() - start < 5
    assert source == splits.source == "sample"
    assert "no network" in reason and "10,000-digit MNIST sample" in reason
    assert splits.reason == reason


def test_auto_prefers_a_prepared_tfds_copy_without_probing(offline, monkeypatch):
    (offline / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
    (offline / "tfds" / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    (offline / "tfds" / "mnist" / "incomplete.AB12_9.9.9").mkdir()  # an interrupted build
    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: pytest.fail("probed"))
    source, reason = resolve_source("auto")
    assert source == "tfds" and str(offline / "tfds" / "mnist" / "3.0.1") in reason


def test_auto_uses_a_keras_cache_then_the_network(offline, monkeypatch):
    assert resolve_source()[0] == "sample"
    monkeypatch.setattr(data, "network_reachable", lambda *a, **k: True)
    assert resolve_source() == (
        "tfds",
        "no prepared tfds copy or Keras cache, network reachable"
        " — MNIST download via tensorflow-datasets",
    )
    cache = write_keras_cache(offline / ".keras")
    source, reason = resolve_source()
    assert source == "keras" and str(cache) in reason


def test_env_var_is_respected(offline, tiny_idx_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"idx:{tiny_idx_dir}")
    for spec in (None, "auto"):
        source, reason = resolve_source(spec)
        assert source == f"idx:{tiny_idx_dir.resolve()}" and ENV_VAR in reason
    assert load_mnist().source == source
    assert resolve_source("sample")[0] == "sample"  # an explicit spec wins
    monkeypatch.setenv(ENV_VAR, "auto")
    assert resolve_source()[0] == "sample"
    monkeypatch.setenv(ENV_VAR, "floppy")
    with pytest.raises(DataError, match=ENV_VAR):
        resolve_source()


def write_keras_cache(keras_home: Path) -> Path:
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    x_train, y_train = tiny_arrays(N_TINY_TRAIN, 3)
    x_test, y_test = tiny_arrays(N_TINY_TEST, 4)
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_keras_cache_source(offline, monkeypatch):
    with pytest.raises(DataError, match="no Keras MNIST cache"):
        validate_source("keras")
    with pytest.raises(DataError, match="no Keras MNIST cache"):
        load_mnist("keras")
    write_keras_cache(offline / "keras")
    splits = load_mnist("keras")
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (50, 10_000, N_TINY_TEST)
    assert np.array_equal(splits.y_test, tiny_arrays(N_TINY_TEST, 4)[1])
    assert splits.source == "keras" and splits.description == "full MNIST from the Keras cache"


def test_broken_keras_cache_names_the_file(offline):
    path = offline / "keras" / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match="missing arrays y_train") as caught:
        load_mnist("keras")
    assert str(path) in str(caught.value)


def test_tfds_offline_fails_fast_without_importing_tfds(offline, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow_datasets", raising=False)
    start = time.perf_counter()
    with pytest.raises(DataError, match="not downloaded and the network is unreachable"):
        load_mnist("tfds")
    assert time.perf_counter() - start < 5
    assert "tensorflow_datasets" not in sys.modules


def test_tfds_source_converts_a_prepared_copy(offline, monkeypatch):
    (offline / "tfds" / "mnist" / "3.0.1").mkdir(parents=True)
    (offline / "tfds" / "mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    x_train, y_train = tiny_arrays(N_TINY_TRAIN, 5)
    x_test, y_test = tiny_arrays(N_TINY_TEST, 6)
    calls = []

    def fake_load(name, **kwargs):
        calls.append((name, kwargs))
        as_tfds = lambda x, y: (x[..., None], y.astype(np.int64))  # noqa: E731
        return [as_tfds(x_train, y_train), as_tfds(x_test, y_test)]

    fake = types.SimpleNamespace(load=fake_load, as_numpy=lambda tree: tree)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    splits = load_mnist("tfds")
    name, kwargs = calls[0]
    assert name == "mnist:3.0.1" and kwargs["data_dir"] == str(offline / "tfds")
    assert kwargs["split"] == ["train", "test"] and kwargs["batch_size"] == -1
    assert splits.x_train.shape == (50, 28, 28) and splits.y_train.dtype == np.uint8
    assert np.array_equal(splits.x_val, x_train[:10_000]) and np.array_equal(splits.y_test, y_test)


def test_network_probe_is_bounded_even_when_dns_hangs(monkeypatch):
    released = threading.Event()

    def hanging_lookup(*args, **kwargs):
        released.wait(10)
        raise socket.gaierror("lookup abandoned by the test")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    start = time.perf_counter()
    assert data.network_reachable(timeout=0.3) is False
    assert time.perf_counter() - start < 1.5
    # The probe outlives its answer; end it here, so no thread of this test outlives the test.
    released.set()
    for thread in threading.enumerate():
        if thread.name == data.PROBE_THREAD:
            thread.join(5)
            assert not thread.is_alive()


@pytest.mark.parametrize("spec", ["foo", "idx", "tfds:mnist", ""])
def test_unknown_spec_lists_the_valid_forms(spec):
    for check in (validate_source, resolve_source, load_mnist):
        with pytest.raises(DataError, match="valid forms: tfds, idx:DIR, keras, sample, auto"):
            check(spec)


def test_valid_specs_validate_cheaply_and_case_insensitively(tiny_idx_dir):
    for spec in ("tfds", "SAMPLE", " auto ", f"IDX:{tiny_idx_dir}"):
        validate_source(spec)
    assert resolve_source("Sample") == ("sample", "bundled 10,000-digit MNIST sample, as chosen")


# -------------------------------------------------------------- full MNIST


@needs_full_mnist
def test_full_mnist_from_idx(full_mnist_dir):
    start = time.perf_counter()
    splits = load_mnist(f"idx:{full_mnist_dir}")
    assert time.perf_counter() - start < 2
    assert isinstance(splits, MnistSplits)
    assert [len(splits.x_train), len(splits.x_val), len(splits.x_test)] == [50_000, 10_000, 10_000]
    assert splits.x_train.shape[1:] == (28, 28) and splits.x_test.dtype == np.uint8
    for labels in (splits.y_train, splits.y_val, splits.y_test):
        counts = np.bincount(labels, minlength=10)
        assert len(counts) == 10 and counts.min() > 0.08 * len(labels) and counts.max() < 0.12 * len(labels)
    assert splits.y_test[:5].tolist() == [7, 2, 1, 0, 4]  # the famous first test digits
    assert splits.y_val[:5].tolist() == [5, 0, 4, 1, 9]


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_declares(tmp_path):
    # A valid header for 10 labels, then 200 MB of zeros that compress to ~200 KB.
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_bytes(np.arange(10, dtype=np.uint8) % 10))
        chunk = bytes(1 << 20)
        for _ in range(200):
            f.write(chunk)
    assert path.stat().st_size < 1_000_000
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    labels = read_idx(path)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert labels.tolist() == list(range(10))
    assert grown_kb < 50_000  # the 200 MB tail was never unpacked


def test_a_header_declaring_gigabytes_is_refused_before_reading(tmp_path):
    header = (0x00000803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (100_000, 280, 280))
    path = tmp_path / "images"
    path.write_bytes(header + bytes(100))
    with pytest.raises(DataError, match="declares 7,840,000,000 data bytes"):
        read_idx(path)


def test_idx_folders_can_be_confined_to_a_root(tiny_idx_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    shutil.copytree(tiny_idx_dir, root / "mnist")
    monkeypatch.setenv("MLPDASH_DATA_ROOT", str(root))
    assert resolve_source("idx:mnist")[0] == f"idx:{root / 'mnist'}"  # relative to the root
    assert load_mnist(f"idx:{root / 'mnist'}").x_train.shape[1:] == (28, 28)  # absolute, inside
    # Outside the root the answer is the same whether the folder exists or not.
    answers = []
    for folder in ("/etc", "/no/such/folder", "mnist/../..", str(tiny_idx_dir)):
        with pytest.raises(DataError) as err:
            validate_source(f"idx:{folder}")
        answers.append(str(err.value))
    assert len(set(answers)) == 1 and "must be inside" in answers[0]


def test_pixels_undoes_scale_rounded_and_kept_in_range():
    from mlpdash.mnist import pixels, scale

    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(pixels(scale(raw)), raw)
    assert pixels(np.array([-0.5, 0.0019, 0.0021, 1.5, np.nan])).tolist() == [0, 0, 1, 255, 0]
    assert pixels(np.zeros((2, 3))).dtype == np.uint8
