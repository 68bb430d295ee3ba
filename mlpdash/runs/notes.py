"""The user's own words about a run and its deletion: a name and a note kept beside the run
(`notes.json`), and a trash that keeps a deleted run for a day before it goes, so a slip can be undone.

Neither touches what the run recorded: a damaged notes file reads as no notes, and a run being
trained cannot be deleted.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from mlpdash.files import UnsafeFileError, fsync_dir, locked, read_json, remove_entry, write_json_atomic
from mlpdash.runs.base import NOTES_FILE, TRASH_DIR, RunError, _lock_held, runs_root

MAX_NAME_CHARS = 80
MAX_NOTE_CHARS = 2000
TRASH_KEEP_S = 24 * 3600
_TRASHED = re.compile(r"^(?P<run>[^/@]+)@(?P<when>\d{10,12})$")


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


def read_notes(path: Path) -> dict[str, str]:
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
    """A deleted run waiting in the trash."""

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
