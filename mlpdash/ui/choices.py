"""The page's choices, kept per browser tab in session state: the run picked under Runs, the drawing
on the canvas, the input of the explanation view, the open tab.

What the views are about is decided by the headless `mlpdash.focus` (one rule); the page makes its
`Focus` from the run picked here (`focus_of`). Panels read and set these choices through these
functions, never through the session keys, so that a new view finds them where the others do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import numpy as np
import streamlit as st

from mlpdash.data import DataError
from mlpdash.preprocess import Preparation
from mlpdash.runs import RunError
from mlpdash.ui import late, plain

if TYPE_CHECKING:
    from mlpdash.config import TrainConfig
    from mlpdash.lessons import Preset
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
DRAWINGS_TAB = "Your drawings"
# (digit, drawings kept) of the last Save as…, confirmed under its buttons; let go when the drawings
# change otherwise (a delete, a relabel, an import), as its count would no longer be true.
SAVED_KEY = "save_as_saved"
# One-shot: a view opened from another (a click in Data, Mistakes, Your drawings) lands at its top,
# not where the other had been scrolled to.
LAND_KEY = "view_tab_land"


# The one selection of runs: the rows ticked in the runs table (Runs & comparison), in the order they
# were ticked. The runs ticked are compared; the last one ticked is the run in focus (RUN_KEY, shown by
# every view and named by the banner), except while the comparison follows a sweep that is training
# (FOLLOW_KEY): its runs are ticked as they get a folder, and the page follows the job training them.
TICKED_KEY = "compare_runs"
FOLLOW_KEY = "compare_follow_sweep"
# Counts the changes of the selection made outside the runs table (Start, "Back to the current run",
# a sweep followed): each gives the table a new key (runs_table_key).
TABLE_GENERATION_KEY = "runs_table_generation"
LET_GO_KEY = "run_let_go"  # why the picked run was let go, for the page's next full run to say


def picked_run() -> Path | None:
    """The saved run the panels show instead of the current job, or None."""
    picked = st.session_state.get(RUN_KEY)
    return Path(picked) if picked else None


def pick_run(path: Path | None) -> None:
    """Show `path`'s run in every panel, the only run ticked (None: back to the current job, nothing
    ticked: what starting a job from the page does, so that the page follows it)."""
    ticked = [Path(path).name] if path is not None else []
    _table_afresh(ticked)
    st.session_state[RUN_KEY] = str(path) if path is not None else None
    st.session_state[TICKED_KEY] = ticked
    st.session_state.pop(FOLLOW_KEY, None)


def let_go_of_picked_run(reason: str) -> NoReturn:
    """The picked run cannot be read: back to the current job, through a full rerun of the page,
    whose banner says why (`let_go_reason`). Also from a fragment's run: a pick made there gave the
    runs table, drawn outside the fragment, its new key only at the next full run, and the user's next
    tick went to the old table and was lost. And said once, not by every panel that read the run."""
    pick_run(None)
    st.session_state[LET_GO_KEY] = reason
    st.rerun(scope="app")


def let_go_reason() -> str | None:
    """Why the picked run was just let go (once: the next full run of the page says nothing)."""
    return st.session_state.pop(LET_GO_KEY, None)


def ticked_runs() -> list[str]:
    """The run ids ticked, in the order ticked; the run in focus among them, last."""
    ticked = [run for run in st.session_state.get(TICKED_KEY) or [] if isinstance(run, str)]
    picked = picked_run()
    if picked is not None and picked.name not in ticked:
        ticked = [picked.name]  # picked without a tick (as pick_run does it): the only one ticked
    elif picked is not None and ticked[-1] != picked.name:
        ticked = [run for run in ticked if run != picked.name] + [picked.name]
    st.session_state[TICKED_KEY] = ticked
    return ticked


def tick_runs(run_ids: list[str], runs_dir: Path, follow: str | None = None) -> None:
    """Tick `run_ids` (in the order ticked): the last is shown in every panel. With `follow`, a sweep
    id: the sweep's runs are ticked as they appear, and the panels follow the job."""
    _table_afresh(list(dict.fromkeys(run_ids)))
    _tick(run_ids, runs_dir, follow)


