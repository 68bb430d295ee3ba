"""The one MNIST loader for mlpdash.

Every caller gets the same `MnistSplits` whatever the source:

* ``tfds``     – tensorflow-datasets (a prepared copy, or a download when online)
* ``idx:DIR``  – the four original IDX files in DIR, gzipped or plain
* ``keras``    – an existing Keras cache ``mnist.npz`` (never downloaded here)
* ``sample``   – a small real MNIST subset bundled with the package
* ``auto``     – ``$MLPDASH_DATA`` if set, else the best of the above that works
  right now, falling back to ``sample`` within a few seconds when offline

Full sources share one split: training = train[10000:], validation =
train[:10000], test = the test split (tfds keeps train in a different fixed
order than the IDX files and Keras, so its validation digits differ). The sample carries its own split
(see ``scripts/make_sample.py``). Images are uint8 [N, 28, 28] with bright ink
on a 0 background, labels uint8 [N]; all returned arrays are read-only.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
import socket
import ssl
import threading
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mlpdash.files import UnsafeFileError, read_npz
from mlpdash.mnist import IMAGE_SIDE

ENV_VAR = "MLPDASH_DATA"
N_VAL = 10_000
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
GZIP_MAGIC = b"\x1f\x8b"
# Full MNIST's largest file holds 47 MB; EMNIST-sized files still fit. A header declaring more is
# refused before anything is unpacked.
MAX_IDX_BYTES = 1 << 30
MAX_NPZ_BYTES = 128 << 20  # full MNIST unpacks to 55 MB
DATA_ROOT_ENV = "MLPDASH_DATA_ROOT"
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IDX_STEMS = {  # split -> (images file, labels file) without the optional .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
FULL_KEYS = ("x_train", "y_train", "x_test", "y_test")  # Keras cache layout
SAMPLE_PATH = Path(__file__).resolve().parent / "sample" / "mnist_sample.npz"
NAMED_SOURCES = ("tfds", "keras", "sample", "auto")
VALID_FORMS = "tfds, idx:DIR, keras, sample, auto"
PROBE_ADDRESS = ("storage.googleapis.com", 443)  # where tfds downloads MNIST from
PROBE_TIMEOUT_S = 2.0
PROBE_THREAD = "mlpdash-network-probe"
TFDS_OFFLINE = (
    "tfds: MNIST is not downloaded and the network is unreachable"
    " — use --data sample or idx:DIR"
)
_VERSION_DIR = re.compile(r"^\d+\.\d+\.\d+$")


class DataError(ValueError):
    """MNIST could not be loaded; the message names the file and the problem."""


@dataclass(frozen=True)
class MnistSplits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # canonical source actually used: "idx:/abs/dir", "tfds", "keras", "sample"
    reason: str  # human sentence saying why this source was used

    @property
    def n_digits(self) -> int:
        return len(self.y_train) + len(self.y_val) + len(self.y_test)

    @property
    def description(self) -> str:
        """Short human label, e.g. "bundled 10,000-digit MNIST sample"."""
        return _describe(self.source, self.n_digits)


# --------------------------------------------------------------------------- IDX


def read_idx(path: str | Path) -> np.ndarray:
    """Read one unsigned-byte IDX file (gzipped or plain) into an array."""
    return _read_idx(Path(path))


def _read_idx(path: Path, magic: int | None = None) -> np.ndarray:
    """Parse an unsigned-byte IDX file, insisting on `magic` when given.

    Reads the header first and then exactly the bytes it declares, never more: a small gzipped file
    that unpacks to gigabytes (or a header that declares them) is refused before it is unpacked.
    """
    try:
        with _open_idx(path) as stream:
            head = stream.read(4)
            if len(head) < 4:
                raise DataError(f"{path}: too short for an IDX header ({len(head)} bytes)")
            found = int.from_bytes(head, "big")
            # 0x0000 08 nn: the 08 means unsigned bytes, nn is the number of dimensions
            if head[:3] != b"\x00\x00\x08" or head[3] == 0 or magic not in (None, found):
                expected = "an unsigned-byte IDX file" if magic is None else f"0x{magic:08X}"
                raise DataError(f"{path}: wrong magic number 0x{found:08X}, expected {expected}")
            header_len = 4 + 4 * head[3]
            shape = stream.read(header_len - 4)
            if len(shape) < header_len - 4:
                raise DataError(f"{path}: truncated header ({4 + len(shape)} of {header_len} bytes)")
            dims = tuple(int(d) for d in np.frombuffer(shape, ">u4"))
            if magic == IMAGES_MAGIC and dims[1:] != IMAGE_SHAPE:
                raise DataError(f"{path}: wrong dimensions {dims}, expected [N, 28, 28]")
            size = math.prod(dims)  # Python ints: a garbage header must not overflow
            if size > MAX_IDX_BYTES:
                raise DataError(f"{path}: the header declares {size:,} data bytes for shape {dims}, "
                                f"more than the {MAX_IDX_BYTES:,} an MNIST-like file needs")
            data = _read_exactly(stream, size)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip ({exc})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if len(data) < size:
        raise DataError(
            f"{path}: truncated — header promises {size:,} data bytes"
            f" for shape {dims}, file has {len(data):,}"
        )
    return np.frombuffer(data, np.uint8).reshape(dims)  # no copy: `data` is ours alone


def _open_idx(path: Path) -> io.BufferedIOBase:
    """The file as a byte stream, gunzipped on the fly when it starts with the gzip signature (sniffed:
    an IDX file always starts with 00 00, whatever its name)."""
    raw = open(path, "rb")  # noqa: SIM115 - handed on, closed by the caller's `with`
    if raw.peek(2)[:2] == GZIP_MAGIC:
        return _GzipOwning(raw)
    return raw


class _GzipOwning(gzip.GzipFile):
    """A GzipFile that closes the file it reads from (GzipFile leaves a passed file object open)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _read_exactly(stream: io.BufferedIOBase, size: int) -> bytearray:
    """Up to `size` bytes (fewer only at the end of the stream), without reading past them and
    without a second copy (the largest allowed file would otherwise need twice its size)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        count = stream.readinto(view[done:])
        if not count:
            break
        done += count
    view.release()
    if done < size:
        del buffer[done:]
    return buffer


def _idx_path(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder / stem}[.gz]: file not found")


def _load_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = (_idx_path(folder, stem) for stem in IDX_STEMS[split])
    images = _read_idx(images_path, IMAGES_MAGIC)
    labels = _read_idx(labels_path, LABELS_MAGIC)
    _check_pair(images, labels, str(images_path), str(labels_path))
    return images, labels


def _load_idx(folder: Path) -> tuple[np.ndarray, ...]:
    _check_folder(folder)
    return (*_load_idx_split(folder, "train"), *_load_idx_split(folder, "test"))


# ------------------------------------------------------------------ validation


def _check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{images_name}: wrong dimensions {images.shape}, expected [N, 28, 28]")
    if labels.ndim != 1:
        raise DataError(f"{labels_name}: wrong dimensions {labels.shape}, expected [N]")
    if len(images) != len(labels):
        raise DataError(
            f"{images_name} has {len(images):,} images but {labels_name}"
            f" has {len(labels):,} labels"
        )


def _check_folder(folder: Path) -> None:
    """The folder exists and holds the four files (checked when the folder is named, not after
    Start: a folder of something else must not pass for full MNIST)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: IDX folder not found")
    missing = [stem for stems in IDX_STEMS.values() for stem in stems
               if not any((folder / name).is_file() for name in (f"{stem}.gz", stem))]
    if len(missing) == 4:
        raise DataError(f"{folder} holds no MNIST IDX files (expected train-images-idx3-ubyte and "
                        "the three others, gzipped or not)")
    if missing:
        raise DataError("MNIST IDX file not found (gzipped or not): "
                        + ", ".join(str(folder / stem) for stem in missing))


