"""The page's logic with Streamlit's AppTest: the real app.py, real widgets, real (small) training."""

from __future__ import annotations

import time

import numpy as np
import pytest
from apptest import drawing_state, new_page, status_text, wait_until
from streamlit.testing.v1 import AppTest

# The page: the `app` fixture (conftest), a fresh page on a fresh runs folder.


def configure(at: AppTest, hidden: str = "32", epochs: int = 1) -> AppTest:
    at.text_input(key="hidden").input(hidden)
    at.number_input(key="epochs").set_value(epochs)
    return at.run()


def test_defaults_are_the_recipe_and_start_is_ready(app):
    assert not app.exception
    assert app.text_input(key="hidden").value == "700,500"
    assert app.selectbox(key="activation").value == "relu"
    assert app.selectbox(key="optimizer").value == "adam"
    assert app.number_input(key="learning_rate").value == pytest.approx(1e-3)
    assert app.selectbox(key="lr_schedule").value == "cosine"
    assert app.number_input(key="batch_size").value == 128
    assert app.number_input(key="epochs").value == 10
    assert app.number_input(key="seed").value == 22
    assert app.selectbox(key="data_kind").value == "sample"  # from MLPDASH_DATA
    assert any("bundled 10,000-digit MNIST sample" in c.value for c in app.caption)
    # Training on the sample is said plainly, with the way to full MNIST.
    assert any("6,000 of them to train on" in c.value and "TensorFlow Datasets" in c.value for c in app.caption)
    assert not app.button(key="start_training").disabled
    assert app.button(key="pause_training").disabled and app.button(key="stop_training").disabled
    assert "Idle" in status_text(app)


@pytest.mark.parametrize(
    ("key", "kind", "value", "words"),
    [
        ("hidden", "text_input", "abc", "comma-separated positive integers"),
        ("epochs", "number_input", 0, "epochs must be 1 to 1000"),
        ("learning_rate", "number_input", 0.0, "learning rate must be above 0"),
        ("dropout", "number_input", 1.0, "dropout must be at least 0 and below 1"),
    ],
)
def test_an_invalid_setting_is_explained_and_blocks_start(app, key, kind, value, words):
    widget = getattr(app, kind)(key=key)
    (widget.input(value) if kind == "text_input" else widget.set_value(value)).run()
    assert [e.value for e in app.error if words in e.value]
    assert app.button(key="start_training").disabled
    fixed = "700,500" if kind == "text_input" else {"epochs": 10, "learning_rate": 1e-3, "dropout": 0.0}[key]
    widget = getattr(app, kind)(key=key)
    (widget.input(fixed) if kind == "text_input" else widget.set_value(fixed)).run()
    assert not app.error and not app.button(key="start_training").disabled


def test_a_missing_idx_folder_is_explained_and_blocks_start(app):
    app.selectbox(key="data_kind").set_value("idx").run()
    app.text_input(key="idx_folder").input("/no/such/mnist").run()
    assert [e.value for e in app.error if "/no/such/mnist" in e.value]
    assert app.button(key="start_training").disabled


def test_a_folder_without_idx_files_is_refused_when_chosen_and_no_missing_path_is_suggested(
        app, tmp_path, monkeypatch):
    import mlpdash.ui.sidebar as sidebar

    # A machine without the usual folder (a fresh clone): the field starts empty and says what to enter.
    monkeypatch.setattr(sidebar, "DEFAULT_IDX_FOLDER", str(tmp_path / "no-shared-folder"))
    app.selectbox(key="data_kind").set_value("idx").run()
    assert app.text_input(key="idx_folder").value == ""
    assert [i.value for i in app.info if "Name the folder" in i.value]
    assert app.button(key="start_training").disabled
    empty = tmp_path / "not-mnist"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    app.text_input(key="idx_folder").input(str(empty)).run()
    assert [e.value for e in app.error if "holds no MNIST IDX files" in e.value]
    assert not [c.value for c in app.caption if c.value.startswith("Uses:")]
    assert app.button(key="start_training").disabled


