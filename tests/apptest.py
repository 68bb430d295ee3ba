"""The page under Streamlit's AppTest: one way to open it, and the helpers that read and drive it.

The environment a page runs in (a fresh runs folder, its drawings folder, the bundled sample, no
control password) is the `app_env` fixture in conftest.py; `app` is a page opened in it. A module whose
page differs overrides `app` by name and asks for the shared one (`def app(app): ...`), and a test that
needs a second browser session on the same server opens one with `new_page()`.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.proto.Block_pb2 import Block as BlockProto
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# Seconds one script run of the page may take (the first imports TensorFlow).
TIMEOUT = 60


def new_page(timeout: float = TIMEOUT) -> AppTest:
    """A new browser session on this process's server (the server-wide state is per runs folder),
    not run yet: set its session state first, if need be, then `.run()` it."""
    return AppTest.from_file(APP, default_timeout=timeout)


def status_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if m.value.startswith("**")) + " ".join(
        e.value for e in at.error)


def wait_until(at: AppTest, words: str, timeout: float = 120, text=status_text) -> None:
    """Rerun the page (as its timers would) until `text(at)` (by default the status line) has `words`."""
    deadline = time.monotonic() + timeout
    while words not in text(at):
        assert time.monotonic() < deadline, f"never saw {words!r}; last: {text(at)!r}"
        time.sleep(0.3)
        at.run()
    assert not at.exception


def train_until_diverged(at: AppTest) -> None:
    """Start a run whose learning rate (1.0, held constant) makes it diverge, and wait until the
    page says so."""
    at.number_input(key="learning_rate").set_value(1.0)
    at.selectbox(key="lr_schedule").set_value("constant")
    at.number_input(key="epochs").set_value(3)
    at.run()
    at.button(key="start_training").click().run()
    wait_until(at, "Diverged")


def drawing_state(digit: np.ndarray) -> dict:
    """What streamlit-drawable-canvas stores for a drawing: its RGBA image as a PNG data URL."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[70:210, 70:210, :3] = np.kron(digit, np.ones((5, 5), np.uint8))[..., None]
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    data = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"drawing": {"raw": {"objects": []}, "data": data}, "backgroundFit": None}


def widget_values_with_tab(at: AppTest, tab: str) -> WidgetStates:
    """The widget values a browser would send with its views' tab bar on `tab`: AppTest leaves a tab
    bar's value out, and sends every button as not clicked where a browser sends only a click."""
    states = WidgetStates()
    states.widgets.extend(state for state in at._tree.get_widget_states().widgets
                          if state.WhichOneof("value") != "trigger_value" or state.trigger_value)
    blocks = [at._tree]
    while blocks:
        block = blocks.pop()
        if isinstance(getattr(block, "proto", None), BlockProto) and block.proto.HasField("tab_container"):
            states.widgets.add(id=block.proto.id, string_value=tab)
            return states
        blocks.extend(getattr(block, "children", {}).values())
    raise AssertionError("no tab bar on the page")