def split_train(
    x: np.ndarray, y: np.ndarray, n_val: int = N_VAL
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): the first `n_val` digits validate."""
    if len(x) <= n_val:
        raise DataError(f"training split has {len(x):,} digits, need more than {n_val:,}")
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


# ---------------------------------------------------------------- npz sources


def _load_npz(path: Path, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The named image/label arrays of an .npz file (read bounded: a Keras cache is the user's file,
    which may be anything), checked pairwise."""
    try:
        arrays = read_npz(path, MAX_NPZ_BYTES, max_members=2 * len(keys))
    except UnsafeFileError as exc:
        raise DataError(f"unreadable: {exc}") from None
    found = {key: arrays[key] for key in keys if key in arrays}
    missing = [key for key in keys if key not in found]
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)}")
    for images, labels in zip(keys[::2], keys[1::2], strict=True):
        _check_pair(found[images], found[labels], f"{path}[{images}]", f"{path}[{labels}]")
    return tuple(found[key] for key in keys)


def _keras_cache() -> Path | None:
    """An existing Keras MNIST cache, the one Keras itself would use first."""
    candidates = [Path.home() / ".keras" / "datasets" / "mnist.npz"]
    if os.environ.get("KERAS_HOME"):
        candidates.insert(0, Path(os.environ["KERAS_HOME"]) / "datasets" / "mnist.npz")
    return next((path for path in candidates if path.is_file()), None)


