"""Guided lessons: a few short steps that walk a class through the network, one file a lesson in
`guided/`, validated on load (a file that fails is named with its problem; the others still load).

A lesson file, in TOML (the file's name orders the list: `01-what-a-neuron-learns.toml`)::

    title = "What a neuron learns"
    about = "One sentence: what the class will have seen at the end."

    [[step]]
    title = "Noise at step 0"               # short: the step's heading
    look = "What to look at on the screen, in a sentence or three."
    question = "One question the class can answer from the screen."
    view = "First-layer weights"            # optional: the view the step opens (else the charts)
    preset = "The tutorial recipe"          # optional: set these settings up (see presets.toml)
    run = "start"                           # optional: start, pause, resume or stop the run
    pause_after_epoch = 1                   # optional, with start or resume: pause when it ends
    pace = "an epoch in 5 seconds"          # optional: the run's speed from this step on

A step that starts a run needs a preset (what to train). Runs a lesson starts are named after it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from mlpdash.lessons import FOLDER, PRESETS, LessonError, fields, read_toml, text
from mlpdash.pace import PACES

GUIDED_FOLDER = FOLDER / "guided"
RUN_ACTIONS = ("start", "pause", "resume", "stop")
MIN_STEPS, MAX_STEPS = 3, 8


@dataclass(frozen=True)
class Step:
    title: str
    look: str
    question: str
    view: str | None = None
    preset: str | None = None
    run: str | None = None
    pause_after_epoch: int | None = None
    pace: str | None = None


@dataclass(frozen=True)
class Lesson:
    key: str  # the file's stem: how pages and the server name it
    title: str
    about: str
    steps: tuple[Step, ...]


def _step(table: object, where: str, views: Collection[str] | None) -> Step:
    table = fields(table, where, ("title", "look", "question"),
                   ("view", "preset", "run", "pause_after_epoch", "pace"))
    title = text(table["title"], f"{where}.title", 60)
    where = f"{where} ({title})"
    step = Step(title, text(table["look"], f"{where}.look"), text(table["question"], f"{where}.question", 300),
                table.get("view"), table.get("preset"), table.get("run"), table.get("pause_after_epoch"),
                table.get("pace"))
    presets = {preset.name: preset for preset in PRESETS}
    if step.view is not None and (not isinstance(step.view, str) or (views is not None and step.view not in views)):
        raise LessonError(f"{where}: no view named {step.view!r}" +
                          (f" (views: {', '.join(views)})" if views is not None else ""))
    if step.preset is not None and step.preset not in presets:
        raise LessonError(f"{where}: no preset named {step.preset!r} (presets: {', '.join(presets)})")
    if step.run is not None and step.run not in RUN_ACTIONS:
        raise LessonError(f"{where}: run is one of {', '.join(RUN_ACTIONS)} (got {step.run!r})")
    if step.run == "start" and step.preset is None:
        raise LessonError(f"{where}: a step that starts a run needs a preset (what to train)")
    if step.pace is not None and step.pace not in PACES:
        raise LessonError(f"{where}: unknown pace {step.pace!r} (known: {', '.join(PACES)})")
    if step.pause_after_epoch is not None:
        epochs = presets[step.preset].config.epochs if step.preset else None
        if step.run not in ("start", "resume") or not isinstance(step.pause_after_epoch, int) \
                or isinstance(step.pause_after_epoch, bool) or step.pause_after_epoch < 1 \
                or (epochs is not None and step.pause_after_epoch >= epochs):
            raise LessonError(f"{where}: pause_after_epoch is an epoch before the last of a run the step "
                              "starts or resumes")
    return step


def load_lesson(path: Path, views: Collection[str] | None = None) -> Lesson:
    """One lesson file, validated (its views among `views` when given); LessonError names the problem."""
    where = path.name
    data = fields(read_toml(path), where, ("title", "about", "step"))
    steps = data["step"]
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise LessonError(f"{where}: a lesson has {MIN_STEPS} to {MAX_STEPS} [[step]] tables")
    return Lesson(path.stem, text(data["title"], f"{where}.title", 80), text(data["about"], f"{where}.about", 300),
                  tuple(_step(step, f"{where}: step {i + 1}", views) for i, step in enumerate(steps)))


def load_lessons(views: Collection[str] | None = None,
                 folder: Path = GUIDED_FOLDER) -> tuple[tuple[Lesson, ...], dict[str, str]]:
    """Every lesson of `folder` in its files' order, and the problem of each file that failed."""
    lessons, problems = [], {}
    for path in sorted(folder.glob("*.toml")):
        try:
            lessons.append(load_lesson(path, views))
        except LessonError as err:
            problems[path.name] = str(err)
    return tuple(lessons), problems
