"""The Runs & comparison tab: the saved runs (tick one to show it everywhere; name it, note it or
delete it; tick more to compare them), and sweeps queued to train one after another.

The table's ticks are the page's one selection of runs (`choices.ticked_runs`): the last one ticked
is the run in focus, and every one ticked is compared here.

What it shows is computed by `mlpdash.compare` and `mlpdash.figures`; the queue is the job
server's (`mlpdash.queue`), so a refresh or a second tab finds it as it was.
"""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from mlpdash import figures
from mlpdash.compare import (
    comparison_table,
    run_label,
    runs_table_row,
    state_counts,
    sweep_label,
    sweep_rows,
    sweep_table,
)
from mlpdash.config import TrainConfig
from mlpdash.focus import Focus
from mlpdash.server import Server
from mlpdash.runs import RunError, RunInfo, read_info, read_metrics, restore_run, set_notes, trash_run, trashed_runs
from mlpdash.sweep import Sweep, plan, unique_name
from mlpdash.ui import choices, guarded, plain
from mlpdash.ui.access import may_control
from mlpdash.ui.panels import TABLE_ROWS_KEY, runs_ui
from mlpdash.ui.style import CHART_CONFIG

SWEEP_PICK_KEY = "sweep_pick"
# Set when a widget of the fragment changed the selection (a sweep queued): the table and the banner,
# outside the fragment, are drawn again.
SELECTION_CHANGED_KEY = "compare_selection_changed"
QUEUED_KEY = "sweep_queued"
REFRESH_SECONDS = 2.0
SWEEP_SLOTS = 3
NOT_SWEPT = "—"
# The settings a sweep can vary, as the sidebar names them, with an example of their values.
SWEEP_SETTINGS = {
    "learning rate": ("learning_rate", "0.0003, 0.001, 0.003"),
    "hidden layers": ("hidden", "128 : 700,500 : 0   (':' between sizes; 0 = linear)"),
    "dropout": ("dropout", "0, 0.2, 0.5"),
    "batch size": ("batch_size", "32, 128, 512"),
    "epochs": ("epochs", "2, 5, 10"),
    "activation": ("activation", "relu, tanh, sigmoid"),
    "optimizer": ("optimizer", "adam, sgd"),
    "learning-rate schedule": ("lr_schedule", "cosine, constant"),
    "seed": ("seed", "1, 2, 3"),
    "training digits": ("train_digits", "1000, 10000, 0   (0 = all)"),
}
TRASH_SHOWN = 10


def compare_ui(focus: Focus, server: Server) -> None:
    runs_ui(server)
    _manage_ui(focus, server)
    busy = server.jobs.active() or server.sweeps.running()

    # While a run trains or a sweep waits, its curves and states change: redraw them every few
    # seconds; an idle tab costs nothing.
    @st.fragment(run_every=REFRESH_SECONDS if busy else None)
    def live() -> None:
        if st.session_state.pop(SELECTION_CHANGED_KEY, False):
            st.rerun(scope="app")  # a widget's callback changed the selection: the table and the banner too
        runs = server.jobs.runs()  # once a rerun: listing reads every run folder
        with guarded("comparison"):
            _comparison_ui(server, runs)
        with guarded("sweep"):
            _sweep_ui(server, runs)
        if busy != (server.jobs.active() or server.sweeps.running()):
            st.rerun(scope="app")  # start or stop the timer
        if _table_outdated(runs):
            st.rerun(scope="app")  # the table, outside this fragment, is drawn again

    live()


# --- the picked run: name, note, delete ------------------------------------------------------------


def _manage_ui(focus: Focus, server: Server) -> None:
    picked = focus.picked
    info = read_info(picked) if picked is not None and picked.is_dir() else None
    with st.container(key="run_manage"):
        if info is None:
            st.caption("Tick a run in the table to name it, write a note on it or delete it.")
        else:
            _notes_form(info)
        _trash_ui(server)