def _require_keras_cache() -> Path:
    path = _keras_cache()
    if path is None:
        raise DataError(
            "keras: no Keras MNIST cache ($KERAS_HOME or ~/.keras/datasets/mnist.npz);"
            " mlpdash never downloads it — use --data sample or idx:DIR"
        )
    return path


def _require_sample() -> Path:
    if not SAMPLE_PATH.is_file():
        raise DataError(f"{SAMPLE_PATH}: bundled sample missing — reinstall mlpdash")
    return SAMPLE_PATH


def _load_keras() -> tuple[np.ndarray, ...]:
    return _load_npz(_require_keras_cache(), FULL_KEYS)


def _load_sample() -> tuple[np.ndarray, ...]:
    return _load_npz(_require_sample(), SPLIT_KEYS)


@cache
def _sample_size() -> int:
    return sum(len(labels) for labels in _load_sample()[1::2])


# ----------------------------------------------------------------------- tfds


def _tfds_data_dir() -> Path:
    # same rule as tensorflow_datasets.core.constants, without the slow import
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def _tfds_prepared() -> Path | None:
    """The newest prepared tfds MNIST version folder, found on disk only."""
    versions = [
        info.parent
        for info in (_tfds_data_dir() / "mnist").glob("*/dataset_info.json")
        if _VERSION_DIR.match(info.parent.name)
    ]
    return max(versions, key=lambda p: tuple(map(int, p.name.split("."))), default=None)


