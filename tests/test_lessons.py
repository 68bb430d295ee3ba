"""The lesson presets: valid settings, each different from the others, each saying what to watch."""

from __future__ import annotations

import pytest

from mlpdash.config import HIGH_LEARNING_RATE, TrainConfig
from mlpdash.lessons import LESSONS, lesson_named


def test_every_lesson_is_a_distinct_valid_config_with_something_to_watch():
    assert len({lesson.config for lesson in LESSONS}) == len(LESSONS)
    for lesson in LESSONS:
        assert TrainConfig.from_dict(lesson.config.to_dict()) == lesson.config
        assert lesson.watch.endswith(".") and 40 < len(lesson.watch) < 200


def test_the_lessons_set_up_what_they_promise():
    assert lesson_named("A linear classifier").config.hidden == ()
    assert lesson_named("Learning rate too high").config.learning_rate > HIGH_LEARNING_RATE
    overfit, dropout = lesson_named("Overfitting").config, lesson_named("Overfitting, with dropout").config
    assert overfit.train_digits == dropout.train_digits > 0 and overfit.dropout == 0 < dropout.dropout
    with pytest.raises(KeyError):
        lesson_named("no such lesson")
