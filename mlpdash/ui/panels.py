"""Main-area panels: live training, first-layer weights and saved runs."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from mlpdash import figures
from mlpdash.compare import runs_table_row
from mlpdash.focus import Focus
from mlpdash.progress import Snapshot, Status
from mlpdash.runs import RunError
from mlpdash.server import Server
from mlpdash.timeline import layer_shown, units_on_page
from mlpdash.ui import choices, guarded, job_active, plain, refresh_every, rerun_if_changed
from mlpdash.ui.access import may_control
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG
from mlpdash.run_view import RunView, chart_epochs, chart_notes, page_count, status_line, stopped_mid_epoch

WEIGHTS_REFRESH_FACTOR = 5
# While a job trains, the weights panel shows the weights as they are, read at most this often.
LIVE_WEIGHTS_SECONDS = 5.0
# Units per page of the weights grid: 16 x 8 tiles of at least 28 px in the grid's column at 1024 px.
TILES_PER_PAGE = 128
CHARTS_REFRESH_FACTOR = 3
TABLE_ROWS_KEY = "runs_table_rows"  # the runs table's rows as last drawn


def current_view(focus: Focus) -> RunView | None:
    """The run in focus, as the panels show it. A picked run that cannot be read is let go: the page
    reruns, follows the run the rule picks next, and says why over the panels (run_banner)."""
    try:
        return focus.run_view()
    except RunError as err:
        if focus.picked is None:
            return None  # the newest saved run, changed under us: the next rerun lists it again
        choices.let_go_of_picked_run(str(err))


def status_panel(server: Server) -> None:
    """The status line of the server's job (whatever run is in focus), then the progress bar; the
    control bar's fragment reruns it every second while a job runs."""
    _live(server)


def charts_ui(focus: Focus, planned_epochs: int | None = None) -> None:
    """The loss and accuracy charts, in a fragment of their own refreshed less often than the status
    (every redraw of a chart costs each open browser a Plotly render, and the server its figure: on a
    shared machine that time is training's). With no run to show, the empty charts span
    `planned_epochs`, the sidebar's setting."""
    was_active = job_active(focus)

    @st.fragment(run_every=refresh_every(was_active, CHARTS_REFRESH_FACTOR))
    def charts() -> None:
        now = focus.now()  # a tick of the timer: the job has moved on
        with guarded("training charts"), st.container(key="live_charts"):
            # A run in progress is drawn over its whole length; an ended one over what it did.
            _charts(current_view(now), live=now.changing(), planned_epochs=planned_epochs)

    charts()


def run_banner() -> None:
    """When a saved run is picked (the last run ticked under Runs & comparison), say so above
    everything it changes, with the way back (which unticks every run); when one was just let go
    because it could not be read, say why."""
    reason = choices.let_go_reason()
    if reason is not None:
        with st.container(key="run_let_go"):
            st.error(f"Cannot show that run: {plain(reason.rstrip('.'))}. The page shows the current run again.",
                     icon=":material/warning:")
    picked = choices.picked_run()
    if picked is not None and not picked.is_dir():
        choices.pick_run(None)  # deleted since it was ticked: the views follow the current job again
        return
    if picked is None:
        return
    # Runs deleted since they were ticked are not compared (the table no longer lists them).
    ticked = sum((picked.parent / run).is_dir() for run in choices.ticked_runs())
    compared = f" {ticked} runs are ticked to compare under Runs & comparison." if ticked > 1 else ""
    with st.container(key="run_banner"):
        text_col, button_col = st.columns([4, 1], vertical_alignment="center")
        text_col.info(f"Showing saved run **{plain(picked.name)}**: the charts, the result, the views below "
                      f"and the answers to drawings are this run's, not the current job's.{compared}",
                      icon=":material/history:")
        button_col.button("Back to the current run", key="view_current", width="stretch",
                          on_click=choices.pick_run, args=(None,))


def _live(server: Server) -> None:
    job = server.jobs.job
    snap = job.snapshot() if job else None
    with st.container(key="status"):
        line = status_line(snap, other_run_shown=_other_run_shown(snap))
        if snap is not None and snap.status in (Status.FAILED, Status.DIVERGED):
            # A failure's message may quote a file: the data source a queued run names, a path.
            st.error(plain(line), icon=":material/error:")
        else:
            st.markdown(f"**{line}**")
        if snap is not None and snap.data_reason:
            st.caption(f"Data: {plain(snap.data_reason)}")
        _queue_line(server, snap)
    # The progress bar's slot stays keyed: when the run ends, the bar does not linger while the
    # page reruns to show the result.
    with st.container(key="run_progress"):
        if snap is not None and snap.status.active:
            st.progress(snap.progress)