def _tick(run_ids: list[str], runs_dir: Path, follow: str | None = None) -> None:
    st.session_state[TICKED_KEY] = list(dict.fromkeys(run_ids))
    if follow is None:
        st.session_state.pop(FOLLOW_KEY, None)
        st.session_state[RUN_KEY] = str(Path(runs_dir) / run_ids[-1]) if run_ids else None
    else:
        st.session_state[FOLLOW_KEY] = follow
        st.session_state[RUN_KEY] = None


def runs_table_key(first_run: str, count: int) -> str:
    """The runs table's widget key. The table keeps ticked row *positions*, which a new run shifts: a
    key that changes with the list (its newest run, its length), ticked afresh from the selection.
    And one that changes when the page changes the ticks itself: the browser's table, told its new
    rows, could still send back the rows it had, a moment later, and pick again the run the user had
    just left (seen under load, after "Back to the current run"). A new table has no old rows."""
    generation = _generation()
    return f"runs_table_{first_run}_{count}" + (f"_{generation}" if generation else "")


def _generation() -> int:
    return int(st.session_state.get(TABLE_GENERATION_KEY, 0))


def _table_afresh(ticked: list[str]) -> None:
    """The selection is about to become `ticked` from outside the table: if that changes it, the
    table is drawn anew (runs_table_key)."""
    if list(st.session_state.get(TICKED_KEY) or []) != ticked:
        st.session_state[TABLE_GENERATION_KEY] = _generation() + 1


def followed_sweep() -> str | None:
    """The sweep whose runs are ticked as they appear, if any."""
    return st.session_state.get(FOLLOW_KEY)


def retick(before: list[str], rows: list[int], shown: list[str]) -> list[str]:
    """The runs ticked after the table's ticked rows became `rows` (positions in `shown`, the run ids
    as the table listed them): those still ticked in their order, then those newly ticked."""
    now = [shown[row] for row in rows if 0 <= row < len(shown)]
    return [run for run in before if run in now] + [run for run in now if run not in before]


# The runs table as last drawn: (its key, the run ids it listed, the rows ticked), to tell a tick the
# user changed from a row that moved; and why a tick was refused, said under the table.
TABLE_DRAWN_KEY = "runs_table_drawn"
TABLE_PROBLEM_KEY = "runs_table_problem"


def table_rows(key: str, shown: list[str], runs_dir: Path, unshowable: dict[str, str]) -> bool:
    """Before the runs table (keyed `key`, listing `shown`) is drawn: take up a change of its ticks
    that no callback took (set through session state, as a test does), drop runs gone or damaged,
    then tick its rows as the selection says (a new run shifts the rows; Start and "Back to the
    current run" untick them). `unshowable` maps damaged runs to why. Whether the selection changed
    here, so that what was drawn above it (the banner, the views) must be drawn again."""
    before = list(ticked_runs()), picked_run()
    drawn = st.session_state.get(TABLE_DRAWN_KEY)
    rows = _rows(key)
    if rows is not None and (drawn is None or drawn[0] != key):
        _adopt(rows, shown, None, runs_dir, unshowable)
    elif rows is not None and drawn[1] == shown:
        _adopt(rows, shown, drawn[2], runs_dir, unshowable)
    ticked = ticked_runs()
    kept = [run for run in ticked if run in shown and run not in unshowable]
    if kept != ticked:
        tick_runs(kept, runs_dir, followed_sweep())
    wanted = sorted(shown.index(run) for run in kept)
    if _rows(key) != wanted:
        st.session_state[key] = {"selection": {"rows": wanted, "columns": []}}
    st.session_state[TABLE_DRAWN_KEY] = (key, list(shown), wanted, _generation())
    return (ticked_runs(), picked_run()) != before


def table_ticked(key: str, runs_dir: Path, unshowable: dict[str, str]) -> None:
    """The runs table's callback: its ticked rows changed; the selection follows (a damaged run
    cannot be ticked: why is said under the table)."""
    drawn = st.session_state.get(TABLE_DRAWN_KEY)
    # Not drawn with this key yet: the next draw takes the change up (table_rows). Drawn before the
    # page changed the ticks itself: a table on its way out, sending the rows it had; ignored.
    if drawn is not None and drawn[0] == key and drawn[3:] == (_generation(),):
        _adopt(_rows(key) or [], drawn[1], drawn[2], runs_dir, unshowable)


