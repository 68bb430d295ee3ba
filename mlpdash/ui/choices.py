"""The page's choices, kept per browser tab in session state: the run picked under Runs, the drawing
on the canvas, the input of the explanation view, the open tab.

What the views are about is decided by the headless `mlpdash.focus` (one rule); the page makes its
`Focus` from the run picked here (`focus_of`). Panels read and set these choices through these
functions, never through the session keys, so that a new view finds them where the others do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from mlpdash.data import DataError
from mlpdash.preprocess import Preparation
from mlpdash.runs import RunError
from mlpdash.ui import plain

if TYPE_CHECKING:
    from mlpdash.config import TrainConfig
    from mlpdash.data import MnistSplits
    from mlpdash.focus import Focus, ModelInFocus
    from mlpdash.server import Server

RUN_KEY = "view_run"
DRAWING_KEY = "focus_drawing"
# The explanation view's input: its choice widget and digit index, which other views set to hand it
# a digit.
INPUT_KEY = "explain_source"
INDEX_KEY = "explain_index"
DRAWING_INPUT = "Your drawing"
SAVED_DRAWING_INPUT = "A saved drawing"
SAVED_DRAWING_KEY = "explain_saved_drawing"  # the file of the saved drawing explained
TEST_DIGIT_INPUT = "A test digit"
VALIDATION_DIGIT_INPUT = "A validation digit"
SPLIT_INPUTS = {"test": TEST_DIGIT_INPUT, "validation": VALIDATION_DIGIT_INPUT}
# The open view tab (views.TAB_KEY), the explanation's tab, and a flag that a callback changed the tab.
VIEW_TAB_KEY = "view_tab"
EXPLAIN_TAB = "Inside a prediction"
TAB_CHANGED_KEY = "view_tab_changed"


def picked_run() -> Path | None:
    """The saved run the panels show instead of the current job, or None."""
    picked = st.session_state.get(RUN_KEY)
    return Path(picked) if picked else None


def pick_run(path: Path | None) -> None:
    """Show `path`'s run in every panel (None: back to the current job)."""
    st.session_state[RUN_KEY] = str(path) if path is not None else None


def focus_of(server: Server) -> Focus:
    """What the views are about now, for this tab (its picked run)."""
    return server.focus(picked_run())


def model(focus: Focus, cannot: str, none: str) -> ModelInFocus | None:
    """The model in focus; None with a message: `cannot` (+ the reason) for a run that cannot give
    one, `none` when there is no model yet."""
    try:
        found = focus.model()
    except RunError as err:
        st.error(f"{cannot}: {plain(err)}", icon=":material/warning:")
        return None
    if found is None:
        st.info(none, icon=":material/info:")
    return found


def data(focus: Focus, spec: str | None, what: str = "test digits") -> MnistSplits | None:
    """The splits of `spec`; None with a message naming `what` could not be loaded."""
    try:
        return focus.data(spec)
    except DataError as err:
        st.error(f"The {what} of {plain(spec)} cannot be loaded: {plain(err)}", icon=":material/warning:")
        return None


def clicked(key: str) -> list[int] | None:
    """The `customdata` of the point clicked in the chart keyed `key` (a selection callback reads it
    here), as ints; None when nothing is selected."""
    points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
    picked = [p.get("customdata") for p in points if p.get("customdata") is not None]
    return [int(v) for v in np.ravel(picked[0])] if picked else None


def explain_digit(index: int, split: str = "test") -> None:
    """Open *Inside a prediction* on digit `index` of the test or validation split. Call it from a
    widget's callback."""
    pick_digit(index, split)
    st.session_state[VIEW_TAB_KEY] = EXPLAIN_TAB
    st.session_state[TAB_CHANGED_KEY] = True


def explain_saved_drawing(file: str) -> None:
    """Open *Inside a prediction* on a saved drawing (Your drawings). Call it from a widget's callback."""
    st.session_state[INPUT_KEY] = SAVED_DRAWING_INPUT
    st.session_state[SAVED_DRAWING_KEY] = file
    st.session_state[VIEW_TAB_KEY] = EXPLAIN_TAB
    st.session_state[TAB_CHANGED_KEY] = True


def drawing() -> Preparation | None:
    """The drawing on the canvas, as prepared for the model (None: nothing drawn)."""
    return st.session_state.get(DRAWING_KEY)


def set_drawing(steps: Preparation | None) -> None:
    st.session_state[DRAWING_KEY] = steps


def pick_digit(index: int, split: str = "test") -> None:
    """Make digit `index` of the test or validation split the input of the explanation view. Call it
    from a widget's callback (Streamlit lets a widget's value be set only before the widget is drawn
    in a run)."""
    st.session_state[INPUT_KEY] = SPLIT_INPUTS[split]
    st.session_state[INDEX_KEY] = int(index)


def picked_digit(count: int) -> int:
    """The picked digit's index, within a split of `count` digits (one picked on another data source
    may be past its end: the last digit then)."""
    index = st.session_state.get(INDEX_KEY, 0)
    index = min(max(int(index), 0), count - 1) if isinstance(index, (int, float)) else 0
    st.session_state[INDEX_KEY] = index
    return index


UNITS_TAB, UNITS_LAYER_KEY, UNITS_UNIT_KEY = "Units", "units_layer", "units_unit"


def open_unit(layer: int, unit: int) -> None:
    """Open the Units tab on `unit` of hidden layer `layer` (from 1). Call it from a widget's callback;
    a widget inside a fragment must then call `follow_tab_change()`."""
    st.session_state[UNITS_LAYER_KEY] = int(layer)
    st.session_state[UNITS_UNIT_KEY] = int(unit)
    st.session_state[VIEW_TAB_KEY] = UNITS_TAB
    st.session_state[TAB_CHANGED_KEY] = True


def follow_tab_change() -> None:
    """In a fragment: a callback of its widgets changed the open tab, which only a rerun of the whole
    page can show."""
    if st.session_state.pop(TAB_CHANGED_KEY, False):
        st.rerun(scope="app")


DATA_KEY = "focus_data_source"


def set_data_choice(spec: str | None) -> None:
    """The data source chosen in the sidebar (None: the choice has a problem, shown there)."""
    st.session_state[DATA_KEY] = spec


def data_choice() -> str | None:
    return st.session_state.get(DATA_KEY)


SETTINGS_KEY = "focus_settings"


def set_settings(config: TrainConfig | None) -> None:
    """The training settings of the sidebar (None: one of them has a problem, shown there), for the
    views that start runs (a sweep varies a few and keeps the rest)."""
    st.session_state[SETTINGS_KEY] = config


def settings() -> TrainConfig | None:
    return st.session_state.get(SETTINGS_KEY)
