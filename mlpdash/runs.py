"""Run folders: every training run saved as it goes, listed and read back without trusting the folder.

Layout of `runs/<YYYYmmdd-HHMMSS>-<id>/`:
  config.json           the TrainConfig, the data source and the creation time (`created`, Unix s)
  training.lock         held (flock) by the process that trains the run; gone once the run has ended
  metrics.jsonl         one JSON object per finished epoch
  model.weights.npz     the model's weights after the newest finished epoch (`w0`, `w1`, ... in layer
                        order: kernel, bias, kernel, bias, ...), rewritten at the end of every epoch
  snapshots/kernel-EEEEE.npy
                        the first-layer kernel [784, units] at step 0 and after each epoch (float16,
                        float32 where a weight is beyond float16's range); thinned like the live ones
  timeline/epoch-EEEEE.npz
                        every layer's weights (`w0`, `w1`, ... as above; float16, float32 where needed)
                        at step 0 and after each epoch, with the validation split's answers then
                        (`predictions` uint8, `confidences` float16); thinned like the live ones
  timeline/confusions.npz
                        `epochs` and `confusions` [E, 10, 10]: the validation confusion matrix of every
                        epoch, rewritten at each epoch's end (runs older than these files lack both)
  test_predictions.npz  `labels`, `predictions`, `confidences` for every test image, in test order
  mistakes.json         the misclassified test images: index, label, prediction, confidence
  model.keras           the Keras model, for use outside mlpdash (mlpdash itself never loads it)
  model/                a SavedModel: serving_default(images uint8 [N,28,28]) -> probabilities, digit
  failure.json          only when the run failed or diverged: the error
  summary.json          written last: its presence marks a run that ended (finished or stopped)

Every file is written atomically (see `files`), and the end-of-epoch files are synced, so a killed
process or a power loss loses at most the epoch in flight. A run whose process died is listed as
*interrupted after N epochs*: its `training.lock` exists but no process holds it (the kernel drops an
flock with its holder), which tells it apart from a run still training here or in another process.

Reading treats the folder as untrusted: only regular files, no symbolic links, size caps, every field
validated; a model is rebuilt from the validated config by our own code and only its weights are read.
A damaged folder is listed as damaged, naming the file and the problem; the rest still works.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.budgets import snapshot_bytes, timeline_bytes
from mlpdash.config import MAX_EPOCHS, TrainConfig
from mlpdash.timeline import MAX_RECORDS, EpochRecord, Timeline, compact
from mlpdash.files import (
    UnsafeFileError,
    fsync_dir,
    is_temporary,
    locked,
    open_regular,
    read_archive,
    read_json,
    read_npy,
    read_npz,
    read_regular,
    remove_entry,
    write_bytes_atomic,
    write_dir_atomic,
    write_file_atomic,
    write_json_atomic,
    write_npy_atomic,
    write_npz_atomic,
)

DEFAULT_RUNS_DIR = Path("runs")
RUNS_ENV_VAR = "MLPDASH_RUNS"
METRIC_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
LOCK_FILE = "training.lock"
MODEL_WEIGHTS = "model.weights.npz"
LEGACY_MODEL = "model.keras"
LEGACY_WEIGHTS = "weights.npz"
LEGACY_MEMBERS = 8  # a .keras archive holds config.json, metadata.json and model.weights.h5
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_NAME = re.compile(r"^kernel-(\d{5})\.npy$")
TIMELINE_DIR = "timeline"
RECORD_NAME = re.compile(r"^epoch-(\d{5})\.npz$")
CONFUSIONS_FILE = "confusions.npz"
NUM_CLASSES = 10
PIXELS = 784
NPY_HEADER_BYTES = 4096  # an .npy header is 128 bytes for our arrays; NumPy allows up to 64 KiB on write
# A metrics row is ~150 bytes; 1000 epochs fit many times over.
MAX_METRICS_BYTES = 4 << 20
MAX_TEST_RESULTS_BYTES = 64 << 20
# Clocks differ between machines a folder may come from: a little future is tolerated, 2099 is not.
CLOCK_SLACK_S = 3600
# A hidden run folder this old whose lock no one holds was abandoned by a crash during its creation.
ABANDONED_AFTER_S = 60
_ABANDONED_RUN = re.compile(r"^\.\d{8}-\d{6}-[0-9a-f]{6}\.tmp$")
STATUSES = ("training", "finished", "stopped", "interrupted", "diverged", "failed", "damaged")
OUTCOMES = ("finished", "stopped", "interrupted")
MAX_COUNT = 10**8  # a test split larger than this is no MNIST
MAX_VALIDATION = 10**6  # digits a timeline record may answer for (MNIST's validation split: 10,000)
NOTES_FILE = "notes.json"
MAX_NAME_CHARS = 80
MAX_NOTE_CHARS = 2000
# Deleted runs wait here (hidden from the listing) for a day, so that a slip can be undone.
TRASH_DIR = ".trash"
TRASH_KEEP_S = 24 * 3600
_TRASHED = re.compile(r"^(?P<run>[^/@]+)@(?P<when>\d{10,12})$")


LOG = logging.getLogger("mlpdash")


class RunError(ValueError):
    """A run folder that cannot be read; the message names the folder and the problem."""


def runs_root(root: str | Path | None = None) -> Path:
    """`root`, else $MLPDASH_RUNS, else ./runs."""
    return Path(root or os.environ.get(RUNS_ENV_VAR) or DEFAULT_RUNS_DIR)


def _weights_limit(config: TrainConfig) -> int:
    # float32 weights plus generous room for the archive's headers.
    return 4 * config.parameters + (1 << 20)


def layer_sizes(config: TrainConfig) -> list[int]:
    return [PIXELS, *config.hidden, NUM_CLASSES]


def layer_shapes(config: TrainConfig) -> list[tuple[int, ...]]:
    """The shapes of the network's arrays in order: kernel, bias, kernel, bias, ..."""
    sizes = layer_sizes(config)
    return [shape for a, b in zip(sizes, sizes[1:]) for shape in ((a, b), (b,))]


