"""mlpdash: watch a multilayer perceptron learn MNIST, live. Run with `streamlit run app.py`.

This file only lays the page out; the panels are in mlpdash/ui and everything they show is computed
by the headless mlpdash modules.
"""

from __future__ import annotations

import streamlit as st

from mlpdash.ui import choices, get_server, guarded, guide_ui, keep_keras_state_between_reruns, load_engine_after_first_view
from mlpdash.ui.access import access_ui
from mlpdash.ui.drawing import drawing_ui
from mlpdash.ui.panels import charts_ui, result_ui, run_banner
from mlpdash.ui.sidebar import control_bar_ui, data_ui, estimate_ui, lessons_ui, run_in_focus_ui, settings_ui
from mlpdash.ui.style import page_style
from mlpdash.ui.tabs import views_ui


def main() -> None:
    keep_keras_state_between_reruns()
    st.set_page_config(page_title="mlpdash — MLP on MNIST", page_icon="🔢", layout="wide")
    page_style()
    server = get_server()
    guide_ui.follow(server)  # before the tabs: a step the class moved to opens its view
    with st.sidebar, guarded("setup"):
        st.header("Setup")
        allowed = access_ui()
        guide_ui.chooser_ui(server, locked=not allowed)
        lessons_ui(locked=not allowed)
        job = server.jobs.job
        spec, data_problem = data_ui(locked=not allowed, job_spec=job.data_spec if job else None)
        choices.set_data_choice(None if data_problem else spec)
        run_in_focus_ui(choices.picked_run(), locked=not allowed)
        config, _ = settings_ui(server.jobs.settings(), locked=not allowed)
        choices.set_settings(config)
        estimate_ui(None if data_problem else spec, config)
    with st.container(key="page_title"):
        st.markdown("### mlpdash &nbsp; :gray[<small>a multilayer perceptron learning handwritten digits "
                    "(MNIST), live</small>]", unsafe_allow_html=True)
    # The control bar: what is happening, and the buttons that change it, on every screen size.
    with st.container(key="control_bar"):
        control_bar_ui(server, None if data_problem else spec, config)
    run_banner()
    # What every panel below is about: one rule (mlpdash.focus), asked once for this run of the page.
    focus = choices.focus_of(server)
    with st.container(key="main_row"):
        training_col, drawing_col = st.columns([3, 2], gap="large")
        with training_col, st.container(key="training_column"):
            # Always there, empty while a job trains: the charts below keep their place in the page
            # when a result appears, so the browser updates them instead of drawing them anew (a blink).
            with st.container(key="result_slot"):
                result_ui(focus)
            charts_ui(focus, planned_epochs=config.epochs if config else None)
    # The tab bar under the main row; the open view is drawn last, or with the canvas when it is
    # about the drawing (a stroke then redraws the canvas's fragment alone, that view included).
    view = views_ui(server)
    guide_ui.followed()
    with drawing_col, st.container(key="drawing_column"):
        drawing_ui(focus, view if view.with_canvas else None)
    if not view.with_canvas:
        view.draw(focus)
    load_engine_after_first_view()

main()
