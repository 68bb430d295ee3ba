"""Mistakes: click a cell of the confusion matrix to see its images; the hardest mistakes; any image
opens in *Inside a prediction*.

The matrix is the final model's on the test split, or that of any kept epoch on the validation split.
What is in a cell comes from `mlpdash.mistakes`, every figure from `mlpdash.figures`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.data import DataError
from mlpdash.focus import Focus
from mlpdash.mistakes import Answers, captions, cell, describe_cell, hardest, short_captions
from mlpdash.runs import RunError
from mlpdash.timeline import epoch_name, epoch_when
from mlpdash.ui import choices, plain
from mlpdash.ui.style import CHART_CONFIG

TEST, VALIDATION = "Test split (the final model)", "Validation split, by epoch"
CELL_KEY = "mistakes_cell"
HARDEST = 40
HARDEST_COLUMNS = 8  # 5 rows of 8: tiles of about 45 px in a phone's full-width column, 80 px on a laptop


def mistakes_ui(focus: Focus) -> None:
    with st.container(key="mistakes"):
        split = st.segmented_control("Show", [TEST, VALIDATION], default=TEST, key="mistakes_split",
                                     help="The test split is answered once, by the final model; the "
                                          "validation split after every epoch, by the model of that epoch")
        found = _validation(focus) if split == VALIDATION else _test(focus)
        if found is None:
            return
        answers, title, images = found
        st.caption(f"{plain(title)} · {answers.split} split: {len(answers.labels):,} digits, "
                   f"{answers.accuracy:.2%} read right")
        matrix_col, cell_col = st.columns([2, 3])
        with matrix_col, st.container(key="confusion_column"):
            st.plotly_chart(figures.confusion_figure(answers.confusion), key="mistakes_matrix", theme=None,
                            on_select=_remember_cell, selection_mode=("points",), config=CHART_CONFIG)
            st.caption(f"The {answers.split} split. Rows are the true digit, columns the answer. Red cells are "
                       "the mistakes: their colour is the share of that digit's images read that way (the "
                       "scale ends at the largest mistake), their number how many; the grey diagonal gives "
                       "each digit's accuracy. Click a cell to see its images.")
        with cell_col, st.container(key="mistake_cell_column"):
            _cell(answers, images)
        gallery_col, class_col = st.columns([3, 2])
        with gallery_col, st.container(key="hardest_column"):
            shown = hardest(answers, HARDEST)
            if len(shown):
                _digits(answers, images, shown, f"The {len(shown)} hardest mistakes", "mistakes_hardest",
                        note="The most confident wrong answers, most confident first. ")
            else:
                st.success(f"No mistakes on the {answers.split} split.", icon=":material/check:")
        with class_col, st.container(key="per_class_column"):
            st.plotly_chart(figures.per_class_figure(answers.per_class_accuracy), key="mistakes_per_class",
                            theme=None, config=CHART_CONFIG)


def _test(focus: Focus) -> tuple[Answers, str, np.ndarray] | None:
    try:
        answers, title, spec, missing = focus.test_answers()
    except RunError as err:
        st.error(f"That run's test answers cannot be read: {plain(err)}", icon=":material/warning:")
        return None
    if answers is None:
        st.info(f"{plain(title) + ': ' if title else ''}{missing} — or look at the validation split by epoch.",
                icon=":material/info:")
        return None
    images = _split_images(focus, spec, "test", len(answers.labels))
    return None if images is None else (answers, title, images)


def _validation(focus: Focus) -> tuple[Answers, str, np.ndarray] | None:
    try:
        shown = focus.timeline()
    except RunError as err:
        st.error(f"That run's epochs cannot be read: {plain(err)}", icon=":material/warning:")
        return None
    if shown is None or shown.timeline is None:
        st.info(f"{plain(shown.title)}: {shown.missing}." if shown else "Train a model first.", icon=":material/info:")
        return None
    epochs = shown.timeline.epochs
    if st.session_state.get("mistakes_epoch") not in epochs:
        st.session_state["mistakes_epoch"] = epochs[-1]
    if len(epochs) > 1:
        epoch = st.select_slider("Epoch", options=epochs, key="mistakes_epoch", format_func=epoch_name)
    else:
        epoch = epochs[0]
    try:
        answers = focus.validation_answers(shown, int(epoch))
    except (RunError, DataError) as err:
        st.error(f"The validation answers cannot be shown: {plain(err)}", icon=":material/warning:")
        return None
    images = _split_images(focus, shown.data_spec, "validation", len(answers.labels))
    return None if images is None else (answers, f"{shown.title}, {epoch_when(epoch)}", images)


def _split_images(focus: Focus, spec: str | None, split: str, count: int) -> np.ndarray | None:
    data = choices.data(focus, spec, f"{split} digits")
    if data is None:
        return None
    images = data.x_test if split == "test" else data.x_val
    if len(images) != count:
        st.error(f"The run answered {count:,} {split} digits, but {plain(spec)} has {len(images):,}: it was trained "
                 "on other data.", icon=":material/warning:")
        return None
    return images


def _remember_cell() -> None:
    picked = choices.clicked("mistakes_matrix")  # (true, predicted, count)
    if picked:
        st.session_state[CELL_KEY] = (picked[0], picked[1])


def _cell(answers: Answers, images: np.ndarray) -> None:
    picked = st.session_state.get(CELL_KEY)
    if picked is None:
        st.info("Click a cell of the matrix: its images appear here, each with its label, the answer and "
                "how confident it was.", icon=":material/touch_app:")
        return
    true, predicted = picked
    shown = cell(answers, true, predicted)
    total = int(answers.confusion[true, predicted])
    if not total:
        st.info(f"No {true} was read as {predicted} on the {answers.split} split.", icon=":material/info:")
        return
    title, note = describe_cell(answers, true, predicted, len(shown))
    _digits(answers, images, shown, title, "mistakes_cell_digits", with_labels=False, note=note)


def _digits(answers: Answers, images: np.ndarray, indices: np.ndarray, title: str, key: str,
            with_labels: bool = True, note: str = "") -> None:
    """The digits as one clickable grid; over each its probability (and, where they differ from digit
    to digit, its label and the answer)."""
    fig = figures.digits_grid_figure(images[indices], indices, captions(answers, indices), title,
                                     short=short_captions(answers, indices, with_labels),
                                     columns=HARDEST_COLUMNS if with_labels else None)
    st.plotly_chart(fig, key=key, theme=None, on_select=lambda: _open_clicked(key, answers.split),
                    selection_mode=("points",), config=CHART_CONFIG)
    st.caption(note + ("Over each digit: its label → the answer, and the answer's probability" if with_labels
                       else "Over each digit: the answer's probability") + "; hover for more. Click a digit to "
               "follow it through the network in Inside a prediction.")


def _open_clicked(key: str, split: str) -> None:
    picked = choices.clicked(key)
    if picked:
        choices.explain_digit(picked[0], split)