def _notes_form(info: RunInfo) -> None:
    allowed = may_control()
    with st.form(key="run_notes", border=False):
        name_col, note_col = st.columns([1, 2])
        name = name_col.text_input("Name", info.name, key=f"run_name_{info.run_id}", max_chars=80,
                                   placeholder=info.run_id, disabled=not allowed)
        note = note_col.text_area("Note", info.note, key=f"run_note_{info.run_id}", max_chars=2000, height=68,
                                  placeholder="what you tried, what you saw…", disabled=not allowed)
        saved = st.form_submit_button("Save name and note", icon=":material/edit_note:", disabled=not allowed)
    if saved:
        try:
            set_notes(info.path, name, note)
        except (ValueError, OSError) as err:
            st.error(f"Not saved: {plain(err)}", icon=":material/warning:")
        else:
            st.toast(f"Saved the name and note of {plain(info.run_id)}", icon=":material/check:")
            st.rerun()
    with st.popover("Delete this run…", icon=":material/delete:", disabled=not allowed):
        st.markdown(f"Move **{plain(info.title)}** to the trash? It can be restored for a day, then it is "
                    "removed for good.")
        if st.button("Delete", key="run_delete_confirm", type="primary", icon=":material/delete:"):
            try:
                trash_run(info.path)
            except (RunError, OSError) as err:
                st.error(f"Not deleted: {plain(err)}", icon=":material/warning:")
            else:
                choices.pick_run(None)
                st.toast(f"{plain(info.title)} moved to the trash (Recently deleted, below the table)",
                         icon=":material/delete:")
                st.rerun()


def _trash_ui(server: Server) -> None:
    trashed = trashed_runs(server.runs_dir)
    if not trashed:
        return
    with st.expander(f"Recently deleted ({len(trashed)})", icon=":material/restore_from_trash:"):
        for entry in trashed[:TRASH_SHOWN]:
            text_col, button_col = st.columns([4, 1], vertical_alignment="center")
            hours = max(0.0, (entry.purge_at() - time.time()) / 3600)
            text_col.markdown(f"{plain(entry.run_id)} :gray[· removed for good in {hours:.0f} h]")
            if button_col.button("Restore", key=f"restore_{entry.path.name}", disabled=not may_control()):
                try:
                    restore_run(entry)
                except (RunError, OSError) as err:
                    st.error(f"Not restored: {plain(err)}", icon=":material/warning:")
                else:
                    st.rerun()


# --- runs compared --------------------------------------------------------------------------------


def _comparison_ui(server: Server, listed: list[RunInfo]) -> None:
    runs = [run for run in listed if run.status != "damaged"]
    with st.container(key="compare"):
        st.markdown("#### Compare runs")
        title_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        ticked = _ticked(server, runs, title_col)
        button_col.button("Linear vs MLP", key="compare_linear_mlp", icon=":material/compare_arrows:",
                          on_click=_queue_linear_vs_mlp, args=(server,), disabled=not may_control(),
                          help="Queue two runs with the sidebar's settings, one with no hidden layer (a "
                               "linear classifier) and one with 700 and 500 units, then compare them")
        training = st.toggle("Training curves too (dashed)", key="compare_training")
        if not ticked:
            st.caption("Tick runs in the table above to compare their validation curves, their settings and "
                       "their mistakes per digit. A run still training can be ticked too.")
            return
        colours = figures.run_colours([run.run_id for run in reversed(listed)])
        curves = []
        for run in ticked:
            try:
                curves.append((run.title, colours[run.run_id], read_metrics(run.path / "metrics.jsonl")))
            except RunError as err:
                st.warning(f"{plain(run.title)}: its curves cannot be read ({plain(err)})", icon=":material/warning:")
        accuracy_col, loss_col = st.columns(2)
        accuracy_col.plotly_chart(figures.compare_curves_figure(curves, "accuracy", training), key="compare_accuracy",
                                  theme=None, config=CHART_CONFIG)
        loss_col.plotly_chart(figures.compare_curves_figure(curves, "loss", training), key="compare_loss",
                              theme=None, config=CHART_CONFIG)
        st.dataframe(comparison_table(ticked), key="compare_table", hide_index=True, width="stretch")
        per_class = [(run.title, colours[run.run_id], (run.summary or {}).get("per_class_accuracy")) for run in ticked]
        st.plotly_chart(figures.per_class_compare_figure(per_class), key="compare_per_class", theme=None,
                        config=CHART_CONFIG)