def _weight_caps(config: TrainConfig) -> dict[str, int]:
    """What each array `w0`, `w1`, ... may unpack to: float32 of its layer's shape and its header."""
    return {f"w{i}": 4 * math.prod(shape) + NPY_HEADER_BYTES for i, shape in enumerate(layer_shapes(config))}


def _kernel_limit(config: TrainConfig) -> int:
    return 4 * PIXELS * _first_units(config) + 4096


def _first_units(config: TrainConfig) -> int:
    return config.hidden[0] if config.hidden else NUM_CLASSES


# --- writing a run -------------------------------------------------------------------------------


class RunWriter:
    """Creates a run folder, holds its lock while the run trains, and writes its files as it goes."""

    def __init__(self, root: str | Path | None, config: TrainConfig, data_source: str) -> None:
        base = runs_root(root)
        base.mkdir(parents=True, exist_ok=True)
        created = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
        name = f"{stamp}-{secrets.token_hex(3)}"
        # Built under a hidden name and renamed into place, so a listing never sees a folder
        # without its config or its lock.
        building = base / f".{name}.tmp"
        building.mkdir()
        try:
            self._lock_fd = os.open(building / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_json_atomic(building / "config.json",
                              {"config": config.to_dict(), "data_source": data_source, "created": created})
            (building / SNAPSHOT_DIR).mkdir()
            (building / TIMELINE_DIR).mkdir()
            os.rename(building, base / name)
            fsync_dir(base)
        except BaseException:
            remove_entry(building)
            raise
        self.path = base / name
        self.config = config

    @classmethod
    def reopen(cls, info: RunInfo) -> RunWriter:
        """A writer for an interrupted run's folder (to record its test result); it takes the run's
        lock, so a run still training, or being evaluated from another tab, is refused."""
        writer = cls.__new__(cls)
        writer.path, writer.config = info.path, info.config
        lock = info.path / LOCK_FILE
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The lock file may have been removed (an evaluation that just ended) after we opened
            # it: a lock on a deleted file guards nothing.
            if os.fstat(fd).st_ino != os.stat(lock, follow_symlinks=False).st_ino:
                raise BlockingIOError
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            raise RunError(f"{info.path}: this run is being written (training or evaluated elsewhere); "
                           "try again in a moment") from None
        writer._lock_fd = fd
        if _exists(info.path / "summary.json"):
            writer.close()
            raise RunError(f"{info.path}: this run has been evaluated already")
        return writer

    def write_epoch(self, rows: Iterable[Mapping[str, Any]], weights: list[np.ndarray] | None) -> None:
        """The end of an epoch: the model's weights first, then the metrics that count the epoch,
        so a crash between the two leaves weights at least as new as the metrics say."""
        if weights is not None:
            self.write_model_weights(weights)
        lines = "".join(json.dumps({k: row[k] for k in METRIC_KEYS}) + "\n" for row in rows)
        write_bytes_atomic(self.path / "metrics.jsonl", lines.encode())

    def write_model_weights(self, weights: list[np.ndarray]) -> None:
        # Uncompressed: trained weights barely compress, and compressing cost half a second a run.
        write_npz_atomic(self.path / MODEL_WEIGHTS, compress=False,
                         **{f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(weights)})

    def write_snapshot(self, kernel: np.ndarray, epoch: int) -> None:
        write_npy_atomic(self.path / SNAPSHOT_DIR / f"kernel-{epoch:05d}.npy", compact(kernel))

    def remove_snapshot(self, epoch: int) -> None:
        remove_entry(self.path / SNAPSHOT_DIR / f"kernel-{epoch:05d}.npy")

    def write_record(self, record: EpochRecord) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(record.weights)}
        write_npz_atomic(self.path / TIMELINE_DIR / f"epoch-{record.epoch:05d}.npz", compress=False,
                         predictions=record.predictions, confidences=record.confidences, **arrays)

    def remove_record(self, epoch: int) -> None:
        remove_entry(self.path / TIMELINE_DIR / f"epoch-{epoch:05d}.npz")

    def write_confusions(self, epochs: Sequence[int], confusions: Sequence[np.ndarray]) -> None:
        write_npz_atomic(self.path / TIMELINE_DIR / CONFUSIONS_FILE, epochs=np.asarray(epochs, np.int64),
                         confusions=np.asarray(confusions, np.int64).reshape(len(epochs), NUM_CLASSES, NUM_CLASSES))

    def write_test_results(self, predictions: Mapping[str, np.ndarray], mistakes: Mapping[str, list]) -> None:
        write_npz_atomic(self.path / "test_predictions.npz", **predictions)
        write_json_atomic(self.path / "mistakes.json", dict(mistakes))

    def write_model(self, model: Any) -> None:
        # Imported here: TensorFlow loads only where a model is saved.
        from mlpdash.model import export_saved_model

        write_dir_atomic(self.path / "model", lambda tmp: export_saved_model(model, tmp))
        write_file_atomic(self.path / LEGACY_MODEL, model.save, suffix=".keras")  # Keras insists

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / "summary.json", dict(summary))

    def write_failure(self, error: str, kind: str = "failed") -> None:
        write_json_atomic(self.path / "failure.json", {"error": error, "kind": kind})

    def discard(self) -> None:
        """Remove the run folder: the job ended before it trained anything worth keeping."""
        self.close()
        remove_entry(self.path)

    def close(self) -> None:
        """The run has ended: drop the lock file, then the lock."""
        if self._lock_fd is None:
            return
        remove_entry(self.path / LOCK_FILE)
        os.close(self._lock_fd)
        self._lock_fd = None


