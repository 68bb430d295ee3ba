"""Draw a digit: a canvas, and what the current model thinks it is.

The canvas lives in a fragment, so a stroke reruns only this panel, never the training charts, and
with it the open view when that view is about the drawing (Inside a prediction, drawn by this
fragment in its place under its tab: `mlpdash.ui.tabs.OpenView`). Its
widget has no clear-from-Python: Clear gives it a new key (inside a container whose key stays
`canvas`, which is what tests and styles find it by).

Save as… confirms in place, under its buttons (a toast sat over the canvas, where the next stroke
starts, and stayed while the pointer was on it). A save changes what Your drawings shows: with that
tab open, the save reruns the whole page, since a fragment's run draws only itself.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from mlpdash import figures
from mlpdash.drawings import DrawingsError, as_grey, drawings_root, listing, save
from mlpdash.focus import Focus
from mlpdash.predict import Prediction, predict_image
from mlpdash.preprocess import Preparation, canvas_png, prepare
from mlpdash.runs import RunError
from mlpdash.ui import choices, guarded, pictures, plain
from mlpdash.ui.style import CHART_CONFIG
from mlpdash.ui.tabs import OpenView, open_view_follows_drawing

CANVAS_SIZE = 280
SAVE_PROBLEM_KEY = "save_as_problem"
SAVED_KEY = choices.SAVED_KEY
JUST_SAVED_KEY = "save_as_just_saved"  # one-shot: a save's fragment run must redraw the views too
DEFAULT_STROKE = 18
# The preparation's pictures under the canvas, px a side (3 a digit's pixel): four fit the drawing column.
PREPARATION_SIDE = 84


def drawing_ui(focus: Focus, view: OpenView | None = None) -> None:
    """The canvas and its answer; and `view` (open under its tab, about the drawing), drawn in its
    place by the same fragment, so that a stroke redraws it without a run of the whole page."""
    @st.fragment
    def drawing() -> None:
        # A widget of `view` (drawn by this fragment) may have opened another tab: the page shows it.
        choices.follow_tab_change()
        now = focus
        with guarded("drawing"):
            now = focus.now()  # a stroke reruns this alone: ask again which model answers
            _drawing(now)
        if view is not None:  # in every run of the fragment: Streamlit keeps its place by that
            view.draw(now)

    drawing()


def _drawing(focus: Focus) -> None:
    # A save (the callback before this run) changed the folder that Your drawings shows, if open:
    # the whole page, at once, before this fragment draws anything twice.
    if st.session_state.pop(JUST_SAVED_KEY, False) and choices.open_view() == choices.DRAWINGS_TAB:
        st.rerun(scope="app")
    st.markdown("#### Draw a digit")
    generation = st.session_state.setdefault("canvas_generation", 0)
    stroke = st.session_state.get("stroke_width", DEFAULT_STROKE)
    with st.container(key="canvas"):
        result = _canvas(stroke, generation)
    if st.button("Clear", key="clear_canvas", icon=":material/ink_eraser:"):
        st.session_state["canvas_generation"] = generation + 1
        st.rerun(scope="fragment")
    # The answer comes right under the canvas, so that on a wide screen it is in view with it; the
    # stroke setting, seldom changed, goes below.
    drawing = _canvas_image(result)
    steps = None if drawing is None else prepare(drawing)
    previous = choices.drawing()
    choices.set_drawing(steps)
    _prediction_ui(focus, steps)
    _save_as_ui(None if steps is None else drawing)
    st.slider("Stroke width", 6, 40, DEFAULT_STROKE, key="stroke_width")
    st.caption("Draw large or small, anywhere, with any stroke: the drawing is cropped, its stroke "
               "made as thick as MNIST's, and centred as MNIST digits were. (Start strokes below the "
               "toolbar in the top-right corner.)")
    # Off by default: built only for those who ask, so that a stroke pays nothing for it.
    if st.toggle("Show how the drawing was prepared", key="show_preparation") and steps is not None:
        pictures(figures.preparation_pictures(steps, side=PREPARATION_SIDE), "preparation_chart",
                 figures.PREPARATION_TITLE)
    # A stroke reruns only this fragment; a view below that follows the drawing needs the page.
    if _changed(previous, steps) and open_view_follows_drawing():
        st.rerun(scope="app")


def _changed(before: Preparation | None, after: Preparation | None) -> bool:
    if before is None or after is None:
        return before is not after
    return not np.array_equal(before.digit, after.digit)


def _canvas(stroke: int, generation: int):
    """The canvas widget. Its state arrives from the browser; state the widget itself cannot parse
    would fail every rerun, so it is replaced by a fresh canvas (a new key) with a message."""
    try:
        return st_canvas(
            stroke_width=stroke,
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            update_streamlit=True,
            return_image_data=True,
            key=f"canvas_{generation}",
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        st.session_state["canvas_generation"] = generation + 1
        st.warning("The canvas sent something it could not read and was reset: draw again.",
                   icon=":material/warning:")
        return None


def _canvas_image(result) -> np.ndarray | None:
    """The canvas's drawing as pixels; None (with a message) for nothing drawn or a refused image."""
    if result is None:
        return None
    try:
        png = result.image_bytes
        return None if png is None else canvas_png(png, CANVAS_SIZE, CANVAS_SIZE)
    except (ValueError, TypeError, AttributeError) as err:  # a malformed data URL from the browser
        st.warning(f"That drawing could not be read: {plain(err)}. Clear the canvas and draw again.",
                   icon=":material/warning:")
        return None