def network_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Does the tfds download host answer a verified TLS handshake within `timeout`?"""
    reached: list[bool] = []
    host = PROBE_ADDRESS[0]

    def attempt() -> None:
        try:
            # TCP alone is not enough: intercepting proxies accept every connection
            with (
                socket.create_connection(PROBE_ADDRESS, timeout=timeout) as sock,
                ssl.create_default_context().wrap_socket(sock, server_hostname=host),
            ):
                reached.append(True)
        except OSError:  # includes socket.gaierror, timeouts and ssl.SSLError
            pass

    # DNS lookups ignore socket timeouts, so bound the whole attempt from outside
    probe = threading.Thread(target=attempt, name=PROBE_THREAD, daemon=True)
    probe.start()
    probe.join(timeout)
    return bool(reached)


def _load_tfds() -> tuple[np.ndarray, ...]:
    # tfds stores MNIST in its own fixed order, so its train[:10000] is another
    # validation set than that of idx/keras (same digits overall, same test set)
    prepared = _tfds_prepared()
    # an offline tfds download retries for minutes before failing
    if prepared is None and not network_reachable():
        raise DataError(TFDS_OFFLINE)
    import tensorflow_datasets as tfds  # slow import, only when this source is used

    name = f"mnist:{prepared.name}" if prepared else "mnist"
    try:
        train, test = tfds.load(
            name,
            split=["train", "test"],
            batch_size=-1,
            as_supervised=True,
            shuffle_files=False,
            data_dir=str(_tfds_data_dir()),
        )
    except Exception as exc:  # tfds raises many unrelated types; report them uniformly
        raise DataError(f"tfds: could not load MNIST ({exc})") from exc
    arrays: list[np.ndarray] = []
    for images, labels in tfds.as_numpy([train, test]):
        arrays += [np.squeeze(images, axis=-1), labels.astype(np.uint8)]
    _check_pair(arrays[0], arrays[1], "tfds train images", "tfds train labels")
    _check_pair(arrays[2], arrays[3], "tfds test images", "tfds test labels")
    return tuple(arrays)


# ------------------------------------------------------------ source choice


def _canonical(spec: str) -> str:
    """Normalise a source spec; idx folders become absolute paths."""
    text = spec.strip()
    kind, colon, folder = text.partition(":")
    if colon and kind.lower() == "idx":
        if not folder.strip():
            raise DataError("idx: needs a folder, e.g. idx:../shared/data/mnist")
        try:
            folder_path = Path(folder.strip()).expanduser()
        except RuntimeError:  # "~nobody": no such user (said the same way whether it exists or not)
            raise DataError(f"idx: cannot read the folder {folder.strip()!r}") from None
        return "idx:" + str(_confined(folder_path))
    if text.lower() in NAMED_SOURCES:
        return text.lower()
    raise DataError(f"unknown data source {spec!r}; valid forms: {VALID_FORMS}")


def _confined(folder: Path) -> Path:
    """The absolute folder; with $MLPDASH_DATA_ROOT set, relative to that root and refused outside
    it, before anything on disk is looked at (so the answer never says whether a folder exists)."""
    root_text = os.environ.get(DATA_ROOT_ENV, "").strip()
    if not root_text:
        return folder.resolve()
    root = Path(root_text).expanduser().resolve()
    resolved = (root / folder).resolve()  # an absolute `folder` replaces the root here
    if resolved != root and root not in resolved.parents:
        raise DataError(f"idx: data folders must be inside {root} ({DATA_ROOT_ENV}); "
                        f"give a folder relative to it")
    return resolved


def _describe(source: str, n_digits: int | None = None) -> str:
    kind, _, folder = source.partition(":")
    if kind == "sample":
        return f"bundled {n_digits or _sample_size():,}-digit MNIST sample"
    return {
        "idx": f"full MNIST from IDX files in {folder}",
        "tfds": "full MNIST via tensorflow-datasets",
        "keras": "full MNIST from the Keras cache",
    }[kind]


def validate_source(spec: str) -> None:
    """Cheap check for CLI and UI: the spec parses and what it names exists."""
    source = _canonical(spec)
    if source.startswith("idx:"):
        _check_folder(Path(source[4:]))
    elif source == "keras":
        _require_keras_cache()
    elif source == "sample":
        _require_sample()


def _resolve_auto() -> tuple[str, str]:
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        try:
            source = _canonical(env)
        except DataError as exc:
            raise DataError(f"{ENV_VAR}: {exc}") from None
        if source != "auto":
            validate_source(source)
            return source, f"{ENV_VAR}={env} — {_describe(source)}"
    prepared = _tfds_prepared()
    if prepared is not None:
        return "tfds", f"prepared tensorflow-datasets copy in {prepared} — {_describe('tfds')}"
    keras = _keras_cache()
    if keras is not None:
        return "keras", f"no prepared tfds copy; Keras cache at {keras} — {_describe('keras')}"
    if network_reachable():
        return "tfds", (
            "no prepared tfds copy or Keras cache, network reachable"
            " — MNIST download via tensorflow-datasets"
        )
    return "sample", f"no prepared tfds copy, no Keras cache and no network — {_describe('sample')}"


def resolve_source(spec: str | None = None) -> tuple[str, str]:
    """(canonical source, reason) without loading; None means $MLPDASH_DATA, then auto."""
    source = "auto" if spec is None else _canonical(spec)
    if source == "auto":
        return _resolve_auto()
    validate_source(source)
    return source, f"{_describe(source)}, as chosen"


def _load_full(source: str) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) of a full source, before the val split."""
    if source.startswith("idx:"):
        return _load_idx(Path(source[4:]))
    return {"tfds": _load_tfds, "keras": _load_keras}[source]()


def load_mnist(spec: str | None = None) -> MnistSplits:
    """Load MNIST from `spec` (see module docstring) as read-only train/val/test splits."""
    source, reason = resolve_source(spec)
    if source == "sample":
        arrays = _load_sample()
    else:
        x_train, y_train, x_test, y_test = _load_full(source)
        arrays = (*split_train(x_train, y_train), x_test, y_test)
    for array in arrays:
        array.setflags(write=False)  # splits may be cached and shared between runs
    return MnistSplits(*arrays, source=source, reason=reason)
