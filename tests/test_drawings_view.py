"""Your drawings with Streamlit's AppTest: Save as… under the canvas, the tab's gallery, relabel and
delete, the model evaluated on them (against a direct computation), one opened in Inside a prediction,
fine-tuning as a new run, and a zip imported (a bad one refused)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from apptest import drawing_state
from streamlit.testing.v1 import AppTest

from mlpdash.drawings import listing
from mlpdash.runs import list_runs

TAB = "Your drawings"
# The page: the `app` fixture (conftest), its drawings in tmp_path / "drawings".


def train(at: AppTest, tmp_path: Path) -> None:
    at.text_input(key="hidden").input("32")
    at.number_input(key="epochs").set_value(2)
    at.run()
    at.button(key="start_training").click().run()
    deadline = time.monotonic() + 120
    while not any(run.summary for run in list_runs(tmp_path / "runs")):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    while at.button(key="start_training").disabled:
        assert time.monotonic() < deadline
        time.sleep(0.3)
        at.run()


def save_digits(at: AppTest, sample_data, indices) -> list[int]:
    """Draw each test digit on the canvas and save it as its own label; returns the labels."""
    labels = []
    for index in indices:
        generation = at.session_state["canvas_generation"]
        at.session_state[f"canvas_{generation}"] = drawing_state(sample_data.x_test[index])
        at.run()
        label = int(sample_data.y_test[index])
        at.button(key=f"save_as_{label}").click().run()
        assert not at.exception and not [e for e in at.error if "Not saved" in e.value]
        assert at.session_state["canvas_generation"] == generation + 1  # cleared for the next one
        labels.append(label)
    return labels


def test_save_as_is_offered_only_for_a_drawing(app):
    assert all(app.button(key=f"save_as_{d}").disabled for d in range(10))
    app.session_state["view_tab"] = TAB
    app.run()
    assert [i.value for i in app.info if "No drawings kept yet" in i.value]


def test_drawings_saved_are_shown_evaluated_relabelled_deleted_and_explained(app, sample_data, tmp_path):
    train(app, tmp_path)
    labels = save_digits(app, sample_data, range(5))
    kept = listing(tmp_path / "drawings")
    assert [d.label for d in kept] == labels
    app.session_state["view_tab"] = TAB
    app.run()
    assert not app.exception
    assert [c.value for c in app.caption if c.value.startswith("5 drawings in")]
    # The accuracy said is the model's on the drawings, as the canvas prepares them.
    from mlpdash.drawings import evaluate
    from mlpdash.predict import Predictor
    from mlpdash.runs import load_run_model

    expected = evaluate(tmp_path / "drawings", Predictor(load_run_model(list_runs(tmp_path / "runs")[0].path)).logits)
    said = [c.value for c in app.caption if "drawings read right" in c.value]
    assert said and f"**{expected.accuracy:.1%}** of 5 drawings" in said[0]
    # Select one (as a click on the gallery does), relabel it, then delete it.
    first = kept[0]
    app.session_state["drawings_selected"] = first.file
    app.run()
    new_label = (first.label + 1) % 10
    app.selectbox(key=f"drawings_label_{first.file}").set_value(new_label).run()
    assert [c.value for c in app.caption if "Saved as a" in c.value]  # the last save, confirmed
    app.button(key="drawings_relabel").click().run()
    assert listing(tmp_path / "drawings")[0].label == new_label
    app.button(key="drawings_explain").click().run()
    assert app.session_state["view_tab"] == "Inside a prediction"
    assert any(f"your saved drawing {first.file} (labelled {new_label})" in c.value for c in app.caption)
    # "5 drawings kept" under Save as… would be wrong after a relabel or a delete: it is let go.
    assert not [c.value for c in app.caption if "Saved as a" in c.value]
    app.session_state["view_tab"] = TAB
    app.run()
    save_digits(app, sample_data, [5])
    assert [c.value for c in app.caption if "Saved as a" in c.value]
    app.session_state["drawings_selected"] = first.file
    app.run()
    app.button(key="drawings_delete").click().run()
    files = [d.file for d in listing(tmp_path / "drawings")]
    assert files[:-1] == [d.file for d in kept[1:]] and first.file not in files
    assert not app.exception
    assert not [c.value for c in app.caption if "Saved as a" in c.value]


def test_fine_tuning_from_the_tab_makes_a_new_run_in_focus(app, sample_data, tmp_path):
    train(app, tmp_path)
    save_digits(app, sample_data, range(4))
    app.session_state["view_tab"] = TAB
    app.run()
    app.number_input(key="drawings_ft_epochs").set_value(2).run()
    app.button(key="drawings_finetune").click().run()
    assert not app.exception and not [e.value for e in app.error]
    # The fine-tune is the server's job, in the background: Start waits for it, as for a training run.
    deadline = time.monotonic() + 120
    while app.button(key="start_training").disabled:
        assert time.monotonic() < deadline and not app.exception
        time.sleep(0.3)
        app.run()
    runs = list_runs(tmp_path / "runs")
    assert len(runs) == 2 and runs[0].name.endswith("fine-tuned on 4 drawings")
    assert [m.value for m in app.markdown if m.value.startswith("**Finished")]
    assert app.session_state["view_run"] is None  # not picked: the new run is the current job's
    table = app.table[-1].value
    assert list(table["accuracy on"]) == ["the 1 held-out drawings", "all 4 drawings", "the MNIST test split"]
    assert [s.value for s in app.success if "fine-tuned from" in s.value]


def test_drawings_are_imported_from_a_zip_and_a_bad_one_is_refused(app, sample_data, tmp_path):
    from mlpdash.drawings import export_zip, save

    other = tmp_path / "elsewhere"
    for i in range(3):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[70:210, 70:210] = np.kron(sample_data.x_test[i], np.ones((5, 5), np.uint8))
        save(other, canvas, int(sample_data.y_test[i]))
    app.session_state["view_tab"] = TAB
    app.run()
    app.get("file_uploader")[0].set_value(("broken.zip", b"not a zip at all", "application/zip")).run()
    app.button(key="drawings_import_apply").click().run()
    assert [e.value for e in app.error if e.value.startswith("Not imported")]
    assert listing(tmp_path / "drawings") == [] and not app.exception
    app.get("file_uploader")[0].set_value(("mine.zip", export_zip(other), "application/zip")).run()
    app.button(key="drawings_import_apply").click().run()
    assert [d.file for d in listing(tmp_path / "drawings")] == [d.file for d in listing(other)]
    assert [c.value for c in app.caption if c.value.startswith("3 drawings in")] and not app.exception


# --- keeping up (issue 21) -------------------------------------------------------------------------


def test_a_save_is_confirmed_under_its_buttons_with_no_toast(app, sample_data, tmp_path):
    app.session_state["view_tab"] = TAB
    app.run()
    labels = save_digits(app, sample_data, range(2))
    [done] = [c.value for c in app.caption if "Saved as a" in c.value]
    assert f"Saved as a {labels[-1]} — 2 drawings kept" in done and "Draw the next one" in done
    assert not app.toast  # a toast sat over the canvas, where the next stroke starts
    assert [c.value for c in app.caption if c.value.startswith("2 drawings in")]


def test_the_folder_stamp_changes_with_every_save_relabel_and_delete(tmp_path, sample_data):
    from mlpdash.drawings import delete, relabel, save
    from mlpdash.ui.drawings_view import folder_stamp

    root = tmp_path / "drawings"
    stamps = [folder_stamp(root)]
    assert stamps == [None]  # no folder yet
    first = save(root, sample_data.x_test[0], 7)
    stamps.append(folder_stamp(root))
    save(root, sample_data.x_test[1], 2)
    stamps.append(folder_stamp(root))
    relabel(root, first.file, 1)
    stamps.append(folder_stamp(root))
    delete(root, first.file)
    stamps.append(folder_stamp(root))
    assert len(set(stamps)) == len(stamps), stamps
    assert folder_stamp(root) == stamps[-1]  # and stays while nothing changes


def test_a_diverged_run_is_said_under_the_canvas_and_in_the_views_not_train_first(app):
    from apptest import train_until_diverged

    app.text_input(key="hidden").input("32")
    train_until_diverged(app)
    said = [i.value for i in app.info]
    assert [s for s in said if s.startswith("The current run diverged") and "lower the learning rate" in s.lower()], said
    assert not [s for s in said if "Train a model first" in s], said
    for view in ("Inside a prediction", TAB):
        app.session_state["view_tab"] = view
        app.run()
        said = [i.value for i in app.info]
        assert [s for s in said if s.startswith("The current run diverged")], (view, said)
        assert not [s for s in said if "Train a model first" in s], (view, said)