def _other_run_shown(snap: Snapshot | None) -> bool:
    """Whether the panels show a saved run picked under Runs, not the job's own run."""
    picked = choices.picked_run()
    if picked is None or snap is None:
        return False
    return snap.run_dir is None or Path(snap.run_dir).resolve() != picked.resolve()


def _queue_line(server: Server, snap) -> None:
    """Which sweep run this is and how many wait after it: Stop ends this run only."""
    item, waiting = server.sweeps.current(), server.sweeps.queue.waiting()
    if item is None and not waiting:
        return
    if server.sweeps.executor.remote:
        training = len(server.sweeps.training())
        st.caption(f"Sweep: {training} run{'s' * (training != 1)} training on "
                   f"{plain(server.sweeps.executor.describe())}; {waiting} more queued — see Runs & comparison "
                   "to follow or cancel the sweep.")
        return
    this = (f"{plain(item.sweep_name)}, {plain(item.label)}" if item is not None and snap is not None
            and snap.status.active else None)
    after = f"{waiting} more queued" if waiting else "none queued after it"
    text = f"Sweep run ({this}); {after}" if this else f"Sweep: {after}"
    st.caption(f"{text} — see Runs & comparison to follow or cancel the sweep.")


def result_ui(focus: Focus) -> None:
    """The test result of the run the panels show, once it has one. Not polled: the end of a run
    reruns the whole page."""
    if focus.changing():
        return  # the current job has no result yet
    view = current_view(focus)
    if view is not None and view.test_accuracy is not None:
        with st.container(key="result"):
            _result_metrics(view)


def _result_metrics(view: RunView) -> None:
    if not view.live:
        st.caption(f"{plain(view.title)} ({view.config.architecture}):")
    accuracy, loss, epochs = st.columns(3)
    accuracy.metric("Test accuracy", f"{view.test_accuracy:.4f}")
    loss.metric("Test loss", "—" if view.test_loss is None else f"{view.test_loss:.4f}")
    # Finished epochs, and for a run stopped inside one where its model was: a test result never sits
    # beside a bare "0 of 2".
    epochs.metric("Epochs finished", f"{len(view.history)} of {view.config.epochs}")
    partial = stopped_mid_epoch(view)
    if partial is not None:
        st.caption(f"Stopped: {partial}.")


def _charts(view: RunView | None, live: bool, planned_epochs: int | None = None) -> None:
    # Every open tab redraws these every few seconds while a job trains: tabs showing the same state of
    # the same run share one figure (built once) instead of each building its own.
    identity = (view.title, str(view.run_dir)) if view else None
    history = view.history if view else ()
    steps = view.batch_steps if view is not None and view.batch_steps is not None else ()
    # Stacked, not side by side: each chart gets the column's full width.
    with st.container():
        last_step = int(steps[-1]) if len(steps) else 0
        # Both charts span the same epochs; an ended run with nothing to draw says what happened.
        epochs = chart_epochs(view, live, planned_epochs)
        loss_note, accuracy_note = chart_notes(view, live)
        st.plotly_chart(_loss_figure((identity, len(history), len(steps), last_step, epochs, loss_note), view),
                        key="loss_chart", theme=None, config=CHART_CONFIG)
    with st.container():
        st.plotly_chart(_accuracy_figure((identity, len(history), epochs, accuracy_note), history, epochs),
                        key="accuracy_chart", theme=None, config=CHART_CONFIG)


# Derived values (mlpdash.ui.cache): one figure for every session, only read afterwards. Arguments with a
# leading underscore are not hashed; the key before them says what they hold.
@derived(max_entries=8)
def _loss_figure(key: tuple, _view: RunView | None) -> go.Figure:
    epochs, note = key[-2:]
    if _view is None:
        return figures.loss_figure((), epochs=epochs)
    return figures.loss_figure(_view.history, _view.batch_loss, _view.batches_per_epoch, _view.batch_steps,
                               epochs=epochs, note=note)


@derived(max_entries=8)
def _accuracy_figure(key: tuple, _history: tuple, epochs: float | None) -> go.Figure:
    return figures.accuracy_figure(_history, epochs, note=key[-1])


