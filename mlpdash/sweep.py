"""Sweeps: a grid of settings, trained one run after another, and the queue that holds them.

A sweep is up to three settings with a few values each (`grid`); its runs wait in a `RunQueue` that
the server's job manager drains one job at a time, as it trains a single Start. The queue is kept
in the runs folder (`queue.json`, rewritten atomically on every change), so that a page refresh
finds it as it was and a server restart shows which of its runs finished. After a restart nothing
starts training by itself: runs that had not started are marked "not run" and can be resumed.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpdash.config import TrainConfig, parse_hidden
from mlpdash.files import UnsafeFileError, locked, read_json, write_json_atomic

QUEUE_FILE = "queue.json"
MAX_SETTINGS = 3
MAX_VALUES = 8
MAX_RUNS = 32
MAX_QUEUE = 200  # items kept, ended ones dropped oldest first beyond it
# States of a queued run: waiting, training, or one of how it ended.
WAITING, RUNNING = "queued", "running"
ENDED = ("finished", "stopped", "failed", "diverged", "cancelled", "not run", "interrupted")
STATES = (WAITING, RUNNING, *ENDED)
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # a folder's own name: no path, never hidden


def _numbers(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
    return parse


# The settings a sweep can vary, each with how one value is read from text.
SWEEPABLE: dict[str, Callable[[str], Any]] = {
    "learning_rate": _numbers(float),
    "hidden": parse_hidden,  # "0" or "linear": no hidden layer, the tutorial's linear classifier
    "dropout": _numbers(float),
    "batch_size": _numbers(int),
    "epochs": _numbers(int),
    "activation": str.strip,
    "optimizer": str.strip,
    "lr_schedule": str.strip,
    "seed": _numbers(int),
    "train_digits": _numbers(int),
}


def parse_values(setting: str, text: str) -> list[Any]:
    """The values of one setting from text: comma-separated, except hidden sizes, whose values are
    separated by ':' since each is itself a comma list ("128:700,500"; "0" is no hidden layer)."""
    if setting not in SWEEPABLE:
        raise ValueError(f"{setting!r} cannot be swept (one of: {', '.join(SWEEPABLE)})")
    parts = [part.strip() for part in (text.split(":") if setting == "hidden" else text.split(","))]
    if not all(parts):  # "128:" is a slip, not a linear model: that one is "0"
        raise ValueError(f"{setting}: an empty value in {text!r}")
    values = []
    for part in parts:
        value = SWEEPABLE[setting](part)
        if value not in values:
            values.append(value)
    return values


def varied(axes: Mapping[str, Sequence[Any]]) -> list[str]:
    """The settings a sweep varies: those given two values or more (one value merely sets it)."""
    return [name for name, values in axes.items() if len(values) > 1]


def grid(base: TrainConfig, axes: Mapping[str, Sequence[Any]]) -> list[TrainConfig]:
    """Every combination of the axes' values over `base`, the first axis varying slowest (an axis of
    one value sets that setting in every run); ValueError naming the problem: too many settings or
    runs, a value that a config refuses."""
    axes = {name: list(values) for name, values in axes.items() if values}
    if not axes:
        raise ValueError("choose at least one setting to sweep, with one value or more")
    if len(varied(axes)) > MAX_SETTINGS:
        raise ValueError(f"a sweep varies at most {MAX_SETTINGS} settings, not {len(varied(axes))}")
    for name, values in axes.items():
        if name not in SWEEPABLE:
            raise ValueError(f"{name!r} cannot be swept (one of: {', '.join(SWEEPABLE)})")
        if len(values) > MAX_VALUES:
            raise ValueError(f"{name}: at most {MAX_VALUES} values, not {len(values)}")
    total = 1
    for values in axes.values():
        total *= len(values)
    if total > MAX_RUNS:
        raise ValueError(f"that sweep is {total} runs; at most {MAX_RUNS} are queued at once")
    configs = []
    for combination in itertools.product(*axes.values()):
        changes = dict(zip(axes, combination, strict=True))
        try:
            configs.append(dataclasses.replace(base, **changes))
        except ValueError as err:
            shown = ", ".join(f"{k} {_shown(v)}" for k, v in changes.items())
            raise ValueError(f"{shown}: {err}") from None
    return configs


@dataclass(frozen=True)
class Plan:
    """A sweep read from text: its runs' configs, in order, and the settings it varies (those given
    two values or more; with one value each, every setting given)."""

    configs: list[TrainConfig]
    swept: list[str]

    @property
    def title(self) -> str:
        """The sweep's name on the page: 'Sweep of learning rate, hidden'."""
        return "Sweep of " + ", ".join(self.swept).replace("_", " ")