# --- the user's names, notes and deletions -------------------------------------------------------


def set_notes(path: Path, name: str, note: str) -> None:
    """Give a run a name and a note (either may be empty); ValueError for text that cannot be one."""
    name, note = _clean_text(name, MAX_NAME_CHARS, "name", single_line=True), _clean_text(note, MAX_NOTE_CHARS, "note")
    if not (Path(path) / "config.json").is_file():
        raise RunError(f"{path} is not a run folder")
    with locked(Path(path)):  # two tabs saving at once: one whole file wins, never a mix
        write_json_atomic(Path(path) / NOTES_FILE, {"name": name, "note": note})


def _clean_text(text: str, limit: int, what: str, single_line: bool = False) -> str:
    if not isinstance(text, str):
        raise ValueError(f"a run's {what} is text")
    text = text.strip()
    if len(text) > limit:
        raise ValueError(f"a run's {what} is at most {limit} characters (this one has {len(text)})")
    allowed = "" if single_line else "\n\t"
    if any(ord(c) < 32 and c not in allowed for c in text):
        raise ValueError(f"a run's {what} cannot hold control characters" +
                         (" or line breaks" if single_line else ""))
    return text


def _read_notes(path: Path) -> dict[str, str]:
    """The run's name and note; a notes file that is damaged reads as none (it holds nothing the run
    needs, and must never hide the run)."""
    try:
        raw = read_json(path / NOTES_FILE, 64 << 10)
        name = _clean_text(raw["name"], MAX_NAME_CHARS, "name", single_line=True)
        note = _clean_text(raw["note"], MAX_NOTE_CHARS, "note")
    except (UnsafeFileError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    return {"name": name, "note": note}


@dataclass(frozen=True)
class TrashedRun:
    path: Path  # in the trash folder
    run_id: str
    deleted: float  # unix time

    def purge_at(self) -> float:
        return self.deleted + TRASH_KEEP_S


def trash_run(path: Path, now: float | None = None) -> TrashedRun:
    """Move a run folder to the trash (kept a day, then removed); RunError for a run being trained."""
    path = Path(path)
    if not (path / "config.json").is_file() or path.is_symlink():
        raise RunError(f"{path} is not a run folder")
    if _lock_held(path):
        raise RunError(f"{path.name} is being trained: stop it before deleting it")
    trash = path.parent / TRASH_DIR
    trash.mkdir(exist_ok=True)
    if trash.is_symlink():  # deleting must never move a run out of the runs folder
        raise RunError(f"{trash} is a link, not the runs folder's own trash")
    deleted = int(now if now is not None else time.time())
    target = trash / f"{path.name}@{deleted}"
    while target.exists():  # the same run deleted twice within a second (restored in between)
        deleted += 1
        target = trash / f"{path.name}@{deleted}"
    os.rename(path, target)
    fsync_dir(path.parent)
    return TrashedRun(target, path.name, float(deleted))


def trashed_runs(root: str | Path | None = None) -> list[TrashedRun]:
    """The runs in the trash, most recently deleted first."""
    trash = runs_root(root) / TRASH_DIR
    if not trash.is_dir() or trash.is_symlink():  # never read, nor empty, a trash that lies elsewhere
        return []
    found = []
    for entry in trash.iterdir():
        match = _TRASHED.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            found.append(TrashedRun(entry, match["run"], float(match["when"])))
    return sorted(found, key=lambda t: t.deleted, reverse=True)


def restore_run(trashed: TrashedRun) -> Path:
    """Move a deleted run back; RunError when a run of that name has appeared meanwhile."""
    target = trashed.path.parent.parent / trashed.run_id
    if target.exists():
        raise RunError(f"a run named {trashed.run_id} exists already")
    os.rename(trashed.path, target)
    fsync_dir(target.parent)
    return target


def empty_trash(root: str | Path | None = None, now: float | None = None) -> int:
    """Remove the runs deleted more than a day ago; returns how many went."""
    now = time.time() if now is None else now
    gone = 0
    for trashed in trashed_runs(root):
        if trashed.purge_at() <= now:
            try:
                remove_entry(trashed.path)
            except OSError:  # one that cannot go (read-only, say) must not stop the listing
                continue
            gone += 1
    return gone


# --- reading runs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """One entry of the run listing; `status` is one of STATUSES."""

    path: Path
    status: str
    config: TrainConfig | None = None
    data_source: str | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None
    created: float = 0.0
    epochs_completed: int = 0
    has_model: bool = False
    name: str = ""  # the user's own name for it; the folder's name stays its id
    note: str = ""

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def title(self) -> str:
        """The user's name for the run, else its id."""
        return self.name or self.run_id

    @property
    def label(self) -> str:
        """The status as a person reads it: 'interrupted after 3 epochs', 'damaged'…"""
        if self.status == "interrupted":
            unit = "epoch" if self.epochs_completed == 1 else "epochs"
            return f"interrupted after {self.epochs_completed} {unit}"
        return self.status

    @property
    def can_answer(self) -> bool:
        """Whether its model may answer drawings: saved, and not a diverged or failed one."""
        return self.has_model and self.status in ("finished", "stopped", "interrupted")


@dataclass(frozen=True)
class SavedRun:
    """Everything a run recorded, as read back from its folder."""

    info: RunInfo
    metrics: list[dict[str, float]]
    kernels: np.ndarray | None  # [K, 784, units] as stored: float16 (float32 where a weight needs it)
    kernel_epochs: np.ndarray | None
    mistakes: dict[str, list] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.info.path

    def load_model(self) -> Any:
        return load_run_model(self.path)


def list_runs(root: str | Path | None = None, clean: bool = True) -> list[RunInfo]:
    """Every run folder under `root`, newest first by validated creation time; damaged ones are
    listed as damaged. With `clean`, leftovers of interrupted writes are removed on the way (only
    ever in a runs folder: a folder a user merely names is read, never cleaned)."""
    base = runs_root(root)
    if not base.is_dir():
        return []
    if clean:
        empty_trash(base)
    infos = []
    for entry in sorted(base.iterdir()):
        if _ABANDONED_RUN.match(entry.name):
            if clean:
                _clean_abandoned(entry)
        elif not entry.name.startswith(".") and entry.is_dir() and not entry.is_symlink():
            infos.append(read_info(entry, clean))
    return sorted(infos, key=lambda info: (info.created, info.run_id), reverse=True)


def read_info(path: Path, clean: bool = False) -> RunInfo:
    """The run's config, summary and status; never raises, whatever the folder holds."""
    path = Path(path)
    try:
        return _read_info(path, clean)
    except Exception as err:  # a last resort: one folder must never break the listing
        return RunInfo(path, "damaged", error=f"{path}: unreadable ({type(err).__name__}: {str(err)[:200]})",
                       created=_fallback_time(path))


def _read_info(path: Path, clean: bool) -> RunInfo:
    try:
        config, source, created = _read_config(path)
    except RunError as err:
        return RunInfo(path, "damaged", error=str(err), created=_fallback_time(path))
    base = dict(config=config, data_source=source, created=created,
                has_model=_is_file(path / MODEL_WEIGHTS) or _is_file(path / LEGACY_MODEL), **_read_notes(path))
    try:
        with _probe_lock(path) as training:
            if training:
                return RunInfo(path, "training", epochs_completed=_count_epochs(path), **base)
            if clean:
                _clean_leftovers(path)  # while holding the lock: no writer can start meanwhile
            if _exists(path / "failure.json"):
                failure = _read_json(path / "failure.json")
                kind = failure.get("kind") if isinstance(failure, dict) else None
                error = failure.get("error") if isinstance(failure, dict) else None
                return RunInfo(path, "diverged" if kind == "diverged" else "failed",
                               error=str(error)[:2000] if error is not None else "unknown error",
                               epochs_completed=_count_epochs(path), **base)
            if not _exists(path / "summary.json"):
                _check_saved_weights(path, config)
                return RunInfo(path, "interrupted", epochs_completed=_count_epochs(path), **base)
            summary = validate_summary(_read_json(path / "summary.json"), path / "summary.json")
            status = summary.get("outcome") or ("stopped" if summary.get("stopped_early") else "finished")
            _check_saved_weights(path, config)
            return RunInfo(path, status, summary=summary,
                           epochs_completed=summary.get("epochs_completed", 0), **base)
    except RunError as err:
        return RunInfo(path, "damaged", error=str(err), **base)


def load_run(path: str | Path) -> SavedRun:
    """Read a run folder back; raises RunError naming the damaged file."""
    info = read_info(Path(path))
    if info.status == "damaged":
        raise RunError(info.error or f"{path}: damaged run folder")
    assert info.config is not None
    metrics = read_metrics(info.path / "metrics.jsonl")
    kernels, epochs = _read_snapshots(info.path, info.config)
    mistakes_path = info.path / "mistakes.json"
    mistakes = _validate_mistakes(_read_json(mistakes_path), mistakes_path) if _exists(mistakes_path) else {}
    return SavedRun(info, metrics, kernels, epochs, mistakes)


def read_metrics(path: Path) -> list[dict[str, float]]:
    if not _exists(path):
        return []
    try:
        text = read_regular(path, MAX_METRICS_BYTES).decode()
    except UnsafeFileError as err:
        raise RunError(str(err)) from None
    except UnicodeDecodeError:
        raise RunError(f"{path}: not text") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            row = json.loads(line)
            values = {k: row[k] for k in METRIC_KEYS}
        except (ValueError, KeyError, TypeError, RecursionError):
            raise RunError(f"{path}: line {number} is not a metrics row") from None
        if not all(_is_number(v) for v in values.values()) or not _is_int(values["epoch"]):
            raise RunError(f"{path}: line {number} has a value that is not a number")
        rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in values.items()})
    return rows


