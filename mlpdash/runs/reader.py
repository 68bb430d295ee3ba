"""Listing and reading run folders without trusting them: each run's listing entry (`RunInfo`: its
config, status, summary and the user's notes), its metrics, and the summary's validation.

A damaged folder is listed as damaged, naming the file and the problem; the rest still works. The
listing also tidies what a crash left behind (temporary files, a folder abandoned while it was being
created), and only ever in a runs folder it owns.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpdash.config import MAX_EPOCHS, TrainConfig
from mlpdash.files import UnsafeFileError, is_temporary, read_regular, remove_entry
from mlpdash.mnist import NUM_CLASSES
from mlpdash.runs.base import (
    LEGACY_MODEL,
    LOCK_FILE,
    LOG,
    METRIC_KEYS,
    MODEL_WEIGHTS,
    SNAPSHOT_DIR,
    TIMELINE_DIR,
    RunError,
    _exists,
    _is_file,
    _is_int,
    _is_number,
    _lock_held,
    _probe_lock,
    _read_json,
    _short,
    runs_root,
)
from mlpdash.runs.notes import empty_trash, read_notes
from mlpdash.runs.weights import _check_saved_weights

# A metrics row is ~150 bytes; 1000 epochs fit many times over.
MAX_METRICS_BYTES = 4 << 20
# Clocks differ between machines a folder may come from: a little future is tolerated, 2099 is not.
CLOCK_SLACK_S = 3600
# A hidden run folder this old whose lock no one holds was abandoned by a crash during its creation.
ABANDONED_AFTER_S = 60
_ABANDONED_RUN = re.compile(r"^\.\d{8}-\d{6}-[0-9a-f]{6}\.tmp$")
STATUSES = ("training", "finished", "stopped", "interrupted", "diverged", "failed", "damaged")
OUTCOMES = ("finished", "stopped", "interrupted")
MAX_COUNT = 10**8  # a test split larger than this is no MNIST


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
                has_model=_is_file(path / MODEL_WEIGHTS) or _is_file(path / LEGACY_MODEL), **read_notes(path))
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
            row = metrics_row(json.loads(line))
        except (ValueError, RecursionError):
            raise RunError(f"{path}: line {number} is not a metrics row") from None
        if row is None:
            raise RunError(f"{path}: line {number} is not a metrics row of numbers")
        rows.append(row)
    return rows


def metrics_row(raw: Any) -> dict[str, float] | None:
    """One epoch's metrics (METRIC_KEYS, the epoch a whole number) as read from a file or a message we
    did not write; None when it is not one."""
    try:
        values = {k: raw[k] for k in METRIC_KEYS}
    except (KeyError, TypeError, IndexError):
        return None
    if not all(_is_number(v) for v in values.values()) or not _is_int(values["epoch"]):
        return None
    return {k: (int(v) if k == "epoch" else float(v)) for k, v in values.items()}


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
