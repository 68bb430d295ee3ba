"""Lessons as data: the presets of the sidebar and the guided lessons, each read from a TOML file of
this folder and validated on load, so that a teacher adds one without touching code.

`presets.toml` holds the presets, in the sidebar's order. A preset fills the settings (a person, or a
guided step, still presses Start) and says in one sentence what to watch; every figure in that
sentence is a *claim*, measured by `python -m mlpdash bench --lessons` on full MNIST and checked by
the unit tests on the bundled sample::

    [[preset]]
    name = "A tiny network (16 units)"
    watch = "Sixteen hidden units already reach about {test_accuracy}."
    settings = { hidden = [16] }          # any TrainConfig field; the rest: the tutorial recipe
    pace = "full speed"                   # optional, one of mlpdash.pace.PACES

    [[preset.claim]]
    measure = "test_accuracy"             # one of mlpdash.lessons.measures.MEASURES
    full = { about = 0.95, within = 0.005 }   # on full MNIST: about, at_least or at_most
    sample = { at_least = 0.88 }          # on the bundled sample (smaller data, smaller margins)
    # against = "Overfitting"             # optional: the figure is that preset's measure less this one's

`{test_accuracy}` in the sentence is written from the claim's full-MNIST figure ("95 %"), so the
sentence and the number checked are one. `guided/*.toml` holds the guided lessons, one a file (their
format is in `guided.py`). Nothing here imports the page; the page passes its views' names in.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpdash.config import TrainConfig
from mlpdash.lessons.measures import MEASURES
from mlpdash.pace import PACES

FOLDER = Path(__file__).resolve().parent
PRESETS_FILE = FOLDER / "presets.toml"
MAX_LESSON_BYTES = 64_000  # a lesson is a page of text: a bigger file is not one
RECIPE = TrainConfig(lr_schedule="constant")  # the tutorial's recipe, which every preset starts from
RELATIONS = ("about", "at_least", "at_most")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class LessonError(ValueError):
    """A lesson file that cannot be used, naming the file and what is wrong in it."""


@dataclass(frozen=True)
class Bound:
    """A figure a measure must show: `about` (within `within`), `at_least` or `at_most`."""

    relation: str
    value: float
    within: float = 0.0

    def holds(self, measured: float) -> bool:
        if not math.isfinite(measured):
            return False
        if self.relation == "about":
            return abs(measured - self.value) <= self.within
        return measured >= self.value if self.relation == "at_least" else measured <= self.value

    def describe(self, format_value) -> str:
        """'about 97.9 % ± 0.3 %'-like words, with figures written by `format_value`."""
        if self.relation == "about":
            return f"{format_value(self.value)} ± {format_value(self.within)}"
        return f"{'at least' if self.relation == 'at_least' else 'at most'} {format_value(self.value)}"


@dataclass(frozen=True)
class Claim:
    measure: str
    full: Bound  # on full MNIST (what the sentence states)
    sample: Bound  # on the bundled sample
    against: str | None = None  # another preset: the figure is its measure less this one's

    def figure(self) -> str:
        """The full-MNIST figure as the sentence writes it."""
        return MEASURES[self.measure].format(self.full.value)


@dataclass(frozen=True)
class Preset:
    name: str
    watch_template: str  # the sentence with its claims' placeholders
    config: TrainConfig
    pace: str
    claims: tuple[Claim, ...]

    @property
    def watch(self) -> str:
        """What to look for, in one sentence, its figures written in."""
        figures = {claim.measure: claim.figure() for claim in self.claims}
        return _PLACEHOLDER.sub(lambda m: figures[m.group(1)], self.watch_template)


def read_toml(path: Path) -> dict[str, Any]:
    """A lesson file's contents; LessonError when it is too big, not UTF-8 or not TOML."""
    try:
        raw = path.read_bytes()[: MAX_LESSON_BYTES + 1]
    except OSError as err:
        raise LessonError(f"{path.name}: cannot be read ({err.strerror})") from None
    if len(raw) > MAX_LESSON_BYTES:
        raise LessonError(f"{path.name}: over {MAX_LESSON_BYTES:,} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise LessonError(f"{path.name}: not a TOML file ({err})") from None


def fields(table: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A TOML table's entries, refused with a message naming `where` when one is missing or unknown."""
    if not isinstance(table, dict):
        raise LessonError(f"{where}: expected a table")
    missing = [name for name in required if name not in table]
    unknown = sorted(set(table) - set(required) - set(optional))
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unknown {', '.join(unknown)}"] if unknown else [])
        raise LessonError(f"{where}: {'; '.join(parts)}")
    return table


def text(value: Any, where: str, longest: int = 600) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > longest:
        raise LessonError(f"{where}: expected a text of 1 to {longest} characters")
    return " ".join(value.split())


def _bound(table: Any, where: str) -> Bound:
    table = fields(table, where, (), (*RELATIONS, "within"))
    relations = [name for name in RELATIONS if name in table]
    if len(relations) != 1:
        raise LessonError(f"{where}: give exactly one of {', '.join(RELATIONS)}")
    relation = relations[0]
    values = [table[relation], table.get("within", 0.0)]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise LessonError(f"{where}: figures must be numbers")
    if relation == "about" and not values[1] > 0:
        raise LessonError(f"{where}: 'about' needs a 'within' above 0")
    if relation != "about" and "within" in table:
        raise LessonError(f"{where}: 'within' goes with 'about' only")
    return Bound(relation, float(values[0]), float(values[1]))


def _claim(table: Any, where: str) -> Claim:
    table = fields(table, where, ("measure", "full", "sample"), ("against",))
    if table["measure"] not in MEASURES:
        raise LessonError(f"{where}: unknown measure {table['measure']!r} (known: {', '.join(MEASURES)})")
    against = table.get("against")
    if against is not None:
        against = text(against, f"{where}.against", 80)
    return Claim(table["measure"], _bound(table["full"], f"{where}.full"),
                 _bound(table["sample"], f"{where}.sample"), against)


def _settings(table: Any, where: str) -> TrainConfig:
    if not isinstance(table, dict):
        raise LessonError(f"{where}: expected a table of settings")
    try:
        return TrainConfig.from_dict({**RECIPE.to_dict(), **table})
    except (TypeError, ValueError) as err:
        raise LessonError(f"{where}: {err}") from None


def _preset(table: Any, where: str) -> Preset:
    table = fields(table, where, ("name", "watch", "claim"), ("settings", "pace"))
    name = text(table["name"], f"{where}.name", 80)
    where = f"{where} ({name})"
    watch = text(table["watch"], f"{where}.watch", 300)
    pace = table.get("pace", next(iter(PACES)))
    if pace not in PACES:
        raise LessonError(f"{where}.pace: unknown pace {pace!r} (known: {', '.join(PACES)})")
    if not isinstance(table["claim"], list) or not table["claim"]:
        raise LessonError(f"{where}: at least one [[preset.claim]]")
    claims = tuple(_claim(claim, f"{where}.claim[{i}]") for i, claim in enumerate(table["claim"]))
    named = {match for match in _PLACEHOLDER.findall(watch)}
    measured = {claim.measure for claim in claims}
    if named != measured:
        raise LessonError(f"{where}.watch: its figures ({', '.join(sorted(named)) or 'none'}) must be "
                          f"those its claims measure ({', '.join(sorted(measured))}), in {{braces}}")
    return Preset(name, watch, _settings(table.get("settings", {}), f"{where}.settings"), pace, claims)


def load_presets(path: Path = PRESETS_FILE) -> tuple[Preset, ...]:
    """Every preset of a presets file, validated; LessonError names the first problem."""
    where = path.name
    data = fields(read_toml(path), where, ("preset",))
    if not isinstance(data["preset"], list) or not data["preset"]:
        raise LessonError(f"{where}: no [[preset]]")
    presets = tuple(_preset(table, f"{where}: preset {i + 1}") for i, table in enumerate(data["preset"]))
    names = [preset.name for preset in presets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LessonError(f"{where}: two presets named {repeated[0]!r}")
    if len({preset.config for preset in presets}) != len(presets):
        raise LessonError(f"{where}: two presets with the same settings")
    for preset in presets:
        for claim in preset.claims:
            if claim.against is not None and claim.against not in names:
                raise LessonError(f"{where}: {preset.name}: its claim is against {claim.against!r}, "
                                  "which is no preset")
    return presets


PRESETS: tuple[Preset, ...] = load_presets()


def preset_named(name: str) -> Preset:
    for preset in PRESETS:
        if preset.name == name:
            return preset
    raise KeyError(f"no preset named {name!r}")
