"""The data: the source in use, its splits' class counts, each digit's average and spread, and random
examples (reshuffled on demand; a click opens one in Inside a prediction). Numbers from
`mlpdash.digits`, figures from `mlpdash.figures`; it reads the loaded splits, nothing is downloaded."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.data import DataError
from mlpdash.digits import CREDIT, class_counts, class_pictures, random_examples
from mlpdash.jobs import JobManager
from mlpdash.ui import focus, plain

CHART_CONFIG = {"displayModeBar": False}
PER_CLASS = 10
SEED_KEY = "data_view_seed"


def data_view_ui(manager: JobManager) -> None:
    with st.container(key="data_view"):
        spec = focus.data_choice()
        if spec is None:
            st.info("Choose a data source in the sidebar: this view shows the one in use.", icon=":material/info:")
            return
        try:
            data = manager.load_data(spec)
        except DataError as err:
            st.error(f"The data cannot be loaded: {plain(err)}", icon=":material/warning:")
            return
        counts = class_counts(data)
        why = data.reason.removeprefix(data.description).lstrip(", ")  # the reason may restate the source
        st.markdown(f"**{plain(data.description)}** — {data.n_digits:,} digits: {len(data.y_train):,} for training, "
                    f"{len(data.y_val):,} for validation, {len(data.y_test):,} for the test ({plain(why)}).")
        st.caption(CREDIT)
        counts_col, pictures_col = st.columns([2, 3])
        with counts_col:
            st.plotly_chart(figures.class_counts_figure(counts), key="data_counts", theme=None, config=CHART_CONFIG)
        with pictures_col:
            pictures = _pictures(data.source, data.x_train, data.y_train)
            spread = pictures.spreads / max(float(pictures.spreads.max()), 1e-6)
            images = (np.concatenate([pictures.means, spread]) * 255).astype(np.uint8)
            hover = [f"the average {d}" for d in range(10)] + [f"how much the {d}s vary, pixel by pixel" for d in range(10)]
            st.plotly_chart(figures.digits_grid_figure(images, list(range(20)), hover,
                                                       "Each digit's average (top) and spread (bottom)", columns=10,
                                                       hint="training digits"),
                            key="data_pictures", theme=None, config=CHART_CONFIG)
            st.caption("Top: the mean of each class's training digits. Bottom: their standard deviation pixel by "
                       "pixel (bright: where the writers differ most), scaled to the largest.")
        seed = st.session_state.setdefault(SEED_KEY, 0)
        picked = random_examples(data.y_test, PER_CLASS, np.random.default_rng(seed))
        shown = [int(i) for i in picked.ravel() if i >= 0]
        st.plotly_chart(figures.digits_grid_figure(data.x_test[shown], shown,
                                                   [f"test digit #{i}, a {int(data.y_test[i])}" for i in shown],
                                                   f"{PER_CLASS} random test digits of each class", columns=PER_CLASS),
                        key="data_examples", theme=None, on_select=_open_clicked, selection_mode=("points",),
                        config=CHART_CONFIG)
        st.button("Reshuffle", key="data_reshuffle", icon=":material/shuffle:",
                  on_click=lambda: st.session_state.update({SEED_KEY: seed + 1}))


@st.cache_data(max_entries=4, show_spinner=False)
def _pictures(source: str, _images: np.ndarray, _labels: np.ndarray):
    return class_pictures(_images, _labels)


def _open_clicked() -> None:
    picked = focus.clicked("data_examples")
    if picked:
        focus.explain_digit(picked[0], "test")
