"""Lesson presets: one click sets up a classic experiment, and one sentence says what to watch.

A preset only fills the settings (a person still presses Start). Each is a TrainConfig, so the
presets are checked by the same validation as anything typed into the form.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlpdash.config import TrainConfig


@dataclass(frozen=True)
class Lesson:
    name: str
    watch: str  # what to look for, in one sentence
    config: TrainConfig


RECIPE = TrainConfig(lr_schedule="constant")

LESSONS: tuple[Lesson, ...] = (
    Lesson("The tutorial recipe",
           "The loss falls steeply in the first epoch and slowly after; on full MNIST about 98 % of the "
           "test digits end up right.", RECIPE),
    Lesson("A linear classifier",
           "It levels off near 92 %, the ceiling of a linear model; under First-layer weights its ten "
           "tiles are templates of the ten digits.", RECIPE.replace(hidden=())),
    Lesson("A tiny network (16 units)",
           "Sixteen hidden units already get most of the way (about 95 %): depth and width buy the "
           "last few per cent.", RECIPE.replace(hidden=(16,))),
    Lesson("Learning rate too high",
           "The loss blows up within the first epoch and the run ends as diverged: each step "
           "overshoots.", RECIPE.replace(learning_rate=1.0)),
    Lesson("Learning rate too low",
           "The loss creeps down: after 10 epochs the model is far behind the recipe, though nothing "
           "is wrong but the step size.", RECIPE.replace(optimizer="sgd", learning_rate=1e-4)),
    Lesson("Overfitting",
           "On 1,000 training digits the training accuracy reaches 100 % while validation stalls and "
           "its loss turns up: the network memorises.",
           RECIPE.replace(train_digits=1000, epochs=40)),
    Lesson("Overfitting, with dropout",
           "The same small set with half the hidden units dropped at each step: the gap between "
           "training and validation narrows.",
           RECIPE.replace(train_digits=1000, epochs=40, dropout=0.5)),
)


def lesson_named(name: str) -> Lesson:
    for lesson in LESSONS:
        if lesson.name == name:
            return lesson
    raise KeyError(f"no lesson named {name!r}")