def load_run_model(path: str | Path) -> Any:
    """The run's model, rebuilt from its validated config by our own code with only its weights
    read from the folder (never a graph); RunError when it saved none or they do not fit."""
    path = Path(path)
    info = read_info(path)
    if info.config is None:
        raise RunError(info.error or f"{path}: damaged run folder")
    from mlpdash.model import build_network, set_network_weights  # TensorFlow only from here on

    model = build_network(info.config)
    if _is_file(path / MODEL_WEIGHTS):
        problem = set_network_weights(model, read_model_weights(path, info.config))
    elif _is_file(path / LEGACY_MODEL):
        problem = _load_legacy_weights(model, path / LEGACY_MODEL, _weights_limit(info.config))
    else:
        raise RunError(f"{path}: this run has no saved model (no {MODEL_WEIGHTS})")
    if problem:
        raise RunError(f"{path}: the saved weights do not fit its config.json ({problem})")
    return model


def read_model_weights(path: Path, config: TrainConfig) -> list[np.ndarray]:
    """The saved model's arrays (`w0`, `w1`, ... in layer order), each no larger than its layer needs
    and every value finite; RunError naming the problem."""
    file = Path(path) / MODEL_WEIGHTS
    caps = _weight_caps(config)
    arrays = _read_npz(file, _weights_limit(config), caps, max_members=len(caps))
    weights = [arrays.get(f"w{i}") for i in range(len(arrays))]
    if any(w is None for w in weights):
        raise RunError(f"{file}: arrays are not numbered w0, w1, ...")
    _check_layers(weights, config, file)
    return weights