def plan(base: TrainConfig, given: Iterable[tuple[str, str]], names: Mapping[str, str] | None = None) -> Plan:
    """The sweep that text asks for, as the page's sweep form and `python -m mlpdash sweep` give it:
    (setting, values) pairs, each read by `parse_values`, over `base` (`grid`). ValueError naming
    the problem: a setting with no values or given twice (called as `names` says, else by its own
    name), a value that cannot be read, a grid too large or that a config refuses."""
    names = names or {}
    axes: dict[str, list[Any]] = {}
    for setting, text in given:
        name = names.get(setting, setting)
        text = text.strip()
        if not text:
            raise ValueError(f"give values for {name}")
        if setting in axes:
            raise ValueError(f"{name} is chosen twice")
        axes[setting] = parse_values(setting, text)
    configs = grid(base, axes)
    return Plan(configs, varied(axes) or list(axes))


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class QueueItem:
    """One run of a sweep: what to train and, once it has started, its run folder's name."""

    item: str
    sweep: str
    sweep_name: str
    config: TrainConfig
    data: str | None
    swept: tuple[str, ...]  # the settings the sweep varies, for its comparison
    state: str = WAITING
    run: str | None = None
    error: str | None = None
    queued_at: float = 0.0

    @property
    def label(self) -> str:
        """What this run varies, as a person reads it: "learning_rate 0.01, hidden 128"."""
        values = self.config.to_dict()
        return ", ".join(f"{k} {_shown(tuple(values[k]) if k == 'hidden' else values[k])}" for k in self.swept)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "config": self.config.to_dict(), "swept": list(self.swept)}

    @classmethod
    def from_dict(cls, raw: Any) -> QueueItem:
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(raw) - fields or not {"item", "sweep", "config"} <= set(raw):
            raise ValueError("unexpected or missing fields")
        item = cls(**{**raw, "config": TrainConfig.from_dict(raw["config"]), "swept": tuple(raw.get("swept", ()))})
        texts = (item.item, item.sweep, item.sweep_name)
        if not all(isinstance(t, str) for t in texts) or item.state not in STATES:
            raise ValueError("a field of the wrong kind")
        if not all(isinstance(v, str | None) for v in (item.data, item.run, item.error)):
            raise ValueError("a field of the wrong kind")
        if not item.swept or not all(isinstance(k, str) and k in SWEEPABLE for k in item.swept):
            raise ValueError("a swept setting that cannot be swept")
        if item.run is not None and not _RUN_NAME.match(item.run):
            raise ValueError(f"{item.run[:40]!r} is not a run folder's name")
        if not isinstance(item.queued_at, int | float):
            raise ValueError("a field of the wrong kind")
        return item


@dataclass(frozen=True)
class Sweep:
    """A sweep's runs as queued, in order."""

    sweep: str
    name: str
    items: tuple[QueueItem, ...]

    @property
    def swept(self) -> tuple[str, ...]:
        return self.items[0].swept

    @property
    def pending(self) -> int:
        return sum(item.state in (WAITING, RUNNING) for item in self.items)

    @property
    def resumable(self) -> int:
        return sum(item.state == "not run" for item in self.items)


