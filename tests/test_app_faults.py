"""The page under hostile input and in classroom mode, with Streamlit's AppTest on the real app.py."""

from __future__ import annotations

import base64
import io
import os

import numpy as np
import pytest
import streamlit as st
from apptest import new_page, status_text, train_until_diverged
from PIL import Image
from streamlit.testing.v1 import AppTest

from mlpdash.config import TrainConfig
from mlpdash.model import build_network, network_weights
from mlpdash.runs import RunWriter, list_runs

ROWS = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.0}]


@pytest.fixture
def runs_dir(app_env):
    """The runs folder of the page's environment (conftest): these tests plant runs before a page opens."""
    return app_env


def page() -> AppTest:
    return new_page().run()


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def canvas_state(data) -> dict:
    return {"drawing": {"raw": {"objects": []}, "data": data}, "backgroundFit": None}


def killed_run(root) -> RunWriter:
    """A run whose process died after one epoch: weights and metrics saved, lock file left behind."""
    config = TrainConfig(hidden=(16,), epochs=5)
    writer = RunWriter(root, config, "sample")
    writer.write_epoch(ROWS, network_weights(build_network(config)))
    os.close(writer._lock_fd)
    return writer


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (lambda: png_data_url(np.zeros((8000, 8000, 4), np.uint8)), "8000x8000 px, not the canvas's 280x280"),
        (lambda: png_data_url(np.zeros((280, 280), np.uint16)), "not 8-bit RGBA"),
        (lambda: "data:image/png;base64,bm90IGEgcG5n", "did not send a PNG"),
        (lambda: "no data url at all", "could not be read"),
    ],
    ids=["oversized", "16-bit", "not-png", "not-a-data-url"],
)
def test_a_hostile_canvas_image_is_refused_with_a_message(runs_dir, data, words):
    killed_run(runs_dir)  # a model to answer with, so the drawing is really read
    at = page()
    at.session_state["canvas_0"] = canvas_state(data())
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert words in warnings and "draw again" in warnings.lower()
    assert not [m for m in at.markdown if "Prediction:" in m.value]


def test_a_failing_panel_shows_a_short_message_and_the_rest_of_the_page_works(runs_dir, monkeypatch):
    from mlpdash import figures

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(figures, "loss_figure", broken)
    st.cache_resource.clear()  # figures shared between sessions: build them anew, with the broken one
    at = page()
    assert not at.exception
    [error] = [e.value for e in at.error if "training charts panel" in e.value]
    assert "Error id" in error and "secret internals" not in error and "Traceback" not in error
    assert "Idle" in status_text(at)  # the panel's status line came before the failure
    assert at.button(key="start_training") and at.button(key="clear_canvas")  # other panels drew


def test_classroom_mode_lets_only_the_password_holder_control_the_job(runs_dir, monkeypatch):
    monkeypatch.setenv("MLPDASH_CONTROL_PASSWORD", "s3cret")
    at = page()
    assert not at.exception
    assert at.button(key="start_training").disabled
    assert at.text_input(key="hidden").disabled and at.selectbox(key="data_kind").disabled
    assert any("Classroom mode" in i.value for i in at.info)
    at.text_input(key="control_password_input").input("wrong")
    _submit(at)
    assert any("not the control password" in e.value for e in at.error)
    assert at.button(key="start_training").disabled
    at.text_input(key="control_password_input").input("s3cret")
    _submit(at)
    assert not at.button(key="start_training").disabled
    assert not at.text_input(key="hidden").disabled
    # Another browser (a new session) is still locked.
    assert page().button(key="start_training").disabled


def _submit(at: AppTest) -> None:
    [button] = [b for b in at.get("form_submit_button") if "Unlock" in b.label] or \
        [b for b in at.button if "Unlock" in b.label]
    button.click().run()


def test_an_interrupted_run_is_listed_and_can_be_evaluated_from_the_page(runs_dir):
    writer = killed_run(runs_dir)
    at = page()
    assert not at.exception
    at.session_state["view_tab"] = "Runs & comparison"  # as a click on the tab would
    at.run()
    # Select the run in the table as a click would.
    at.session_state[f"runs_table_{writer.path.name}_1"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert any("interrupted after 1 epoch" in i.value for i in at.info)
    at.button(key="evaluate_interrupted").click().run()
    assert not at.exception
    [info] = list_runs(runs_dir)
    assert info.path == writer.path and info.status == "interrupted" and info.summary["test_accuracy"] >= 0


def test_a_diverging_run_is_called_diverged_on_the_page(runs_dir):
    at = page()
    train_until_diverged(at)
    [error] = [e.value for e in at.error if "Diverged" in e.value]
    assert "lower the learning rate" in error
    assert "Finished" not in status_text(at)
    assert not at.button(key="start_training").disabled  # ready for a better try
    # Every panel tells the same story: Mistakes says the run diverged, not that it will be tested.
    at.session_state["view_tab"] = "Mistakes"
    at.run()
    notes = " ".join(i.value for i in at.info)
    assert "diverged" in notes and "when it ends" not in notes, notes