def _prediction_ui(focus: Focus, steps: Preparation | None) -> None:
    with st.container(key="prediction"):
        prediction = _predict(focus, steps)
        if prediction is None:
            return
        text_col, digit_col = st.columns([3, 2], vertical_alignment="center")
        with text_col:
            if prediction.digit is None:
                st.markdown("**Draw a digit** on the canvas to see what the model thinks.")
            else:
                st.markdown(f"### Prediction: {prediction.digit}")
                st.caption(f"{prediction.confidence:.1%} confident")
        with digit_col:
            st.plotly_chart(figures.digit_figure(prediction.image), key="digit_chart", theme=None,
                            width="content", config=CHART_CONFIG)
        st.plotly_chart(figures.probabilities_figure(prediction.probabilities), key="probabilities_chart",
                        theme=None, config=CHART_CONFIG)


def _save_as_ui(drawing: np.ndarray | None) -> None:
    """Save as…: keep the drawing with the digit it was meant to be, for Your drawings (evaluate a
    model on them, fine-tune one). The canvas is cleared for the next one."""
    with st.container(key="save_as"):
        problem = st.session_state.pop(SAVE_PROBLEM_KEY, None)
        if problem:
            st.error(f"Not saved: {plain(problem)}", icon=":material/warning:")
        st.caption("**Save as…** the digit you meant, to test and teach the model under *Your drawings*:"
                   if drawing is not None else
                   "Draw a digit, then save it as the digit you meant: *Your drawings* tests and teaches the "
                   "model with them.")
        with st.container(horizontal=True, gap="small", key="save_as_buttons"):
            for digit in range(10):
                st.button(str(digit), key=f"save_as_{digit}", disabled=drawing is None, on_click=_save,
                          args=(drawing, digit))
        saved = st.session_state.get(SAVED_KEY)
        if saved is not None:
            with st.container(key="save_as_done"):
                digit, count = saved
                st.caption(f":material/check_circle: Saved as a {digit} — {count} drawings kept."
                           + (" Draw the next one." if drawing is None else ""))


def _save(drawing: np.ndarray | None, digit: int) -> None:
    if drawing is None:
        return
    root = drawings_root()
    try:
        save(root, as_grey(drawing), digit)
        count = len(listing(root))
    except (DrawingsError, OSError, ValueError) as err:
        st.session_state[SAVE_PROBLEM_KEY] = str(err)
        st.session_state.pop(SAVED_KEY, None)  # not beside "Not saved"
        return
    # Shown by the run that follows (a callback that draws is not supported in a fragment's rerun).
    st.session_state[SAVED_KEY] = (digit, count)
    st.session_state[JUST_SAVED_KEY] = True
    st.session_state["canvas_generation"] = st.session_state.get("canvas_generation", 0) + 1


def _predict(focus: Focus, steps: Preparation | None) -> Prediction | None:
    """The answer for the drawing; None (with a message shown) when there is no model to ask."""
    if not focus.has_model():
        happened = focus.missing_model()  # a run that diverged says so: "train first" would be wrong
        if happened is not None:
            st.info(plain(happened), icon=":material/info:")
        elif focus.run is None:
            st.info("Train a model first: the prediction uses the current model, even mid-training.",
                    icon=":material/info:")
        else:
            st.info("The run shown has no model that can answer: pick another under Runs, or train one.",
                    icon=":material/info:")
        return None
    image = None if steps is None else steps.digit
    if image is None:
        return Prediction(None, None, None)  # no model needed, so no TensorFlow before a stroke
    try:
        predictor = focus.predictor()
        if predictor is None:
            st.info("The model is still being built: draw again in a moment.", icon=":material/info:")
            return None
        return predict_image(predictor, image)
    except RunError as err:
        st.error(f"The saved model cannot be loaded: {plain(err)}", icon=":material/warning:")
        return None