class RunQueue:
    """The runs waiting to be trained, in order, and the sweeps they belong to; thread-safe. With a
    `path`, every change is written there and a new queue reads it back (a server restart)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._items: list[QueueItem] = []
        self.problem: str | None = None  # why a saved queue could not be read back
        if path is not None:
            self._items = [_after_restart(item) for item in self._read()]

    def _read(self) -> list[QueueItem]:
        assert self.path is not None
        if not self.path.exists():
            return []
        try:
            raw = read_json(self.path, 4 << 20)
            if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
                raise ValueError("not a queue")
            return [QueueItem.from_dict(item) for item in raw["items"]]
        except (UnsafeFileError, ValueError, TypeError, KeyError, RecursionError) as err:
            # The queue holds no results (those are in the run folders): start afresh, and say so.
            self.problem = f"the saved queue {self.path} could not be read ({err}); it was started afresh"
            return []

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with locked(self.path.parent):  # a second server on the same runs folder: whole files only
                write_json_atomic(self.path, {"items": [item.to_dict() for item in self._items]})
        except OSError as err:
            # The queue goes on in memory (the worker must not die of a full disk); a restart
            # would find an older copy, and the page says so meanwhile.
            self.problem = f"the queue could not be saved to {self.path} ({err.strerror or err})"
        else:
            self.problem = None

    def add(self, configs: Sequence[TrainConfig], data: str | None, name: str,
            swept: Sequence[str]) -> Sweep:
        """Queue `configs` as one sweep called `name` (with " (2)", " (3)"… when a sweep in the queue is
        called that already: the page tells sweeps apart by name) after whatever is queued already."""
        if not configs:
            raise ValueError("a sweep needs at least one run")
        sweep, now = secrets.token_hex(4), time.time()
        with self._lock:
            name = unique_name(name, {item.sweep_name for item in self._items})
            items = [QueueItem(f"{sweep}-{n}", sweep, name, config, data, tuple(swept), queued_at=now)
                     for n, config in enumerate(configs)]
            self._items.extend(items)
            ended = [i for i, item in enumerate(self._items) if item.state in ENDED]
            for i in reversed(ended[:max(0, len(self._items) - MAX_QUEUE)]):
                del self._items[i]
            self._save()
        return Sweep(sweep, name, tuple(items))

    def items(self) -> list[QueueItem]:
        with self._lock:
            return list(self._items)

    def sweeps(self) -> list[Sweep]:
        """Every sweep in the queue, the newest first."""
        by_sweep: dict[str, list[QueueItem]] = {}
        for item in self.items():
            by_sweep.setdefault(item.sweep, []).append(item)
        found = [Sweep(key, items[0].sweep_name, tuple(items)) for key, items in by_sweep.items()]
        return sorted(found, key=lambda s: s.items[0].queued_at, reverse=True)

    def waiting(self) -> int:
        return sum(item.state == WAITING for item in self.items())

    def take_next(self) -> QueueItem | None:
        """The first waiting run, now marked running; None when none waits."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item.state == WAITING:
                    self._items[i] = dataclasses.replace(item, state=RUNNING)
                    self._save()
                    return self._items[i]
        return None

    def update(self, item_id: str, **changes: Any) -> QueueItem | None:
        """Change a run's state, run folder or error (None for an item no longer queued)."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item.item == item_id:
                    self._items[i] = dataclasses.replace(item, **changes)
                    self._save()
                    return self._items[i]
        return None

    def cancel(self, item_ids: Sequence[str]) -> list[QueueItem]:
        """Cancel waiting runs; returns the running one among `item_ids`, if any, for its job to be
        stopped by the caller (it is marked cancelled when it ends)."""
        running = []
        with self._lock:
            for i, item in enumerate(self._items):
                if item.item in item_ids and item.state in (WAITING, "not run"):
                    self._items[i] = dataclasses.replace(item, state="cancelled")
                elif item.item in item_ids and item.state == RUNNING:
                    running.append(item)
            self._save()
        return running

    def resume(self, sweep: str) -> int:
        """Queue again the runs of a sweep that a server restart left unstarted."""
        with self._lock:
            count = 0
            for i, item in enumerate(self._items):
                if item.sweep == sweep and item.state == "not run":
                    self._items[i] = dataclasses.replace(item, state=WAITING)
                    count += 1
            self._save()
        return count

    def forget(self, sweep: str) -> None:
        """Drop an ended sweep from the list (its runs stay in the runs folder)."""
        with self._lock:
            self._items = [item for item in self._items if item.sweep != sweep or item.state in (WAITING, RUNNING)]
            self._save()


def unique_name(name: str, taken: Iterable[str]) -> str:
    """`name`, or `name (2)`, `name (3)`… the first not in `taken`."""
    taken = set(taken)
    found, count = name, 1
    while found in taken:
        count += 1
        found = f"{name} ({count})"
    return found


def _after_restart(item: QueueItem) -> QueueItem:
    """A queue read back by a new server: nothing of it is training any more. A run that was
    training was interrupted (its folder says how far it got), unless it has no folder: the folder is
    recorded the moment it is made, so none means the process died before training began, and the
    run was not run. A waiting one was not run either."""
    if item.state == RUNNING:
        return dataclasses.replace(item, state="interrupted" if item.run else "not run")
    if item.state == WAITING:
        return dataclasses.replace(item, state="not run")
    return item
