"""The data: the source in use, its splits' class counts, each digit's average and spread, and random
examples (reshuffled on demand; a click opens one in Inside a prediction). Numbers from
`mlpdash.digits`, figures from `mlpdash.figures`; it reads the loaded splits, nothing is downloaded."""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.data import DataError
from mlpdash.digits import CREDIT, class_counts, class_pictures, examples, pictures_grid, source_reason
from mlpdash.focus import Focus
from mlpdash.ui import choices, plain
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG

PER_CLASS = 10
SEED_KEY = "data_view_seed"


def data_view_ui(focus: Focus) -> None:
    with st.container(key="data_view"):
        spec = choices.data_choice()
        if spec is None:
            st.info("Choose a data source in the sidebar: this view shows the one in use.", icon=":material/info:")
            return
        try:
            data = focus.data(spec)
        except DataError as err:
            st.error(f"The data cannot be loaded: {plain(err)}", icon=":material/warning:")
            return
        counts = class_counts(data)
        why = source_reason(data)
        st.markdown(f"**{plain(data.description)}** — {data.n_digits:,} digits: {len(data.y_train):,} for training, "
                    f"{len(data.y_val):,} for validation, {len(data.y_test):,} for the test ({plain(why)}).")
        st.caption(CREDIT)
        counts_col, pictures_col = st.columns([2, 3])
        with counts_col:
            st.plotly_chart(figures.class_counts_figure(counts), key="data_counts", theme=None, config=CHART_CONFIG)
        with pictures_col:
            images, hover = _pictures(data.source, data.x_train, data.y_train)
            st.plotly_chart(figures.digits_grid_figure(images, list(range(20)), hover,
                                                       "Each digit's average (top) and spread (bottom)", columns=10,
                                                       hint="training digits"),
                            key="data_pictures", theme=None, config=CHART_CONFIG)
            st.caption("Top: the mean of each class's training digits. Bottom: their standard deviation pixel by "
                       "pixel (bright: where the writers differ most), scaled to the largest.")
        seed = st.session_state.setdefault(SEED_KEY, 0)
        shown, hover = examples(data.y_test, PER_CLASS, seed)
        st.plotly_chart(figures.digits_grid_figure(data.x_test[shown], shown, hover,
                                                   f"{PER_CLASS} random test digits of each class", columns=PER_CLASS),
                        key="data_examples", theme=None, on_select=_open_clicked, selection_mode=("points",),
                        config=CHART_CONFIG)
        st.button("Reshuffle", key="data_reshuffle", icon=":material/shuffle:",
                  on_click=lambda: st.session_state.update({SEED_KEY: seed + 1}))


@derived(max_entries=4)
def _pictures(source: str, _images: np.ndarray, _labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each digit's average and spread (`digits.pictures_grid`) of a source's training digits."""
    return pictures_grid(class_pictures(_images, _labels))


def _open_clicked() -> None:
    picked = choices.clicked("data_examples")
    if picked:
        choices.explain_digit(picked[0], "test")
