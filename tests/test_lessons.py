"""The lesson presets: read from their file and validated, each sentence's figures its claims', and
each claim's effect shown on the bundled sample by the real engine (the sample's bounds are smaller
than full MNIST's, and stated beside them in presets.toml; `bench --lessons` checks the full ones)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpdash.config import HIGH_LEARNING_RATE, TrainConfig
from mlpdash.lessons import PRESETS, RECIPE, Bound, LessonError, load_presets, preset_named
from mlpdash.lessons.measures import MEASURES
from mlpdash.pace import PACES

GOOD = """
[[preset]]
name = "Tiny"
watch = "It reaches about {test_accuracy}."
settings = { hidden = [16] }
pace = "a batch a second"

  [[preset.claim]]
  measure = "test_accuracy"
  full = { about = 0.95, within = 0.01 }
  sample = { at_least = 0.8 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "presets.toml"
    path.write_text(text)
    return path


def test_every_preset_is_a_distinct_valid_config_whose_sentence_states_its_claims():
    assert len(PRESETS) >= 7 and len({preset.config for preset in PRESETS}) == len(PRESETS)
    for preset in PRESETS:
        assert TrainConfig.from_dict(preset.config.to_dict()) == preset.config
        assert preset.pace in PACES and preset.claims
        assert "{" not in preset.watch and preset.watch.endswith(".")
        for claim in preset.claims:
            assert claim.figure() in preset.watch, (preset.name, claim.figure())


def test_the_presets_set_up_what_they_promise():
    assert preset_named("A linear classifier").config.hidden == ()
    assert preset_named("Learning rate too high").config.learning_rate > HIGH_LEARNING_RATE
    assert preset_named("The tutorial recipe").config == RECIPE
    overfit, dropout = preset_named("Overfitting").config, preset_named("Overfitting, with dropout").config
    assert overfit.replace(dropout=dropout.dropout) == dropout and overfit.dropout == 0 < dropout.dropout
    with pytest.raises(KeyError):
        preset_named("no such preset")


def test_a_good_file_loads_with_its_figure_written_into_its_sentence(tmp_path):
    (preset,) = load_presets(write(tmp_path, GOOD))
    assert preset.watch == "It reaches about 95 %."
    assert preset.config == RECIPE.replace(hidden=(16,)) and preset.pace == "a batch a second"
    assert preset.claims[0].full == Bound("about", 0.95, 0.01)


@pytest.mark.parametrize(("change", "problem"), [
    (("about {test_accuracy}", "about 95 %"), "its figures (none) must be those its claims measure"),
    (("measure = \"test_accuracy\"", "measure = \"speed\""), "unknown measure 'speed'"),
    (("pace = \"a batch a second\"", "pace = \"warp\""), "unknown pace 'warp'"),
    (("hidden = [16]", "hidden = [0]"), "each hidden layer needs 1 to"),
    (("hidden = [16]", "hiden = [16]"), "unknown setting(s): hiden"),
    (("full = { about = 0.95, within = 0.01 }", "full = { about = 0.95 }"), "'about' needs a 'within'"),
    (("sample = { at_least = 0.8 }", "sample = { at_least = 0.8, at_most = 0.9 }"), "exactly one of"),
    (("sample = { at_least = 0.8 }", "sample = { at_least = \"high\" }"), "figures must be numbers"),
    (("name = \"Tiny\"", "title = \"Tiny\""), "missing name; unknown title"),
    (("  measure", "  against = \"Nobody\"\n  measure"), "against 'Nobody', which is no preset"),
    (("[[preset]]", "[[preset]"), "not a TOML file"),
])
def test_a_bad_file_is_refused_naming_the_file_and_what_is_wrong(tmp_path, change, problem):
    old, new = change
    assert old in GOOD
    with pytest.raises(LessonError) as err:
        load_presets(write(tmp_path, GOOD.replace(old, new, 1)))
    assert str(err.value).startswith("presets.toml") and problem in str(err.value), str(err.value)


def test_two_presets_of_one_name_or_an_oversized_file_are_refused(tmp_path):
    with pytest.raises(LessonError, match="two presets named 'Tiny'"):
        load_presets(write(tmp_path, GOOD + GOOD.replace("[16]", "[32]")))
    with pytest.raises(LessonError, match="over 64,000 bytes"):
        load_presets(write(tmp_path, GOOD + "#" * 70_000))


@pytest.fixture(scope="module")
def sample_runs(sample_data, tmp_path_factory) -> dict:
    """Every preset trained on the bundled sample through the real engine (about a minute in all)."""
    from mlpdash.bench.lessons import train_preset

    runs_dir = str(tmp_path_factory.mktemp("preset-runs"))
    return {preset.name: train_preset(preset, sample_data, runs_dir) for preset in PRESETS}


@pytest.mark.parametrize("preset", PRESETS, ids=[preset.name for preset in PRESETS])
def test_each_presets_effect_shows_on_the_sample(preset, sample_runs):
    from mlpdash.bench.lessons import claim_figure

    for claim in preset.claims:
        figure = claim_figure(preset, claim, sample_runs)
        measure = MEASURES[claim.measure]
        assert claim.sample.holds(figure), (f"{preset.name}: {measure.what} {measure.format(figure)} "
                                            f"({figure:.4f}), claimed {claim.sample.describe(measure.format)}")


def test_a_diverged_run_is_what_the_climb_measures_and_nothing_else(sample_runs):
    climb = MEASURES["climb_batches"].read
    assert sample_runs["Learning rate too high"].status.value == "diverged"
    assert climb(sample_runs["The tutorial recipe"]) == 0  # finished: no climb counted


# --- guided lessons -------------------------------------------------------------------------------

LESSON = """
title = "A short lesson"
about = "What the class sees."

[[step]]
title = "Start"
look = "The recipe starts."
question = "What do you see?"
preset = "A tiny network (16 units)"
run = "start"
pause_after_epoch = 1

[[step]]
title = "Weights"
look = "The weights."
question = "Which tile?"
view = "First-layer weights"

[[step]]
title = "On"
look = "It goes on."
question = "And now?"
run = "resume"
pace = "full speed"
"""
VIEW_NAMES = ["First-layer weights", "Units"]


def test_every_guided_lesson_loads_with_views_presets_and_questions_that_exist():
    from mlpdash.lessons.guided import load_lessons
    from mlpdash.ui.tabs import VIEWS

    found, problems = load_lessons([view.name for view in VIEWS])
    assert problems == {}
    assert {"What a neuron learns", "Why learning rate matters", "Overfitting and how to fight it",
            "Inside one prediction"} <= {lesson.title for lesson in found}
    for lesson in found:
        assert 3 <= len(lesson.steps) <= 8
        assert any(step.run == "start" for step in lesson.steps), lesson.title  # it shows something live
        for step in lesson.steps:
            assert step.question.endswith("?") and step.look.endswith("."), (lesson.title, step.title)
            assert step.view is None or step.view in {view.name for view in VIEWS}
            assert step.preset is None or preset_named(step.preset)


def test_a_guided_lesson_file_loads_in_order_of_its_steps(tmp_path):
    from mlpdash.lessons.guided import load_lessons

    (tmp_path / "01-short.toml").write_text(LESSON)
    (lesson,), problems = load_lessons(VIEW_NAMES, tmp_path)
    assert problems == {} and lesson.key == "01-short" and lesson.title == "A short lesson"
    assert [step.title for step in lesson.steps] == ["Start", "Weights", "On"]
    assert lesson.steps[0].pause_after_epoch == 1 and lesson.steps[1].view == "First-layer weights"


@pytest.mark.parametrize(("change", "problem"), [
    (('view = "First-layer weights"', 'view = "Weights"'), "no view named 'Weights'"),
    (('preset = "A tiny network (16 units)"', 'preset = "Huge"'), "no preset named 'Huge'"),
    (('preset = "A tiny network (16 units)"\n', ''), "a step that starts a run needs a preset"),
    (('run = "resume"', 'run = "rewind"'), "run is one of start, pause, resume, stop"),
    (('pace = "full speed"', 'pace = "ludicrous"'), "unknown pace 'ludicrous'"),
    (('pause_after_epoch = 1', 'pause_after_epoch = 10'), "pause_after_epoch is an epoch before the last"),
    (('question = "Which tile?"\n', ''), "step 2: missing question"),
    (('[[step]]\ntitle = "On"', '[[stop]]\ntitle = "On"'), "unknown stop"),
])
def test_a_bad_guided_lesson_is_named_with_its_problem_and_the_others_still_load(tmp_path, change, problem):
    from mlpdash.lessons.guided import load_lessons

    old, new = change
    assert old in LESSON
    (tmp_path / "01-bad.toml").write_text(LESSON.replace(old, new, 1))
    (tmp_path / "02-good.toml").write_text(LESSON)
    found, problems = load_lessons(VIEW_NAMES, tmp_path)
    assert [lesson.key for lesson in found] == ["02-good"]
    assert list(problems) == ["01-bad.toml"] and problem in problems["01-bad.toml"], problems


def test_a_lesson_of_too_few_steps_is_refused(tmp_path):
    from mlpdash.lessons.guided import load_lesson

    two = LESSON[: LESSON.rindex("[[step]]")]
    (tmp_path / "two.toml").write_text(two)
    with pytest.raises(LessonError, match="3 to 8"):
        load_lesson(tmp_path / "two.toml", VIEW_NAMES)