@derived(max_entries=8)
def _layer(key: tuple, _kernel: np.ndarray, _initial: np.ndarray | None) -> tuple[np.ndarray, float, np.ndarray]:
    """One run's first layer at one moment, as shown (raw, or change since step 0): (values, the
    colour range over the whole layer, the units most changed first). Computed once for every tab."""
    values, order = layer_shown(_kernel, _initial)
    return values, figures.weight_range(values), order


def weights_ui(focus: Focus) -> None:
    was_active = job_active(focus)

    # The kernel changes once an epoch and its grid is ~1 MB: poll it less often than the charts.
    @st.fragment(run_every=refresh_every(was_active, WEIGHTS_REFRESH_FACTOR))
    def weights() -> None:
        now = focus.now()
        rerun_if_changed(now, was_active)
        choices.follow_tab_change()
        with guarded("weights"):
            _weights(now)

    weights()


CHANGE = "Change since initialisation"


def _weights(focus: Focus) -> None:
    view = current_view(focus)
    if view is None or view.kernel is None:
        st.info("The first-layer weights appear once a model is built.", icon=":material/info:")
        return
    change = st.segmented_control(
        "Show", [CHANGE, "Weights"], default=CHANGE, key="weights_mode",
        help="Training moves the weights only a little from their random start, so the raw weights "
             "look like noise; the change shows what each unit has learned to look for.") != "Weights"
    kernel, when, stamp = _shown_kernel(focus, view)
    quantity = "change since step 0" if change else "weight"
    shown, value_range, order = _layer(
        (view.title, str(view.run_dir), stamp, change), kernel, view.initial_kernel if change else None)
    units = shown.shape[1]
    linear = not view.config.hidden
    page_ids = _page_of_units(order, units, linear)
    unit = _take_clicked_unit(units)
    # The enlarged unit's column is wide enough for a tile of 280 px or more beside its colour bar.
    grid_col, unit_col = st.columns([3, 2])
    with grid_col:
        if linear:
            what = ("The linear model's ten units are the ten digits: each tile is that digit's template "
                    "(red: ink there argues for the digit; blue: against it)")
        else:
            what = (f"{len(page_ids)} of the {units} first-layer units (red: ink there raises the unit's "
                    "input; blue: lowers it)")
        st.caption(f"{what}; {'the change of each weight since initialisation' if change else 'the weights'}, "
                   f"{when}. Hover to name a unit, click to enlarge it.")
        labels = [f"digit {k}" for k in page_ids] if linear else None
        grid = figures.weights_grid_figure(shown[:, page_ids], value_range=value_range, quantity=quantity,
                                           unit_ids=page_ids, labels=labels, highlight=unit)
        st.plotly_chart(grid, key="weights_grid", theme=None, on_select="rerun", selection_mode=("points",),
                        config=CHART_CONFIG)
    with unit_col:
        unit = st.number_input("Digit" if linear else "Unit", min_value=0, max_value=units - 1, step=1,
                               key="weights_unit")
        tile = figures.unit_figure(shown, int(unit), value_range=value_range,
                                   quantity="change" if change else "weight")
        if linear:
            tile.update_layout(title_text=f"Digit {int(unit)}")
        st.plotly_chart(tile, key="unit_chart", theme=None, config=CHART_CONFIG)
        if not linear:
            st.button(f"Open unit {int(unit)} in Units", key="weights_open_unit", icon=":material/open_in_new:",
                      on_click=choices.open_unit, args=(1, int(unit)),
                      help="Its card: what drives it, what it wants to see, what breaks without it")


def _page_of_units(order: np.ndarray, units: int, linear: bool) -> np.ndarray:
    """The units of the page chosen: tiles stay large enough to see strokes (TILES_PER_PAGE at a
    time), sorted by how much they changed (most first) or by number."""
    if units <= TILES_PER_PAGE:
        return units_on_page(order, not linear, 1, TILES_PER_PAGE)
    order_col, page_col = st.columns([1, 1])
    by_norm = order_col.segmented_control(
        "Order", ["most changed first", "by number"], default="most changed first", key="weights_order",
        help="Most changed: the units training shaped most, by the size of their weights' change (or "
             "of their weights)")
    page = page_col.slider("Page", 1, page_count(units, TILES_PER_PAGE), 1, key="weights_page",
                           help=f"{TILES_PER_PAGE} units a page, so that each tile is big enough to see")
    return units_on_page(order, by_norm != "by number", page, TILES_PER_PAGE)