def _check_layers(weights: Sequence[np.ndarray], config: TrainConfig, file: Path) -> None:
    """The arrays of the run's own layers, as floats, every value finite."""
    expected = layer_shapes(config)
    if len(weights) != len(expected) or any(w.shape != shape or w.dtype not in (np.float16, np.float32)
                                            for w, shape in zip(weights, expected)):
        raise RunError(f"{file}: the weights do not match the run's layers {layer_sizes(config)}")
    _check_finite(weights, file)


def nonfinite(arrays: Sequence[np.ndarray]) -> tuple[int, int] | None:
    """(the first array holding NaN or infinity, how many it holds), or None when all are finite."""
    for i, array in enumerate(arrays):
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            return i, int(np.size(array) - np.isfinite(array).sum())
    return None


def _check_finite(arrays: Sequence[np.ndarray], file: Path) -> None:
    """Refuse weights holding NaN or infinity: such a model answers every input alike (`0 (nan%)`)."""
    found = nonfinite(arrays)
    if found is not None:
        raise RunError(f"{file}: {found[1]:,} weights of w{found[0]} are NaN or infinite (the run diverged, or "
                       "the file was damaged)")


def _check_saved_weights(path: Path, config: TrainConfig) -> None:
    """A run that ended with a model: its saved weights must be readable and finite, or the run is
    listed as damaged (it would answer every drawing alike). Read once per version of the file."""
    file = path / MODEL_WEIGHTS
    try:
        stat = os.lstat(file)
    except OSError:
        return  # no model saved (stopped before one) or a legacy run: its reader checks it
    problem = _weights_problem(str(file), (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns), config)
    if problem:
        raise RunError(problem)


# Far more entries than runs a folder holds (a listing visits every run: an LRU smaller than that would
# miss on every one); each is a path, a stamp and a short text.
@functools.lru_cache(maxsize=1 << 16)
def _weights_problem(file: str, stamp: tuple[int, int, int, int], config: TrainConfig) -> str | None:
    """Why the weights file cannot serve as the run's model, or None; `stamp` (inode, size, mtime,
    ctime: a copy that keeps the time still changes the last) keys the cache, so a rewritten file is
    read again and an unchanged one never is."""
    try:
        read_model_weights(Path(file).parent, config)
    except RunError as err:
        return str(err)
    return None


