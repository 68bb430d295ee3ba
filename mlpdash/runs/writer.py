"""Writing a run folder as the run trains: created under a hidden name and renamed into place,
held under its `training.lock` while the run trains, every file written atomically (`mlpdash.files`).

The folder's layout is described in `mlpdash.runs`; the names come from `base`, the one place the
reader takes them from too.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.files import (
    fsync_dir,
    remove_entry,
    write_bytes_atomic,
    write_dir_atomic,
    write_file_atomic,
    write_json_atomic,
    write_npy_atomic,
    write_npz_atomic,
)
from mlpdash.mnist import NUM_CLASSES
from mlpdash.runs.base import (
    CONFUSIONS_FILE,
    LEGACY_MODEL,
    LOCK_FILE,
    METRIC_KEYS,
    MODEL_WEIGHTS,
    SNAPSHOT_DIR,
    TIMELINE_DIR,
    RunError,
    _exists,
    runs_root,
)
from mlpdash.timeline import EpochRecord, compact

if TYPE_CHECKING:  # only named in a signature: the writer never reads a folder's listing entry
    from mlpdash.runs.reader import RunInfo


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

    @property
    def closed(self) -> bool:
        """Whether the lock has been let go (`close`, or `discard`): nothing more is written."""
        return self._lock_fd is None

    def close(self) -> None:
        """The run has ended: drop the lock file, then the lock."""
        if self._lock_fd is None:
            return
        remove_entry(self.path / LOCK_FILE)
        os.close(self._lock_fd)
        self._lock_fd = None
