"""Weights over time: scrub or play through a run's epochs and watch its weights form.

Every number comes from `mlpdash.timeline` (the records the engine keeps at step 0 and after each
epoch) and every figure from `mlpdash.figures`; this module lays them out. The view is one fragment:
while it plays, or while the run it shows trains, it reruns on a timer, and nothing else does.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.focus import Focus, TimelineInFocus
from mlpdash.mnist import scale
from mlpdash.runs import RunError
from mlpdash.timeline import (
    SINCE_PREVIOUS,
    SINCE_START,
    WEIGHTS,
    Timeline,
    all_layer_bands,
    answers_over_time,
    common_range,
    epoch_name,
    epoch_when,
    first_layer_view,
    fixed_range,
    layer_names,
    learned,
    play_step,
    unit_norms,
    unit_over_time,
)
from mlpdash.ui import choices, guarded, job_active, late, plain, rerun_if_changed
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG

EPOCH_KEY = "weights_epoch"
PLAY_FROM_KEY = "weights_play_from"
PLAYING_KEY = "weights_playing"
NEWEST_KEY = "weights_newest_epoch"
PLAY_PRESSED_KEY = "weights_play_pressed"
UNIT_KEY = "weights_follow_unit"
GRID_KEY = "weights_time_grid"
PLAY_SECONDS = 0.8  # a step of the play button: long enough to see each epoch's tiles
MODES = {"Weights": WEIGHTS, "Change since step 0": SINCE_START, "Change since the epoch before": SINCE_PREVIOUS}
QUANTITY = {WEIGHTS: "weight", SINCE_START: "change since step 0", SINCE_PREVIOUS: "change since the epoch before"}
DRAWING, TEST_DIGIT = choices.DRAWING_INPUT, choices.TEST_DIGIT_INPUT
FILMSTRIP_COLUMNS = 6  # a unit's epochs a row: tiles of 60 px or more in its column at 1024 px
GRID_TILE_PX = 26  # the first layer's tiles on screen, the grid across the page
TILE_PITCH = 29  # a 28-px tile and its gap, in the grid's own pixels
GRID_MAX_HEIGHT = 640
GRID_MARGINS_PX = 50  # the grid figure's title and margins


def over_time_ui(focus: Focus) -> None:
    was_active = job_active(focus)
    playing = bool(st.session_state.get(PLAYING_KEY))
    # While the run trains, the page's epoch watch (ui.follow_epochs) redraws the view when an epoch
    # ends, the only time it changes: no timer of its own.
    every = PLAY_SECONDS if playing else None

    @st.fragment(run_every=every)
    def view() -> None:
        now = focus.now()  # a tick of the timer: the job has moved on
        rerun_if_changed(now, was_active)
        with guarded("weights over time"):
            _view(now, playing)

    view()


def _view(focus: Focus, playing: bool) -> None:
    if bool(st.session_state.get(PLAYING_KEY)) != playing:
        st.rerun(scope="app")  # Play or its end: the fragment's timer is set when the page is drawn
    try:
        shown = focus.timeline()
    except RunError as err:
        _stop_playing()
        st.error(f"That run's weights over time cannot be read: {plain(err)}", icon=":material/warning:")
        return
    if shown is None:
        _stop_playing()
        st.info("Train a model first: this view follows a run's weights epoch by epoch, live while it "
                "trains, or those of the run picked under Runs.", icon=":material/info:")
        return
    if shown.timeline is None:
        _stop_playing()
        st.info(f"{plain(shown.title)}: {shown.missing}.", icon=":material/history:")
        return
    timeline = shown.timeline
    epochs = timeline.epochs
    epoch = _epoch_picker(epochs, playing)
    st.caption(f"{plain(shown.title)} · {len(epochs)} kept states of the model, step 0 to epoch {epochs[-1]}"
               + ("" if timeline.keeps_every_epoch else " (a long run keeps every other one)"))
    mode = MODES[st.segmented_control("First layer", list(MODES), default="Change since step 0",
                                      key="weights_time_mode",
                                      help="Training moves the weights a little from their random start, so "
                                           "the raw weights look like noise: the change shows what each unit "
                                           "has learned, epoch by epoch")
                 or "Change since step 0"]
    # The grid across the whole width: in three fifths of it, 700 tiles were 8-11 px at 1024-1440 px.
    _grid(shown, timeline, epoch, mode)
    unit_col, side_col = st.columns([3, 2])
    with unit_col:
        _follow_unit(timeline, epoch, mode)
    with side_col:
        _class_accuracy(timeline, epoch)
        st.plotly_chart(_bands(shown.state, timeline, epoch), key="weights_bands", theme=None, config=CHART_CONFIG)
        st.caption("The spread of each layer's weights, as TensorBoard's distributions: the bands hold the "
                   "middle 98, 90 and 50 % of them, the line is the median.")
    _when_learned(focus, shown, timeline, epoch)


def _stop_playing() -> None:
    """Nothing to play (another run picked meanwhile): the next tick sees it and stops the timer."""
    st.session_state[PLAYING_KEY] = False


def _epoch_picker(epochs: list[int], playing: bool) -> int:
    """The chosen epoch: a slider over the kept epochs and a play button that steps through them."""
    current = late.users_choice(EPOCH_KEY)
    # At the newest epoch (or none yet): stay at the newest as a live run adds epochs.
    if current not in epochs or current == st.session_state.get(NEWEST_KEY):
        current = epochs[-1]
    st.session_state[NEWEST_KEY] = epochs[-1]
    if playing and st.session_state.pop(PLAY_PRESSED_KEY, False):
        # The rerun of the click itself shows the epoch play starts from.
        current = st.session_state.pop(PLAY_FROM_KEY, current)
    elif playing:  # each timed rerun of the fragment is one step; the end stops the play
        current, ends = play_step(epochs, current)
        if ends:
            st.session_state[PLAYING_KEY] = False
    late.set_by_page(EPOCH_KEY, current)
    slider_col, button_col = st.columns([5, 1], vertical_alignment="bottom")
    with slider_col:
        if len(epochs) > 1:
            st.select_slider("Epoch", options=epochs, key=EPOCH_KEY, format_func=epoch_name,
                             help="The model as it was after this epoch (step 0: as initialised)")
        else:
            st.markdown("**Step 0** — the first epoch has not ended yet")
    with button_col:
        label, icon = ("Pause", ":material/pause:") if playing else ("Play", ":material/play_arrow:")
        st.button(label, key="weights_play", icon=icon, width="stretch", disabled=len(epochs) < 2,
                  on_click=_toggle_play, args=(epochs,))
    return int(st.session_state[EPOCH_KEY])


def _toggle_play(epochs: list[int]) -> None:
    playing = not st.session_state.get(PLAYING_KEY)
    if playing and st.session_state.get(EPOCH_KEY) == epochs[-1]:
        st.session_state[PLAY_FROM_KEY] = epochs[0]  # play from the start, as a video player does
    st.session_state[PLAYING_KEY] = playing
    st.session_state[PLAY_PRESSED_KEY] = playing


def _grid(shown: TimelineInFocus, timeline: Timeline, epoch: int, mode: str) -> None:
    value_range = _fixed_range(shown.state, timeline, mode)
    fig = _grid_figure(shown.state, timeline, epoch, mode, value_range, st.session_state.get(UNIT_KEY))
    st.plotly_chart(fig, key=GRID_KEY, theme=None, on_select=_follow_clicked_unit,
                    selection_mode=("points",), config=CHART_CONFIG)
    before = (" (in this long run, the kept state before: it keeps every other epoch)"
              if not timeline.keeps_every_epoch and mode == SINCE_PREVIOUS else "")
    st.caption(f"Red: ink there raises the unit's input; blue: lowers it{before}. The colour scale "
               f"(±{value_range:.3g}) is symmetric around zero and the same at every epoch, so a tile changes "
               "only when its weights do. Click a tile to follow that unit below.")


@derived(max_entries=64)
def _grid_figure(state: tuple, _timeline: Timeline, epoch: int, mode: str, value_range: float,
                 highlight: int | None):
    """The grid of one epoch, kept per run state, epoch and mode: playing a run a second time, or
    scrubbing back and forth, draws no tile twice (its PNG is the step's largest cost)."""
    kernel = first_layer_view(_timeline, epoch, mode)
    fig = figures.weights_grid_figure(kernel, value_range=value_range, quantity=QUANTITY[mode], highlight=highlight)
    fig.update_layout(title_text=f"First layer {epoch_when(epoch)}: {kernel.shape[1]} units, ±{value_range:.3g}")
    # Tall enough for tiles of about GRID_TILE_PX at full width (the builder assumes a narrower column).
    grid_height = abs(fig.layout.yaxis.range[0] - fig.layout.yaxis.range[1])
    fig.update_layout(height=int(min(GRID_MAX_HEIGHT, grid_height * GRID_TILE_PX / TILE_PITCH + GRID_MARGINS_PX)))
    return fig


def _follow_clicked_unit() -> None:
    picked = choices.clicked(GRID_KEY)
    if picked:
        st.session_state[UNIT_KEY] = picked[0]


@derived(max_entries=8)
def _fixed_range(state: tuple, _timeline: Timeline, mode: str) -> float:
    return fixed_range(_timeline, mode, figures.weight_range)


@derived(max_entries=8)
def _layer_bands(state: tuple, _timeline: Timeline) -> list[np.ndarray]:
    return all_layer_bands(_timeline)


def _bands(state: tuple, timeline: Timeline, epoch: int):
    return figures.weight_bands_figure(timeline.epochs, _layer_bands(state, timeline), layer_names(timeline), epoch)


def _class_accuracy(timeline: Timeline, epoch: int) -> None:
    if not len(timeline.confusions):
        return
    epochs = [int(e) for e in timeline.confusion_epochs]
    st.plotly_chart(figures.class_accuracy_figure(epochs, timeline.per_class_accuracy(), epoch),
                    key="weights_class_accuracy", theme=None, config=CHART_CONFIG)
    st.caption("On the validation split (the test split is kept for the final report).")


def _follow_unit(timeline: Timeline, epoch: int, mode: str) -> None:
    st.markdown("##### Follow one unit")
    units = timeline.records[0].weights[0].shape[1]
    if st.session_state.get(UNIT_KEY, 0) >= units:
        st.session_state[UNIT_KEY] = 0
    unit = int(st.number_input(f"Unit (0–{units - 1}; or click a tile)", 0, units - 1, step=1, key=UNIT_KEY))
    tiles = unit_over_time(timeline, unit, mode)
    r = common_range([tiles], figures.weight_range)
    quantity = QUANTITY[mode]
    # Rows of a few epochs: 31 epochs in one row were 15-px tiles under run-together labels.
    # Its colour bar says only "change" or "weight" (the title says which change): along a one-row strip
    # "change since the epoch before" was longer than the bar, and cut.
    strip = figures.weights_grid_figure(tiles.T, columns=min(len(tiles), FILMSTRIP_COLUMNS), value_range=r,
                                        quantity="weight" if mode == WEIGHTS else "change",
                                        unit_ids=timeline.epochs, labels=[epoch_name(e) for e in timeline.epochs],
                                        highlight=epoch)
    strip.update_layout(title_text=f"Unit {unit} at every kept epoch ({quantity}, ±{r:.3g})")
    st.plotly_chart(strip, key="weights_filmstrip", theme=None, config=CHART_CONFIG)
    st.plotly_chart(figures.unit_norm_figure(timeline.epochs, unit_norms(timeline, unit), unit, epoch),
                    key="weights_unit_norm", theme=None, config=CHART_CONFIG)


def _when_learned(focus: Focus, shown: TimelineInFocus, timeline: Timeline, epoch: int) -> None:
    st.markdown("##### When did it learn my digit?")
    pick_col, chart_col = st.columns([2, 3])
    with pick_col:
        found = _digit_to_follow(focus, shown)
    if found is None:
        return
    image, what = found
    probabilities = answers_over_time(timeline, image, shown.activation)
    read = learned(timeline, probabilities, epoch)
    with pick_col:
        st.caption(f"For {what}: at {epoch_name(epoch)} the model reads **{read.answer}** "
                   f"({read.probability:.0%}); its last answer, **{read.final}**, has been the answer since "
                   f"{epoch_name(read.since)}. Each epoch's model is rebuilt from the weights kept then, and "
                   "asked again.")
    with chart_col:
        st.plotly_chart(figures.answers_over_time_figure(timeline.epochs, probabilities, epoch),
                        key="weights_answers", theme=None, config=CHART_CONFIG)


def _digit_to_follow(focus: Focus, shown: TimelineInFocus) -> tuple[np.ndarray, str] | None:
    """(image in [0, 1], what it is) for the drawing or a picked test digit; None with a message."""
    source = st.segmented_control("Digit", [DRAWING, TEST_DIGIT], default=DRAWING, key="weights_digit_source")
    if source == TEST_DIGIT:
        data = choices.data(focus, shown.data_spec)
        if data is None:
            return None
        count = len(data.x_test)
        index = int(st.number_input(f"Test digit (0–{count - 1})", 0, count - 1, step=1, key="weights_digit_index"))
        return scale(data.x_test[index]), f"test digit #{index} (a {int(data.y_test[index])})"
    steps = choices.drawing()
    if steps is None:
        st.info("Draw a digit on the canvas above, or choose a test digit.", icon=":material/draw:")
        return None
    return steps.digit, "your drawing"