def _shown_kernel(focus: Focus, view: RunView) -> tuple[np.ndarray, str, tuple]:
    """(kernel, when it is from, a cache stamp): the live job's weights as they are now, mid-epoch
    included, while it trains; else the newest epoch's snapshot."""
    job = focus.run.job if view.live and focus.run is not None else None
    if job is not None and job.status in (Status.TRAINING, Status.PAUSED):
        live = _live_kernel(str(view.run_dir), int(time.monotonic() // LIVE_WEIGHTS_SECONDS), job)
        if live is not None:
            kernel, epoch, batch = live
            return kernel, f"live: epoch {epoch}, batch {batch}", ("live", epoch, batch)
    epoch = view.kernel_epoch
    when = "initial weights" if epoch == 0 else f"after epoch {epoch}"
    return view.kernel, when, ("epoch", epoch)


@derived(max_entries=2)
def _live_kernel(run: str, window: int, _job) -> tuple[np.ndarray, int, int] | None:
    """The live kernel, read once per LIVE_WEIGHTS_SECONDS window for every tab (each read copies
    the layer while it trains)."""
    return _job.live_kernel()


def _take_clicked_unit(units: int) -> int:
    """A click on the grid picks the unit shown large (the number input stays the one source);
    returns that unit."""
    clicked = choices.clicked("weights_grid")
    if clicked:
        unit = clicked[0]
        if 0 <= unit < units and unit != st.session_state.get("weights_clicked"):
            st.session_state["weights_clicked"] = unit
            st.session_state["weights_unit"] = unit
    st.session_state.setdefault("weights_unit", 0)
    if st.session_state["weights_unit"] >= units:  # a narrower model than the last one shown
        st.session_state["weights_unit"] = 0
    return int(st.session_state["weights_unit"])


def runs_ui(server: Server) -> None:
    runs = server.jobs.runs()
    rows = [runs_table_row(run) for run in runs]
    # What the table says, for the comparison's live fragment to tell when it says it no longer.
    st.session_state[TABLE_ROWS_KEY] = rows
    if not runs:
        st.info("No saved runs yet. Every run, finished or stopped, is saved under "
                f"`{server.runs_dir}`.", icon=":material/info:")
        return
    # The table's ticks are the page's one selection of runs (choices): the last ticked is shown
    # everywhere, all of them are compared.
    key = choices.runs_table_key(runs[0].run_id, len(runs))
    shown = [run.run_id for run in runs]
    damaged = {run.run_id: run.error or "damaged" for run in runs if run.status == "damaged"}
    if choices.table_rows(key, shown, server.runs_dir, damaged):
        st.rerun()  # the banner and the views above were drawn for the selection before
    with st.container(key="runs_table"):
        st.dataframe(rows, key=key, on_select=functools.partial(choices.table_ticked, key, server.runs_dir, damaged),
                     selection_mode="multi-row", hide_index=True, width="stretch", placeholder="—",
                     # The run stays in view while a phone scrolls the other columns sideways.
                     column_config={"run": st.column_config.TextColumn(pinned=True)})
    for run_id, error in choices.table_problems():
        st.warning(f"{plain(run_id)} cannot be shown: {plain(error)}", icon=":material/warning:")
    picked = choices.picked_run()
    _evaluate_ui(server, next((run for run in runs if picked is not None and run.run_id == picked.name), None))
    st.caption("Tick a row to show that run everywhere (its curves, confusion matrix, weights and model); "
               "tick more to compare them below: the last one ticked is shown. A run whose process was "
               "killed is listed as interrupted: it keeps every finished epoch.")


def _evaluate_ui(server: Server, chosen) -> None:
    """An interrupted run has no test result: offer to compute it from its last saved epoch."""
    if chosen is None or chosen.status != "interrupted" or chosen.summary or not chosen.has_model:
        return
    st.info(f"{plain(chosen.run_id)} was {chosen.label}. Its model from the last finished epoch can be "
            "evaluated on the test set.", icon=":material/info:")
    if st.button("Evaluate it on the test set", key="evaluate_interrupted", disabled=not may_control(),
                 icon=":material/fact_check:"):
        with st.spinner("Evaluating…"):
            try:
                info = server.jobs.evaluate_run(chosen.path)
            except (RunError, ValueError, OSError) as err:
                st.error(f"Cannot evaluate {plain(chosen.run_id)}: {plain(err)}", icon=":material/warning:")
                return
        choices.pick_run(info.path)
        st.rerun()