def test_the_learning_rate_shows_the_value_used_and_a_high_one_is_warned_not_refused(app):
    field = app.number_input(key="learning_rate")
    assert field.format == "%g"  # 5e-05 shows as 5e-05, not a rounded 0.0001
    field.set_value(0.5).run()
    assert [w.value for w in app.warning if "likely diverge" in w.value]
    assert not app.button(key="start_training").disabled  # a lesson worth seeing: allowed
    app.number_input(key="learning_rate").set_value(5e-05).run()
    assert not app.warning and app.number_input(key="learning_rate").value == pytest.approx(5e-05)


def test_a_new_tab_shows_the_running_jobs_data_source(app, monkeypatch):
    app.selectbox(key="data_kind").set_value("sample").run()
    configure(app, epochs=200)
    app.button(key="start_training").click().run()
    try:
        # Without MLPDASH_DATA a new page would offer "auto"; this server's job trains on the sample,
        # and a new tab (or a reload) says so instead of quietly offering another source.
        monkeypatch.delenv("MLPDASH_DATA")
        other_tab = new_page().run()
        assert other_tab.selectbox(key="data_kind").value == "sample"
    finally:
        app.button(key="stop_training").click().run()
    wait_until(app, "Stopped")


def test_a_lesson_preset_fills_the_settings_says_what_to_watch_and_does_not_start(app):
    app.selectbox(key="lesson").set_value("Overfitting").run()
    assert not app.exception and not app.warning
    assert app.number_input(key="train_digits").value == 1000
    assert app.number_input(key="epochs").value == 40
    assert app.number_input(key="dropout").value == 0
    assert app.selectbox(key="lr_schedule").value == "constant"
    assert app.selectbox(key="pace").value == "an epoch a second"  # 40 epochs a class can watch
    assert [c.value for c in app.caption if c.value.startswith("**Watch:**") and "memorises" in c.value]
    assert "Idle" in status_text(app) and not app.button(key="start_training").disabled
    app.selectbox(key="lesson").set_value("A linear classifier").run()
    assert app.text_input(key="hidden").value == "0"
    assert app.number_input(key="train_digits").value == 0  # a preset sets every setting
    # What the preset filled is still the person's to change.
    app.number_input(key="epochs").set_value(3).run()
    assert app.number_input(key="epochs").value == 3 and not app.error


def test_the_empty_charts_span_the_epochs_that_are_set(app):
    import json

    app.number_input(key="epochs").set_value(25).run()
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    loss = next(spec for spec in specs if spec["layout"]["title"]["text"] == "Loss")
    accuracy = next(spec for spec in specs if spec["layout"]["title"]["text"] == "Accuracy")
    assert loss["layout"]["xaxis"]["range"] == [0, 25] == accuracy["layout"]["xaxis"]["range"]
    assert loss["layout"]["yaxis"]["type"] == "log"


def test_a_short_run_shows_live_charts_then_its_results(app):
    configure(app, epochs=2)
    app.button(key="start_training").click().run()
    assert not app.exception
    assert app.button(key="start_training").disabled  # one job at a time
    wait_until(app, "Finished — test accuracy")
    charts = app.get("plotly_chart")
    assert len(charts) >= 4  # loss, accuracy, confusion matrix, per-class accuracy (+ weights)
    assert [m for m in app.metric if m.label == "Test accuracy"]
    assert not app.button(key="start_training").disabled
    # The run is listed under Runs (tabs are lazy: only the open one runs).
    assert not app.dataframe
    app.session_state["view_tab"] = "Runs & comparison"
    app.run()
    assert "finished" in str(app.dataframe[0].value.to_dict())


def test_a_second_start_from_a_stale_tab_is_refused(app, tmp_path, monkeypatch):
    other_tab = new_page().run()  # rendered while idle
    configure(app, epochs=200)
    app.button(key="start_training").click().run()
    try:
        other_tab.button(key="start_training").click().run()  # its Start was drawn enabled
        assert not other_tab.exception
        # The click does not start a second job; the tab now shows the running one and says why.
        assert other_tab.button(key="start_training").disabled
        assert [c.value for c in other_tab.caption if "one trains at a time" in c.value]
        assert "Training" in status_text(other_tab) or "Loading" in status_text(other_tab)
    finally:
        app.button(key="stop_training").click().run()
    # Stopped after some batches, or before the first one ended (then nothing is saved).
    wait_until(app, "Stopped")