def validate_summary(raw: Any, path: Path) -> dict[str, Any]:
    """The summary's known fields with their types and ranges checked; RunError names a bad one."""
    if not isinstance(raw, dict):
        raise RunError(f"{path}: not a JSON object")

    def bad(name: str, wanted: str) -> RunError:
        return RunError(f"{path}: {name} must be {wanted} (got {_short(raw[name])})")

    summary: dict[str, Any] = {}
    for name in ("test_accuracy",):
        if raw.get(name) is not None:
            if not (_is_number(raw[name]) and 0 <= raw[name] <= 1):
                raise bad(name, "a number from 0 to 1")
            summary[name] = float(raw[name])
    for name in ("test_loss", "samples_per_second", "train_seconds"):
        if raw.get(name) is not None:
            if not (_is_number(raw[name]) and (raw[name] >= 0 or math.isnan(raw[name]))):
                raise bad(name, "a number of at least 0")
            summary[name] = float(raw[name])
    for name, top in (("epochs_completed", MAX_EPOCHS), ("mistakes", 10**8)):
        if name in raw:
            if not (_is_int(raw[name]) and 0 <= raw[name] <= top):
                raise bad(name, f"an integer from 0 to {top}")
            summary[name] = raw[name]
    if "stopped_early" in raw:
        if not isinstance(raw["stopped_early"], bool):
            raise bad("stopped_early", "true or false")
        summary["stopped_early"] = raw["stopped_early"]
    if raw.get("outcome") is not None:
        if raw["outcome"] not in OUTCOMES:
            raise bad("outcome", f"one of {', '.join(OUTCOMES)}")
        summary["outcome"] = raw["outcome"]
    if raw.get("data_source") is not None:
        if not isinstance(raw["data_source"], str):
            raise bad("data_source", "text")
        summary["data_source"] = raw["data_source"][:1000]
    if raw.get("confusion_matrix") is not None:
        matrix = raw["confusion_matrix"]
        if not (isinstance(matrix, list) and len(matrix) == NUM_CLASSES
                and all(isinstance(r, list) and len(r) == NUM_CLASSES
                        and all(_is_int(c) and 0 <= c <= MAX_COUNT for c in r) for r in matrix)):
            raise bad("confusion_matrix", "10 rows of 10 counts")
        summary["confusion_matrix"] = matrix
    if raw.get("per_class_accuracy") is not None:
        values = raw["per_class_accuracy"]
        if not (isinstance(values, list) and len(values) == NUM_CLASSES
                and all(v is None or (_is_number(v) and 0 <= v <= 1) for v in values)):
            raise bad("per_class_accuracy", "10 numbers from 0 to 1")
        summary["per_class_accuracy"] = [None if v is None else float(v) for v in values]
    return summary


# --- helpers -------------------------------------------------------------------------------------


def _read_config(path: Path) -> tuple[TrainConfig, str | None, float]:
    file = path / "config.json"
    head = _read_json(file)
    if not isinstance(head, dict) or not isinstance(head.get("config"), dict):
        raise RunError(f"{file}: no \"config\" object")
    try:
        config = TrainConfig.from_dict(head["config"])
    except (TypeError, ValueError) as err:
        raise RunError(f"{file}: {err}") from None
    source = head.get("data_source")
    if source is not None and not isinstance(source, str):
        raise RunError(f"{file}: data_source must be text (got {_short(source)})")
    return config, source and source[:1000], _created(path, head.get("created"))


def _created(path: Path, value: Any) -> float:
    """The validated creation time: the recorded one, else the one in the folder's name."""
    if value is not None:
        if not (_is_number(value) and 0 <= value <= time.time() + CLOCK_SLACK_S):
            raise RunError(f"{path / 'config.json'}: created must be a time in the past (got {_short(value)})")
        return float(value)
    named = _time_in_name(path)
    if named is not None and named > time.time() + CLOCK_SLACK_S:
        raise RunError(f"{path}: named for a time in the future ({path.name[:15]})")
    return _fallback_time(path) if named is None else named


def _time_in_name(path: Path) -> float | None:
    stamp = re.match(r"^(\d{8}-\d{6})", path.name)
    try:
        return dt.datetime.strptime(stamp.group(1), "%Y%m%d-%H%M%S").timestamp() if stamp else None
    except ValueError:
        return None


def _fallback_time(path: Path) -> float:
    """For a folder whose config cannot be trusted: its name's time if that is past, else its mtime
    (never later than now, so a damaged folder never sorts above every real run)."""
    now = time.time()
    named = _time_in_name(path)
    if named is not None and named <= now:
        return named
    try:
        return min(os.lstat(path).st_mtime, now)
    except OSError:
        return 0.0


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _read_npz(path: Path, limit: int, member_limits: Mapping[str, int] | None = None,
              max_members: int = 64) -> dict[str, np.ndarray]:
    try:
        return read_npz(path, limit, member_limits, max_members)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _is_file(path: Path) -> bool:
    """A regular file, not a link to one."""
    return path.is_file() and not path.is_symlink()


@contextmanager
def _probe_lock(path: Path) -> Iterator[bool]:
    """Yields whether a process (this one or another) is training the run right now; when none is,
    holds the run's lock for the duration, so that nothing starts writing while it is read."""
    try:
        fd = open_regular(path / LOCK_FILE)
    except UnsafeFileError:
        yield False  # no lock file (a finished run, or one of the first release): no writer
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield True
            return
        yield False
    finally:
        os.close(fd)  # also releases the lock