def _ticked(server: Server, runs: list[RunInfo], column) -> list[RunInfo]:
    """The runs ticked in the table (those of a sweep followed, as they get a folder), said in `column`."""
    by_id = {run.run_id: run for run in runs}
    follow = choices.followed_sweep()
    sweep = next((sweep for sweep in server.sweeps.queue.sweeps() if sweep.sweep == follow), None)
    if sweep is not None:
        found = [item.run for item in sweep.items if item.run in by_id]
        if found and found != choices.ticked_runs():
            choices.tick_runs(found, server.runs_dir, follow=follow)
            st.rerun(scope="app")  # the table, outside this fragment, ticks them
    ticked = [by_id[run] for run in choices.ticked_runs() if run in by_id]
    if sweep is not None:
        column.caption(f"Following **{plain(sweep.name)}**: its runs are ticked in the table as they start.")
    elif ticked:
        column.caption(f"{len(ticked)} run{'s' if len(ticked) > 1 else ''} ticked in the table above: "
                       + "; ".join(plain(run_label(run)) for run in ticked))
    return ticked


def _table_outdated(runs: list[RunInfo]) -> bool:
    """Whether the runs table no longer says what the runs folder does: a run appeared (a sweep's
    next), or one training finished an epoch or ended. The table is drawn by the whole page, and
    picked rows, when ticked, change every view: it cannot be redrawn alone."""
    drawn = st.session_state.get(TABLE_ROWS_KEY)
    return drawn is not None and [runs_table_row(run) for run in runs] != drawn


def _queue_linear_vs_mlp(server: Server) -> None:
    base = choices.settings()
    if base is None:
        st.session_state["sweep_problem"] = "fix the settings in the sidebar first"
        return
    configs = [dataclasses.replace(base, hidden=()), dataclasses.replace(base, hidden=TrainConfig().hidden)]
    _enqueue(server, configs, "Linear vs MLP", ["hidden"])


# --- sweeps ---------------------------------------------------------------------------------------


def _sweep_ui(server: Server, listed: list[RunInfo]) -> None:
    with st.container(key="sweep"):
        st.markdown("#### Sweep")
        executor = server.sweeps.executor
        st.caption(f"Choose values for up to three settings: every combination is queued and trained with the "
                   f"sidebar's other settings and data, on {plain(executor.describe())}.")
        if executor.remote:
            st.caption("Each run's data source is resolved on the worker that trains it (an IDX folder must "
                       "exist there; the bundled sample always does); its folder comes home when it ends.")
        columns = st.columns(SWEEP_SLOTS)
        for slot, column in enumerate(columns):
            label = column.selectbox(f"Setting {slot + 1}", [NOT_SWEPT, *SWEEP_SETTINGS], key=f"sweep_setting_{slot}")
            example = SWEEP_SETTINGS[label][1] if label in SWEEP_SETTINGS else "choose a setting first"
            column.text_input("Values", key=f"sweep_values_{slot}", placeholder=example,
                              disabled=label not in SWEEP_SETTINGS)
        st.button("Queue the sweep", key="sweep_queue_button", icon=":material/playlist_add:",
                  on_click=_queue_sweep, args=(server,), disabled=not may_control())
        queued = st.session_state.pop(QUEUED_KEY, None)
        if queued:
            st.toast(plain(queued), icon=":material/playlist_add:")
        problem = st.session_state.pop("sweep_problem", None)
        if problem:
            st.error(f"Not queued: {plain(problem)}", icon=":material/warning:")
        if server.sweeps.queue.problem:
            st.warning(plain(server.sweeps.queue.problem), icon=":material/warning:")  # it quotes queue.json
        _sweeps_ui(server, listed)


def _queue_sweep(server: Server) -> None:
    base = choices.settings()
    if base is None:
        st.session_state["sweep_problem"] = "fix the settings in the sidebar first"
        return
    labels = [st.session_state.get(f"sweep_setting_{slot}", NOT_SWEPT) for slot in range(SWEEP_SLOTS)]
    given = [(SWEEP_SETTINGS[label][0], st.session_state.get(f"sweep_values_{slot}") or "")
             for slot, label in enumerate(labels) if label != NOT_SWEPT]
    try:
        planned = plan(base, given, {setting: label for label, (setting, _) in SWEEP_SETTINGS.items()})
    except ValueError as err:
        st.session_state["sweep_problem"] = str(err)
        return
    _enqueue(server, planned.configs, planned.title, planned.swept)