def _adopt(rows: list[int], shown: list[str], drawn: list[int] | None, runs_dir: Path,
           unshowable: dict[str, str]) -> None:
    """The table's ticked `rows` (of `shown`), against the rows it was drawn with (None: not drawn
    with these rows): the runs ticked or unticked since become the selection's; a damaged run ticked
    is refused (said under the table) and changes nothing."""
    refused = [shown[row] for row in rows if 0 <= row < len(shown) and shown[row] in unshowable]
    if refused:
        st.session_state[TABLE_PROBLEM_KEY] = [(run, unshowable[run]) for run in refused]
    rows = [row for row in rows if 0 <= row < len(shown) and shown[row] not in unshowable]
    was = set(ticked_runs()) if drawn is None else {shown[row] for row in drawn if 0 <= row < len(shown)}
    if {shown[row] for row in rows} == was:
        return  # no change of the runs ticked: the browser echoing the page's ticks, or a refused one
    _tick(retick(ticked_runs(), rows, shown), runs_dir)


def table_problems() -> list[tuple[str, str]]:
    """The damaged runs ticked since the table was last drawn, with why they cannot be shown."""
    return st.session_state.pop(TABLE_PROBLEM_KEY, None) or []


def _rows(key: str) -> list[int] | None:
    state = st.session_state[key] if key in st.session_state else None
    if state is None:
        return None
    selection = state.get("selection", {}) if hasattr(state, "get") else {}
    return sorted(int(row) for row in selection.get("rows", []))


def focus_of(server: Server) -> Focus:
    """What the views are about now, for this tab (its picked run)."""
    return server.focus(picked_run())


def model(focus: Focus, cannot: str, none: str, settled: bool = False) -> ModelInFocus | None:
    """The model in focus; None with a message: `cannot` (+ the reason) for a run that cannot give
    one, `none` when there is no model yet. `settled`: a training job's newest finished epoch rather
    than its weights of this instant (Focus.settled_model)."""
    try:
        found = focus.settled_model() if settled else focus.model()
    except RunError as err:
        st.error(f"{cannot}: {plain(err)}", icon=":material/warning:")
        return None
    if found is None:
        happened = focus.missing_model()  # a job that diverged or failed: say so, not "train first"
        st.info(none if happened is None else plain(happened), icon=":material/info:")
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
    open_view_tab(EXPLAIN_TAB)


def explain_saved_drawing(file: str) -> None:
    """Open *Inside a prediction* on a saved drawing (Your drawings). Call it from a widget's callback."""
    st.session_state[INPUT_KEY] = SAVED_DRAWING_INPUT
    st.session_state[SAVED_DRAWING_KEY] = file
    open_view_tab(EXPLAIN_TAB)


def open_view() -> str | None:
    """The name of the view tab open now (None: the first, before any tab was chosen)."""
    return st.session_state.get(VIEW_TAB_KEY)


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


def apply_preset(preset: Preset) -> None:
    """Fill the sidebar's settings (and its Speed) with a lesson preset's, and name the preset in its
    list. Call it from a widget's callback: the widgets read their keys on the rerun it precedes."""
    st.session_state.update(settings_widgets(preset.config))
    late.set_by_page("lesson", preset.name)  # both have callbacks that a late request would call
    late.set_by_page("pace", preset.pace)


def settings_widgets(config: TrainConfig) -> dict[str, object]:
    """The sidebar's settings widgets' keys with the values that show `config` (one mapping for the
    new session's values and for a preset's)."""
    return {
        "hidden": ",".join(map(str, config.hidden)) or "0",
        "activation": config.activation, "optimizer": config.optimizer,
        "learning_rate": config.learning_rate, "lr_schedule": config.lr_schedule,
        "batch_size": config.batch_size, "epochs": config.epochs, "dropout": config.dropout,
        "seed": config.seed, "train_digits": config.train_digits,
    }


def open_view_tab(name: str) -> None:
    """Open the view tab `name`, landing at its top (before the tab bar is drawn in this run, or from a
    widget's callback)."""
    st.session_state[VIEW_TAB_KEY] = name
    st.session_state[TAB_CHANGED_KEY] = True
    st.session_state[LAND_KEY] = True


def set_settings(config: TrainConfig | None) -> None:
    """The training settings of the sidebar (None: one of them has a problem, shown there), for the
    views that start runs (a sweep varies a few and keeps the rest)."""
    st.session_state[SETTINGS_KEY] = config


def settings() -> TrainConfig | None:
    return st.session_state.get(SETTINGS_KEY)