def _lock_held(path: Path) -> bool:
    with _probe_lock(path) as held:
        return held


def _clean_leftovers(path: Path) -> None:
    """Temporary files of writes that a crash interrupted (no one is writing: the lock is ours).
    Tidying only: a leftover that cannot be removed (a read-only folder) stays, and the run with it."""
    for folder in (path, path / SNAPSHOT_DIR, path / TIMELINE_DIR):
        try:
            if not folder.is_dir() or folder.is_symlink():
                continue
            for entry in folder.iterdir():
                if is_temporary(entry.name):
                    remove_entry(entry)
        except OSError as err:
            LOG.warning("could not remove a leftover in %s: %s", folder, err)


def _clean_abandoned(entry: Path) -> None:
    """A run folder whose creation a crash interrupted (it never got its final name): one of ours by
    its name and its lock file. One being created right now has no lock for a moment: only old ones
    are abandoned."""
    try:
        age = time.time() - entry.lstat().st_mtime
    except OSError:
        return
    if (age > ABANDONED_AFTER_S and entry.is_dir() and not entry.is_symlink()
            and _is_file(entry / LOCK_FILE) and not _lock_held(entry)):
        try:
            remove_entry(entry)
        except OSError as err:  # a read-only runs folder: the leftover stays hidden, the listing goes on
            LOG.warning("could not remove the abandoned run folder %s: %s", entry, err)


def _count_epochs(path: Path) -> int:
    try:
        return len(read_metrics(path / "metrics.jsonl"))
    except RunError:
        return 0