def test_a_drawing_is_answered_by_the_trained_model(app, sample_data):
    prediction_texts = lambda: [m.value for m in app.markdown if "Prediction" in m.value]  # noqa: E731
    assert any("Train a model first" in i.value for i in app.info)
    configure(app, hidden="64", epochs=3)
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    assert any("Draw a digit" in m.value for m in app.markdown)  # blank canvas: no guess
    index = int(np.flatnonzero(sample_data.y_test == 7)[0])
    app.session_state["canvas_0"] = drawing_state(sample_data.x_test[index])
    app.run()
    assert not app.exception
    assert prediction_texts() == ["### Prediction: 7"]


def test_reruns_leave_the_training_engines_keras_state_alone(app, monkeypatch):
    # Streamlit clears Keras' session after every script run unless the page opts out; with a job
    # training in a thread that threw away TensorFlow's kernel cache every second (30x slower).
    import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(a))
    for _ in range(3):
        app.run()
    assert not app.exception
    assert calls == []


def test_inside_a_prediction_follows_the_drawing_and_a_test_digit(app, sample_data):
    app.session_state["view_tab"] = "Inside a prediction"
    app.run()
    assert any("Train a model first" in i.value for i in app.info)
    configure(app, hidden="64,32", epochs=2)
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    assert any("Draw a digit on the canvas above" in i.value for i in app.info)
    index = int(np.flatnonzero(sample_data.y_test == 3)[0])
    app.session_state["canvas_0"] = drawing_state(sample_data.x_test[index])
    app.run()
    assert not app.exception
    explained = [c.value for c in app.caption if "input: your drawing" in c.value]
    assert explained and "read as **" in explained[0]
    # The numbers: for the answer and the runner-up, the pixels' sum plus the bias is the logit.
    (table,) = [frame.value for frame in app.table if "logit" in frame.value.columns]
    assert len(table) == 2 and list(table["sum"]) == pytest.approx(list(table["logit"]), abs=2e-3)
    assert any("a linear classifier with these templates" in m.value for m in app.markdown)
    headings = [m.value for m in app.markdown if m.value.startswith("##### ")]
    assert [h.split(" · ")[0] for h in headings] == [f"##### {n}" for n in range(1, 6)], headings
    # A test digit instead of the drawing, and an attack towards another digit.
    app.segmented_control(key="explain_source").set_value("A test digit").run()
    app.number_input(key="explain_index").set_value(5).run()
    assert [c.value for c in app.caption if f"test digit #5 (labelled {int(sample_data.y_test[5])})" in c.value]
    answer = int([c.value for c in app.caption if "test digit #5" in c.value][0].split("read as **")[1][0])
    target = str((answer + 1) % 10)
    app.selectbox(key="explain_target").set_value(target).run()
    assert not app.exception
    said = [c.value for c in app.caption if "Changing each pixel by at most" in c.value or "Not even" in c.value]
    assert said, [c.value for c in app.caption]


def test_inside_a_prediction_explains_the_live_model_mid_training(app, sample_data):
    configure(app, hidden="32", epochs=200)
    app.session_state["view_tab"] = "Inside a prediction"
    app.session_state["canvas_0"] = drawing_state(sample_data.x_test[0])
    app.button(key="start_training").click().run()
    try:
        deadline = time.monotonic() + 120
        while not [c for c in app.caption if "The current run, live" in c.value]:
            assert time.monotonic() < deadline, [c.value for c in app.caption]
            time.sleep(0.3)
            app.run()
        assert not app.exception
        (table,) = [frame.value for frame in app.table if "logit" in frame.value.columns]
        assert list(table["sum"]) == pytest.approx(list(table["logit"]), abs=2e-3)
    finally:
        app.button(key="stop_training").click().run()
    wait_until(app, "Stopped")



