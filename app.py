"""mlpdash: watch a multilayer perceptron learn MNIST, live. Run with `streamlit run app.py`.

This file only lays the page out; the panels are in mlpdash/ui and everything they show is computed
by the headless mlpdash modules.
"""

from __future__ import annotations

import streamlit as st

from mlpdash.config import TrainConfig
from mlpdash.ui import get_manager, guarded, load_engine_after_first_view
from mlpdash.ui.access import access_ui
from mlpdash.ui.drawing import drawing_ui
from mlpdash.ui.panels import confusion_ui, live_ui, runs_ui, weights_ui
from mlpdash.ui.sidebar import controls_ui, data_ui, estimate_ui, settings_ui


def main() -> None:
    st.set_page_config(page_title="mlpdash — MLP on MNIST", page_icon="🔢", layout="wide")
    manager = get_manager()
    with st.sidebar, guarded("setup"):
        st.header("Setup")
        allowed = access_ui()
        spec, data_problem = data_ui(locked=not allowed)
        config, _ = settings_ui(manager.job.config if manager.job else TrainConfig(), locked=not allowed)
        estimate_ui(None if data_problem else spec, config)
        controls_ui(manager, None if data_problem else spec, config)
    st.title("mlpdash")
    st.caption("A multilayer perceptron learning handwritten digits (MNIST), live.")
    training_col, drawing_col = st.columns([3, 2], gap="large")
    with training_col:
        live_ui(manager)
    with drawing_col:
        drawing_ui(manager)
    # Lazy tabs: only the open one runs. The weights grid polls a ~1 MB figure while a job trains;
    # computing and drawing it in every tab that merely has it hidden took CPU from training.
    confusion_tab, weights_tab, runs_tab = st.tabs(["Confusion matrix", "First-layer weights", "Runs"],
                                                   key="view_tab", on_change="rerun")
    with confusion_tab:
        if confusion_tab.open:
            confusion_ui(manager)
    with weights_tab:
        if weights_tab.open:
            weights_ui(manager)
    with runs_tab, guarded("runs"):
        if runs_tab.open:
            runs_ui(manager)
    load_engine_after_first_view()


main()