def _read_snapshots(path: Path, config: TrainConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The first-layer snapshots as stored (float16, or float32 where needed), [K, 784, units]. All of
    them together may hold at most twice the snapshot budget, checked before any is read."""
    shape = (PIXELS, _first_units(config))
    cap = 2 * snapshot_bytes()
    folder = path / SNAPSHOT_DIR
    if folder.is_dir() and not folder.is_symlink():
        files = sorted((int(m.group(1)), folder / m.group(0))
                       for m in map(SNAPSHOT_NAME.match, os.listdir(folder)) if m)
        if files:
            total = sum(file.lstat().st_size for _, file in files)
            if total > cap:
                raise RunError(f"{folder}: {len(files)} snapshots of {total:,} bytes, more than the "
                               f"{cap:,} allowed (MLPDASH_SNAPSHOT_MB)")
            kernels = []
            for _, file in files:
                try:
                    kernel = read_npy(file, _kernel_limit(config))
                except UnsafeFileError as err:
                    raise RunError(str(err)) from None
                if kernel.shape != shape or kernel.dtype not in (np.float16, np.float32):
                    raise RunError(f"{file}: expected a float array of shape {shape}, got "
                                   f"{kernel.dtype} {kernel.shape}")
                _check_finite([kernel], file)
                kernels.append(kernel)
            return np.stack(kernels), np.array([epoch for epoch, _ in files], np.int64)
    if _exists(path / LEGACY_WEIGHTS):
        arrays = _read_npz(path / LEGACY_WEIGHTS, cap, max_members=2)
        kernels, epochs = arrays.get("kernels"), arrays.get("epochs")
        if (kernels is None or epochs is None or kernels.ndim != 3 or kernels.shape[1:] != shape
                or epochs.shape != (len(kernels),) or not np.issubdtype(epochs.dtype, np.integer)
                or kernels.dtype not in (np.float16, np.float32)):
            raise RunError(f"{path / LEGACY_WEIGHTS}: unreadable weight snapshots (wrong arrays)")
        _check_finite([kernels], path / LEGACY_WEIGHTS)
        return kernels, epochs.astype(np.int64)
    return None, None


def read_timeline(path: str | Path) -> Timeline | None:
    """The weights and validation answers a run kept over time; None for a run saved before they
    were recorded, or before its first record. Raises RunError naming a damaged file. Each record may
    unpack to at most what the run's own layers need, and all of them together to at most twice the
    timeline budget (or two records, whichever is more: the thinning always keeps two)."""
    info = read_info(Path(path))
    if info.status == "damaged" or info.config is None:
        raise RunError(info.error or f"{path}: damaged run folder")
    folder = info.path / TIMELINE_DIR
    if not folder.is_dir() or folder.is_symlink():
        return None
    files = sorted((int(m.group(1)), folder / m.group(0)) for m in map(RECORD_NAME.match, os.listdir(folder)) if m)
    per_record = _record_limit(info.config)
    cap = max(2 * timeline_bytes(), 2 * per_record)
    if len(files) > MAX_RECORDS + 1 or any(epoch > MAX_EPOCHS for epoch, _ in files):
        raise RunError(f"{folder}: {len(files)} records up to epoch {files[-1][0]}: more than a run keeps")
    total = sum(file.lstat().st_size for _, file in files)
    if total > cap:
        raise RunError(f"{folder}: {len(files)} records of {total:,} bytes, more than the {cap:,} allowed "
                       "(MLPDASH_TIMELINE_MB)")
    records: list[EpochRecord] = []
    for epoch, file in files:
        try:
            record = _read_record(file, epoch, info.config, per_record)
        except RunError:
            if not _exists(file):
                continue  # thinned away by the run still training, between the listing and the read
            raise
        if records and len(record.predictions) != len(records[0].predictions):
            raise RunError(f"{file}: it answers for {len(record.predictions):,} validation digits, the run's "
                           f"first record for {len(records[0].predictions):,}")
        unpacked = sum(r.nbytes for r in records) + record.nbytes
        if unpacked > cap:
            raise RunError(f"{folder}: the records unpack to more than the {cap:,} bytes allowed")
        records.append(record)
    if not records:
        return None
    epochs, confusions = _read_confusions(folder / CONFUSIONS_FILE)
    return Timeline(tuple(records), epochs, confusions)


def _record_limit(config: TrainConfig) -> int:
    """The most one record of this run may unpack to: float32 weights (where float16 would not do)
    and the answers for a validation split of up to a million digits, with room for headers."""
    return 4 * config.parameters + 3 * MAX_VALIDATION + (1 << 20)


def read_test_predictions(path: str | Path) -> dict[str, np.ndarray] | None:
    """A tested run's `labels`, `predictions` and `confidences` for every test image, validated; None
    for a run not tested (yet). Raises RunError naming a damaged file."""
    file = Path(path) / "test_predictions.npz"
    if not _exists(file):
        return None
    arrays = _read_npz(file, MAX_TEST_RESULTS_BYTES, max_members=3)
    labels, predictions, confidences = (arrays.get(k) for k in ("labels", "predictions", "confidences"))
    if (labels is None or predictions is None or confidences is None or labels.ndim != 1
            or predictions.shape != labels.shape or confidences.shape != labels.shape
            or not np.issubdtype(labels.dtype, np.integer) or not np.issubdtype(predictions.dtype, np.integer)
            or not np.issubdtype(confidences.dtype, np.floating)
            or not np.all((confidences >= 0) & (confidences <= 1))  # NaN fails this too
            or (labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES
                                 or predictions.min() < 0 or predictions.max() >= NUM_CLASSES))):
        raise RunError(f"{file}: unreadable test predictions")
    return {"labels": labels.astype(np.int64), "predictions": predictions.astype(np.int64),
            "confidences": confidences.astype(np.float32)}


def _read_record(file: Path, epoch: int, config: TrainConfig, cap: int) -> EpochRecord:
    caps = {**_weight_caps(config), "predictions": MAX_VALIDATION + NPY_HEADER_BYTES,
            "confidences": 2 * MAX_VALIDATION + NPY_HEADER_BYTES}
    arrays = _read_npz(file, cap, caps, max_members=len(caps))
    expected = layer_shapes(config)
    weights = [arrays.get(f"w{i}") for i in range(len(expected))]
    predictions, confidences = arrays.get("predictions"), arrays.get("confidences")
    if any(w is None for w in weights) or len(arrays) != len(expected) + 2:
        raise RunError(f"{file}: the weights do not match the run's layers {layer_sizes(config)}")
    _check_layers(weights, config, file)
    if (predictions is None or confidences is None or predictions.dtype != np.uint8 or predictions.ndim != 1
            or confidences.shape != predictions.shape or confidences.dtype != np.float16
            or (predictions.size and predictions.max() >= NUM_CLASSES)
            or not np.all((confidences >= 0) & (confidences <= 1))):  # NaN fails this too
        raise RunError(f"{file}: unreadable validation answers")
    return EpochRecord(epoch, tuple(weights), predictions, confidences)


def _read_confusions(file: Path) -> tuple[np.ndarray, np.ndarray]:
    if not _exists(file):
        return np.zeros(0, np.int64), np.zeros((0, NUM_CLASSES, NUM_CLASSES), np.int64)
    arrays = _read_npz(file, 1 << 20, max_members=2)
    epochs, confusions = arrays.get("epochs"), arrays.get("confusions")
    if (epochs is None or confusions is None or epochs.ndim != 1 or not np.issubdtype(epochs.dtype, np.integer)
            or confusions.shape != (len(epochs), NUM_CLASSES, NUM_CLASSES)
            or not np.issubdtype(confusions.dtype, np.integer) or (confusions < 0).any()
            or (epochs < 0).any() or len(np.unique(epochs)) != len(epochs)):
        raise RunError(f"{file}: unreadable confusion matrices")
    return epochs.astype(np.int64), confusions.astype(np.int64)


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


def _read_bytes(path: Path, limit: int) -> bytes:
    try:
        return read_regular(path, limit)
    except UnsafeFileError as err:
        raise RunError(str(err)) from None


def _validate_mistakes(raw: Any, path: Path) -> dict[str, list]:
    keys = ("index", "label", "prediction", "confidence")
    if not (isinstance(raw, dict) and all(isinstance(raw.get(k), list) for k in keys)
            and len({len(raw[k]) for k in keys}) == 1
            and all(_is_int(v) and v >= 0 for k in keys[:3] for v in raw[k])
            and all(_is_number(v) and 0 <= v <= 1 for v in raw["confidence"])):
        raise RunError(f"{path}: expected lists index, label, prediction, confidence of one length")
    return {k: raw[k] for k in keys}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