def _enqueue(server: Server, configs: list[TrainConfig], name: str, swept: list[str]) -> None:
    data = choices.data_choice()
    if data is None:
        st.session_state["sweep_problem"] = "the data source in the sidebar has a problem"
        return
    if server.sweeps.executor.problem:  # nothing queued half: runs would wait on a cluster that is not there
        st.session_state["sweep_problem"] = server.sweeps.executor.problem
        return
    sweep = server.sweeps.enqueue(configs, data, name, swept)
    st.session_state[SWEEP_PICK_KEY] = sweep.sweep
    # The picked saved run is let go: the page follows the sweep's runs as they train, and the
    # comparison ticks them.
    choices.tick_runs([], server.runs_dir, follow=sweep.sweep)
    st.session_state[SELECTION_CHANGED_KEY] = True
    # Said by the page's next full run: an element drawn by a fragment's callback lands at the page's top.
    st.session_state[QUEUED_KEY] = f"{sweep.name}: {len(configs)} run{'s' if len(configs) != 1 else ''} queued"


def _sweeps_ui(server: Server, listed: list[RunInfo]) -> None:
    sweeps = server.sweeps.queue.sweeps()
    if not sweeps:
        return
    by_id = {sweep.sweep: sweep for sweep in sweeps}
    if st.session_state.get(SWEEP_PICK_KEY) not in by_id:
        st.session_state[SWEEP_PICK_KEY] = sweeps[0].sweep
    # Labels that never change while a sweep trains (sweep_label), and differ from each other: the
    # select box keeps its value as the label (a queue saved before names were made unique may repeat one).
    labels: dict[str, str] = {}
    for sweep in sweeps:
        labels[sweep.sweep] = unique_name(sweep_label(sweep), labels.values())
    chosen = by_id[st.selectbox("Queued sweeps", list(by_id), key=SWEEP_PICK_KEY, format_func=labels.__getitem__)]
    with st.container(key="sweep_queue"):
        _sweep_controls(server, chosen)
        runs = {run.run_id: run for run in listed}
        rows = sweep_rows(chosen, runs)
        if sum(row["test_accuracy"] is not None for row in rows) >= 2:
            st.plotly_chart(figures.sweep_figure(rows, chosen.swept), key="sweep_chart", theme=None,
                            config=CHART_CONFIG)
        # A run cancelled or not run yet has no accuracy, epochs or time: a dash, not Streamlit's "None".
        st.dataframe(sweep_table(rows, chosen.swept), key="sweep_table", hide_index=True, placeholder="—",
                     width="stretch", column_config={"test accuracy": st.column_config.NumberColumn(format="%.2f %%")})


def _sweep_controls(server: Server, sweep: Sweep) -> None:
    allowed = may_control()
    st.markdown(" · ".join(f"**{count}** {state}" for state, count in state_counts(sweep).items()))
    if sweep.resumable:
        st.info(f"The server restarted before {sweep.resumable} of these runs could start; the runs that "
                "finished are listed with their results.", icon=":material/restart_alt:")
    buttons = []  # (label, key, icon, help, enabled, action), only those that apply now
    if sweep.pending:
        buttons.append(("Cancel the rest", "sweep_cancel", ":material/cancel:",
                        "The run training now stops (and is saved); the waiting ones are dropped", allowed,
                        lambda: server.sweeps.cancel([item.item for item in sweep.items])))
    if sweep.resumable:
        buttons.append(("Resume", "sweep_resume", ":material/play_arrow:", "Queue the runs that did not run",
                        allowed, lambda: server.sweeps.resume_sweep(sweep.sweep)))
    ran = [item.run for item in sweep.items if item.run and (server.runs_dir / item.run).is_dir()]
    buttons.append(("Compare these runs", "sweep_compare", ":material/compare_arrows:",
                    "Tick this sweep's runs in the table above (and those still to train, as they start)",
                    bool(ran) or bool(sweep.pending),
                    lambda: choices.tick_runs(ran, server.runs_dir, follow=sweep.sweep if sweep.pending else None)))
    if not sweep.pending:
        buttons.append(("Remove from the list", "sweep_forget", ":material/playlist_remove:",
                        "The runs stay saved; only the sweep's entry goes", allowed,
                        lambda: server.sweeps.queue.forget(sweep.sweep)))
    with st.container(horizontal=True, key="sweep_buttons"):  # wraps on a narrow screen
        for label, key, icon, help_text, enabled, action in buttons:
            if st.button(label, key=key, icon=icon, help=help_text, disabled=not enabled):
                action()
                st.rerun(scope="app")  # the queue's timer starts or stops with it