def test_weights_over_time_scrubs_the_epochs_and_follows_a_unit_and_a_digit(app, sample_data):
    app.session_state["view_tab"] = "Weights over time"
    app.run()
    assert any("Train a model first" in i.value for i in app.info)
    configure(app, hidden="48,16", epochs=3)
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    assert not app.exception
    assert [c.value for c in app.caption if "4 kept states of the model, step 0 to epoch 3" in c.value]
    slider = app.select_slider(key="weights_epoch")
    assert slider.options == ["step 0", "epoch 1", "epoch 2", "epoch 3"] and slider.value == 3
    slider.set_value(1).run()
    assert not app.exception
    assert app.select_slider(key="weights_epoch").value == 1
    app.segmented_control(key="weights_time_mode").set_value("Change since step 0").run()
    app.number_input(key="weights_follow_unit").set_value(7).run()
    assert not app.exception
    # The digit: nothing drawn yet, then a test digit, read by the model of every epoch.
    assert any("Draw a digit on the canvas above" in i.value for i in app.info)
    app.segmented_control(key="weights_digit_source").set_value("A test digit").run()
    app.number_input(key="weights_digit_index").set_value(4).run()
    said = [c.value for c in app.caption if "For test digit #4" in c.value]
    assert said and f"(a {int(sample_data.y_test[4])})" in said[0] and "at epoch 1 the model reads" in said[0]
    # Play starts at the beginning when the slider is at the end, and steps on by itself.
    app.select_slider(key="weights_epoch").set_value(3).run()
    app.button(key="weights_play").click().run()
    assert app.session_state["weights_playing"]
    assert app.select_slider(key="weights_epoch").value == 0
    # Each timed rerun is one step; at the last epoch the play stops by itself.
    for expected in (1, 2, 3):
        app.run()
        assert app.select_slider(key="weights_epoch").value == expected
    app.run()
    assert not app.session_state["weights_playing"] and app.select_slider(key="weights_epoch").value == 3


def test_mistakes_show_a_cells_images_the_hardest_and_the_validation_split_by_epoch(app, sample_data):
    app.session_state["view_tab"] = "Mistakes"
    configure(app, hidden="32", epochs=2)
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    assert not app.exception
    assert [c.value for c in app.caption if "test split: 2,000 digits" in c.value and "read right" in c.value]
    assert any("Click a cell of the matrix" in i.value for i in app.info)
    # A click on a cell (the chart's selection callback stores the cell): its images, or that it is empty.
    app.session_state["mistakes_cell"] = (4, 9)
    app.run()
    assert not app.exception
    said = [c.value for c in app.caption if "4s read as 9, the most confident first" in c.value]
    assert said or [i.value for i in app.info if "No 4 was read as 9 on the test split" in i.value]
    app.session_state["mistakes_cell"] = (1, 1)
    app.run()
    assert [c.value for c in app.caption if "1s read right, the least confident first" in c.value]
    # The validation split after epoch 1, and a cell on its diagonal.
    app.segmented_control(key="mistakes_split").set_value("Validation split, by epoch").run()
    assert app.select_slider(key="mistakes_epoch").value == 2
    app.select_slider(key="mistakes_epoch").set_value(1).run()
    assert [c.value for c in app.caption if "after epoch 1 · validation split" in c.value]
    app.session_state["mistakes_cell"] = (3, 3)
    app.run()
    assert not app.exception
    assert [c.value for c in app.caption if "3s read right, the least confident first" in c.value]
    # A digit handed over to Inside a prediction (what a click on a digit does).
    app.session_state["explain_source"] = "A validation digit"
    app.session_state["explain_index"] = 7
    app.session_state["view_tab"] = "Inside a prediction"
    app.run()
    assert not app.exception
    label = int(sample_data.y_val[7])
    assert [c.value for c in app.caption if f"input: validation digit #7 (labelled {label})" in c.value]


def test_units_open_a_card_and_switch_units_off_in_the_lab(app, sample_data):
    app.session_state["view_tab"] = "Units"
    app.run()
    assert any("Train a model first" in i.value for i in app.info)
    configure(app, hidden="40,8", epochs=2)  # a layer of fewer units than the lab's default k
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    assert not app.exception
    assert [m.value for m in app.markdown if m.value == "##### Layer 1, unit 0"]
    app.number_input(key="units_unit").set_value(7).run()
    assert [m.value for m in app.markdown if m.value == "##### Layer 1, unit 7"]
    off = [c.value for c in app.caption if c.value.startswith("Switched off, the model reads")]
    assert off and "intact:" in off[0]
    # The second layer's unit: its template is averaged over the digits that switch it on.
    app.segmented_control(key="units_layer").set_value(2).run()
    assert not app.exception
    assert [c.value for c in app.caption if "its exact template averaged over the" in c.value]
    # The lab: the 10 most important units off, then a random 50 %.
    lab = [m.value for m in app.markdown if "units off: test accuracy" in m.value]
    assert lab and lab[0].startswith("**8** of 8 units off")
    app.segmented_control(key="units_lab_mode").set_value("A random k %").run()
    app.number_input(key="units_lab_k").set_value(50).run()
    assert [m.value for m in app.markdown if m.value.startswith("**4** of 8 units off")]
    # A card's button adds its unit to the lab's own list.
    app.button(key="units_to_lab").click().run()
    assert app.session_state["units_lab_mode"] == "These units"
    assert [m.value for m in app.markdown if m.value.startswith("**1** of 8 units off")]
    app.text_input(key="units_lab_list").set_value("3,99").run()
    assert any("units must be 0 to 7" in w.value for w in app.warning)
    assert not app.exception
    # Break it: zero every bias, quantise to 2 bits; then Reset.
    app.toggle(key="units_break_biases").set_value(True).run()
    app.select_slider(key="units_break_bits").set_value(2).run()
    assert not app.exception
    assert [m.value for m in app.markdown if m.value.startswith("Test accuracy **")]
    app.button(key="units_break_reset").click().run()
    assert app.toggle(key="units_break_biases").value is False
    assert app.select_slider(key="units_break_bits").value == "off"


def test_a_unit_opens_in_units_from_the_weights_grid(app):
    configure(app, hidden="30", epochs=1)
    app.button(key="start_training").click().run()
    wait_until(app, "Finished")
    app.session_state["view_tab"] = "First-layer weights"
    app.run()
    app.number_input(key="weights_unit").set_value(12).run()
    app.button(key="weights_open_unit").click().run()
    assert not app.exception
    assert app.session_state["view_tab"] == "Units"
    assert [m.value for m in app.markdown if m.value == "##### Layer 1, unit 12"]


def test_the_data_view_shows_the_source_in_use(app, sample_data):
    app.session_state["view_tab"] = "Data"
    app.run()
    assert not app.exception
    said = [m.value for m in app.markdown if "10,000 digits: 6,000 for training" in m.value]
    assert said and "bundled" in said[0]
    assert [c.value for c in app.caption if "CC BY-SA 3.0" in c.value]
    app.button(key="data_reshuffle").click().run()
    assert app.session_state["data_view_seed"] == 1 and not app.exception


def test_a_saved_run_in_focus_names_its_own_settings_beside_the_next_runs(app_env):
    """The sidebar's settings are the next run's: with a saved linear run in focus they still read
    700,500 / relu, so the sidebar says what the run shown was trained with, and offers it."""
    from mlpdash.config import TrainConfig
    from mlpdash.runs import RunWriter
    from mlpdash.ui.choices import RUN_KEY

    writer = RunWriter(app_env, TrainConfig(hidden=(), optimizer="sgd", learning_rate=0.5, epochs=3), "sample")
    writer.write_summary({"test_accuracy": 0.9, "test_loss": 0.3, "stopped_early": False, "epochs_completed": 3})
    writer.close()
    at = new_page().run()
    assert not [c.value for c in at.sidebar.caption if "for the next run" in c.value]
    at.session_state[RUN_KEY] = str(writer.path)
    at.run()
    [said] = [c.value for c in at.sidebar.caption if "for the next run" in c.value]
    assert f"**{writer.path.name}**" in said
    assert "784-10 linear · sgd, learning rate 0.5, cosine · batch 128 · 3 epochs" in said
    assert at.text_input(key="hidden").value == "700,500"  # the next run's, untouched
    at.sidebar.button(key="use_run_settings").click().run()
    assert not at.exception
    assert (at.text_input(key="hidden").value, at.selectbox(key="optimizer").value) == ("0", "sgd")
    assert (at.number_input(key="learning_rate").value, at.number_input(key="epochs").value) == (0.5, 3)
    at.session_state[RUN_KEY] = None
    at.run()
    assert not [c.value for c in at.sidebar.caption if "for the next run" in c.value]
