"""The Runs & comparison tab with Streamlit's AppTest: a sweep queued and trained on the sample,
runs compared, a linear classifier against the MLP, and a run named, noted, deleted and restored."""

from __future__ import annotations

import shutil
import time

import pytest
from apptest import new_page
from streamlit.testing.v1 import AppTest

from mlpdash.runs import list_runs, trashed_runs

TAB = "Runs & comparison"


@pytest.fixture
def app(app):
    """The shared page (conftest), set to quick runs (16 units, one epoch) and opened on this tab."""
    app.text_input(key="hidden").input("16")
    app.number_input(key="epochs").set_value(1)
    app.session_state["view_tab"] = TAB
    return app.run()


def rerun_until(at: AppTest, done, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "the page never got there"
        time.sleep(0.5)
        at.run()
    assert not at.exception


def sweep_states(at: AppTest) -> list[str]:
    tables = [t for t in at.dataframe if "state" in t.value.columns and "test accuracy" in t.value.columns
              and "run" in t.value.columns and "epochs" in t.value.columns and len(t.value.columns) <= 7]
    return list(tables[-1].value["state"]) if tables else []


def test_a_sweep_is_queued_trained_in_order_and_compared(app, tmp_path):
    app.selectbox(key="sweep_setting_0").set_value("learning rate").run()
    app.text_input(key="sweep_values_0").input("0.003, 0.03").run()
    app.button(key="sweep_queue_button").click().run()
    assert not app.exception and not app.error
    rerun_until(app, lambda at: sweep_states(at) == ["finished", "finished"])
    runs = list_runs(tmp_path / "runs")
    assert sorted(run.config.learning_rate for run in runs) == [0.003, 0.03]
    assert app.session_state["compare_runs"] == [r.run_id for r in sorted(runs, key=lambda r: r.created)]
    table = [t.value for t in app.dataframe if "training time" in t.value.columns][0]
    assert list(table["learning_rate"]) == ["0.003", "0.03"] and "hidden" not in table.columns
    assert list(table["parameters"]) == [f"{runs[0].config.parameters:,}"] * 2
    assert all(value.endswith("%") for value in table["test accuracy"])
    charts = {c.proto.id for c in app.get("plotly_chart")}
    assert len(charts) >= 4  # accuracy, loss, per digit and the sweep's parallel coordinates
    assert [m.value for m in app.markdown if "**2** finished" in m.value]
    # The picker's label is the sweep's, unchanged as it trained (a label that changed left the browser
    # showing a stale "1 finished · 1 to go" beside "2 finished", issue 21).
    assert app.selectbox(key="sweep_pick").options == ["Sweep of learning rate · 2 runs"]


def test_a_sweep_that_cannot_run_is_explained_and_nothing_is_queued(app, tmp_path):
    app.selectbox(key="sweep_setting_0").set_value("dropout").run()
    app.text_input(key="sweep_values_0").input("0.1, lots").run()
    app.button(key="sweep_queue_button").click().run()
    assert [e.value for e in app.error if "Not queued: 'lots' is not a number" in e.value]
    app.selectbox(key="sweep_setting_1").set_value("dropout").run()
    app.text_input(key="sweep_values_0").input("0.1").run()
    app.text_input(key="sweep_values_1").input("0.2").run()
    app.button(key="sweep_queue_button").click().run()
    assert [e.value for e in app.error if "dropout is chosen twice" in e.value]
    assert not app.exception and not (tmp_path / "runs" / "queue.json").exists()


def test_linear_vs_mlp_queues_both_and_shows_them_compared(app, tmp_path):
    app.button(key="compare_linear_mlp").click().run()
    rerun_until(app, lambda at: sweep_states(at) == ["finished", "finished"], timeout=300)
    runs = sorted(list_runs(tmp_path / "runs"), key=lambda r: r.created)
    assert [run.config.hidden for run in runs] == [(), (700, 500)]
    table = [t.value for t in app.dataframe if "training time" in t.value.columns][0]
    assert list(table["hidden"]) == ["none (linear)", "700,500"]
    assert list(table["parameters"]) == ["7,850", "905,010"]


def test_a_run_is_named_noted_deleted_and_restored(app, tmp_path):
    app.button(key="start_training").click().run()
    rerun_until(app, lambda at: any(run.summary for run in list_runs(tmp_path / "runs")))
    run = list_runs(tmp_path / "runs")[0]
    app.session_state["view_run"] = str(run.path)  # as a row picked in the table
    app.run()
    app.text_input(key=f"run_name_{run.run_id}").input("first try")
    app.text_area(key=f"run_note_{run.run_id}").input("one epoch only")
    app.button(key="FormSubmitter:run_notes-Save name and note").click().run()
    assert not app.exception
    runs_table = app.dataframe[0].value
    assert list(runs_table["name"]) == ["first try"] and list(runs_table["note"]) == ["one epoch only"]
    app.button(key="run_delete_confirm").click().run()
    assert list_runs(tmp_path / "runs") == [] and app.session_state["view_run"] is None
    assert [t.run_id for t in trashed_runs(tmp_path / "runs")] == [run.run_id]
    trashed = trashed_runs(tmp_path / "runs")[0]
    app.button(key=f"restore_{trashed.path.name}").click().run()
    assert [r.title for r in list_runs(tmp_path / "runs")] == ["first try"] and not app.exception


def test_a_refreshed_page_finds_the_sweep_and_can_cancel_it(app, tmp_path):
    app.selectbox(key="sweep_setting_0").set_value("epochs").run()
    app.text_input(key="sweep_values_0").input("200, 1").run()
    app.button(key="sweep_queue_button").click().run()
    refreshed = new_page()  # a new browser session on the same server
    refreshed.session_state["view_tab"] = TAB
    refreshed.run()
    rerun_until(refreshed, lambda at: sweep_states(at) == ["running", "queued"])
    assert [c.value for c in refreshed.caption if "Sweep run (Sweep of epochs, epochs 200); 1 more queued" in c.value]
    refreshed.button(key="sweep_cancel").click().run()
    rerun_until(refreshed, lambda at: sweep_states(at) == ["cancelled", "cancelled"])
    assert all(run.status != "training" for run in list_runs(tmp_path / "runs"))
    # A run cancelled before it started has no accuracy, epochs or time: a dash, not "None" (issue 21).
    [table] = [t for t in refreshed.dataframe if "training time (s)" in t.value.columns]
    assert table.value["test accuracy"].isna().all() and table.proto.placeholder == "—"


def test_after_a_server_restart_the_sweep_shows_what_ran_and_resumes_the_rest(app_env):
    from mlpdash.config import TrainConfig
    from mlpdash.runs import RunWriter
    from mlpdash.sweep import QUEUE_FILE, RunQueue

    runs = app_env
    configs = [TrainConfig(hidden=(16,), epochs=1, seed=seed) for seed in (1, 2, 3)]
    queue = RunQueue(runs / QUEUE_FILE)  # the server before it stopped
    sweep = queue.add(configs, "sample", "seeds", ["seed"])
    finished = RunWriter(runs, configs[0], "sample")
    finished.write_summary({"test_accuracy": 0.91, "stopped_early": False, "epochs_completed": 1})  # no test_loss: an older summary
    finished.close()
    queue.update(queue.take_next().item, state="finished", run=finished.path.name)
    cut = RunWriter(runs, configs[1], "sample")  # killed in its second epoch: one kept, no summary
    cut.write_epoch([{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85,
                      "seconds": 1.0}], None)
    cut.close()
    queue.update(queue.take_next().item, run=cut.path.name)
    at = new_page()  # the server after its restart
    at.session_state["view_tab"] = TAB
    at.run()
    assert sweep_states(at) == ["finished", "interrupted after 1 epoch", "not run"]
    assert [i.value for i in at.info if "server restarted before 1 of these runs" in i.value]
    assert not [r for r in list_runs(runs) if r.config.seed == 3]  # nothing trains by itself
    at.button(key="sweep_resume").click().run()
    rerun_until(at, lambda page: sweep_states(page)[-1] == "finished")
    assert sorted(r.config.seed for r in list_runs(runs)) == [1, 2, 3]
    assert sweep.sweep in {s.sweep for s in RunQueue(runs / QUEUE_FILE).sweeps()}


# --- one selection of runs: the table's ticks (issue 21) -------------------------------------------


def _saved_run(runs, seed: int, accuracy: float):
    """A finished one-epoch run written as training writes one (no TensorFlow)."""
    from mlpdash.config import TrainConfig
    from mlpdash.runs import RunWriter, read_info

    writer = RunWriter(runs, TrainConfig(hidden=(16,), epochs=1, seed=seed), "sample")
    writer.write_epoch([{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": accuracy,
                         "seconds": 1.0}], None)
    writer.write_summary({"test_accuracy": accuracy, "stopped_early": False, "epochs_completed": 1})
    writer.close()
    return read_info(writer.path)


def _table_key(runs, at: AppTest | None = None) -> str:
    """The runs table's key, as the page makes it (a new one each time the page changes the ticks
    itself, which `at`'s session counts)."""
    listed = list_runs(runs)
    counted = at is not None and "runs_table_generation" in at.session_state
    generation = at.session_state["runs_table_generation"] if counted else 0
    return f"runs_table_{listed[0].run_id}_{len(listed)}" + (f"_{generation}" if generation else "")


def _tick(at: AppTest, runs, rows: list[int]) -> None:
    """Tick rows of the runs table as a click would (the selection the browser sends)."""
    at.session_state[_table_key(runs, at)] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.exception


def _banner(at: AppTest) -> str:
    return " ".join(i.value for i in at.info if "Showing saved run" in i.value)


def _ticked_rows(at: AppTest, runs) -> list[int]:
    return sorted(at.session_state[_table_key(runs, at)]["selection"]["rows"])


def _opened(app_env) -> AppTest:
    at = new_page()
    at.session_state["view_tab"] = TAB
    return at.run()


def test_the_tables_ticks_are_the_one_selection_the_last_ticked_in_focus_all_compared(app_env):
    old, new = _saved_run(app_env, 1, 0.91), _saved_run(app_env, 2, 0.93)  # rows 1 and 0
    at = _opened(app_env)
    assert not at.multiselect  # no second way to tick runs
    _tick(at, app_env, [1])
    assert at.session_state["view_run"] == str(old.path) and f"**{old.run_id}**" in _banner(at).replace("\\", "")
    assert at.session_state["compare_runs"] == [old.run_id]
    _tick(at, app_env, [0, 1])  # a second run ticked: compared, and now the one shown
    assert at.session_state["compare_runs"] == [old.run_id, new.run_id]
    assert at.session_state["view_run"] == str(new.path)
    assert new.run_id in _banner(at).replace("\\", "") and "2 runs are ticked to compare" in _banner(at)
    [compared] = [t.value for t in at.dataframe if "training time" in t.value.columns]
    assert len(compared) == 2
    _tick(at, app_env, [1])  # the run in focus unticked: the one still ticked is shown
    assert at.session_state["view_run"] == str(old.path) and old.run_id in _banner(at).replace("\\", "")
    at.button(key="view_current").click().run()  # back to the current run: nothing ticked any more
    assert at.session_state["view_run"] is None and _banner(at) == ""
    assert at.session_state["compare_runs"] == [] and _ticked_rows(at, app_env) == []


def test_the_table_left_behind_by_back_to_the_current_run_cannot_pick_its_run_again(app_env):
    """Under load, the browser's table, told that nothing is ticked any more, sent back the row it
    had a moment later: the run the user had just left was shown again."""
    _saved_run(app_env, 1, 0.91), _saved_run(app_env, 2, 0.93)
    at = _opened(app_env)
    _tick(at, app_env, [1])
    left = _table_key(app_env, at)
    at.button(key="view_current").click().run()
    assert _table_key(app_env, at) != left  # the page draws a new table, with nothing ticked
    at.session_state[left] = {"selection": {"rows": [1], "columns": []}}  # the old one's late echo
    at.run()
    assert not at.exception
    assert at.session_state["view_run"] is None and _banner(at) == ""
    assert at.session_state["compare_runs"] == [] and _ticked_rows(at, app_env) == []


def test_a_run_deleted_since_it_was_ticked_is_not_counted_in_the_banner(app_env):
    import shutil

    old, new = _saved_run(app_env, 1, 0.91), _saved_run(app_env, 2, 0.93)
    at = _opened(app_env)
    _tick(at, app_env, [1])
    _tick(at, app_env, [0, 1])  # the new run ticked last: the one shown
    assert "2 runs are ticked to compare" in _banner(at)
    at.session_state["view_tab"] = "Mistakes"  # the runs table, which would drop it, not drawn
    shutil.rmtree(old.path)  # by another page, or by hand
    at.run()
    assert not at.exception
    assert new.run_id in _banner(at).replace("\\", "") and "ticked to compare" not in _banner(at)


def test_a_ticked_run_stays_ticked_when_a_new_run_shifts_the_rows(app_env):
    picked = _saved_run(app_env, 1, 0.91)
    at = _opened(app_env)
    _tick(at, app_env, [0])
    _saved_run(app_env, 2, 0.93)  # a new run, listed above it
    at.run()
    assert _ticked_rows(at, app_env) == [1]  # the tick moved with its run, under the table's new key
    assert at.session_state["view_run"] == str(picked.path) and picked.run_id in _banner(at).replace("\\", "")


def test_a_damaged_run_cannot_be_ticked_and_a_deleted_one_is_let_go(app_env):
    good = _saved_run(app_env, 1, 0.91)
    damaged = _saved_run(app_env, 2, 0.93)
    (damaged.path / "config.json").write_text("{")
    order = [run.run_id for run in list_runs(app_env)]
    at = _opened(app_env)
    _tick(at, app_env, [order.index(damaged.run_id)])
    assert [w.value for w in at.warning if "cannot be shown" in w.value]
    assert "view_run" not in at.session_state and _ticked_rows(at, app_env) == []
    _tick(at, app_env, [order.index(good.run_id)])
    assert at.session_state["view_run"] == str(good.path)
    shutil.rmtree(good.path)  # deleted behind the page's back
    at.run()
    assert at.session_state["view_run"] is None and _banner(at) == "" and not at.exception


def test_queueing_linear_vs_mlp_lets_go_of_the_picked_run_and_the_page_follows_the_sweep(app_env):
    old = _saved_run(app_env, 1, 0.91)
    at = _opened(app_env)
    at.text_input(key="hidden").input("16")
    at.number_input(key="epochs").set_value(1)
    at.run()
    _tick(at, app_env, [0])
    assert old.run_id in _banner(at).replace("\\", "")
    at.button(key="compare_linear_mlp").click().run()
    assert not at.exception
    assert at.session_state["view_run"] is None and _banner(at) == ""
    assert at.session_state["compare_follow_sweep"] and at.session_state["compare_runs"] == []
    # Its runs are ticked as they get a folder, and the page keeps following the job (no banner).
    rerun_until(at, lambda page: len(page.session_state["compare_runs"]) >= 1)
    assert _banner(at) == "" and at.session_state["view_run"] is None
    assert _ticked_rows(at, app_env) == [0]  # the table ticks the sweep's run
    at.button(key="sweep_cancel").click().run()
    rerun_until(at, lambda page: all(s in ("cancelled", "finished", "stopped") for s in sweep_states(page)))


def test_two_sweeps_of_one_name_are_told_apart_in_the_picker(app_env):
    from mlpdash.config import TrainConfig
    from mlpdash.sweep import QUEUE_FILE, RunQueue

    queue = RunQueue(app_env / QUEUE_FILE)
    first = queue.add([TrainConfig(hidden=(16,), seed=1)], "sample", "Linear vs MLP", ["seed"])
    second = queue.add([TrainConfig(hidden=(16,), seed=2)] * 2, "sample", "Linear vs MLP", ["seed"])
    queue.cancel([item.item for item in queue.items()])
    at = _opened(app_env)
    picker = at.selectbox(key="sweep_pick")
    assert picker.options == ["Linear vs MLP (2) · 2 runs", "Linear vs MLP · 1 run"]
    picker.select(first.sweep).run()
    assert at.selectbox(key="sweep_pick").value == first.sweep and sweep_states(at) == ["cancelled"]
    at.selectbox(key="sweep_pick").select(second.sweep).run()
    assert sweep_states(at) == ["cancelled", "cancelled"] and not at.exception


def test_sweeps_saved_with_one_name_before_names_were_unique_can_both_be_picked(app_env):
    import json

    from mlpdash.config import TrainConfig

    item = {"sweep_name": "sweep", "config": TrainConfig(hidden=(16,)).to_dict(), "data": "sample",
            "swept": ["seed"], "state": "cancelled", "run": None, "error": None}
    app_env.mkdir(parents=True)
    (app_env / "queue.json").write_text(json.dumps({"items": [
        {**item, "item": "a-0", "sweep": "a", "queued_at": 2.0}, {**item, "item": "b-0", "sweep": "b", "queued_at": 1.0}]}))
    at = _opened(app_env)
    assert at.selectbox(key="sweep_pick").options == ["sweep · 1 run", "sweep · 1 run (2)"]
    at.selectbox(key="sweep_pick").select("b").run()
    assert at.selectbox(key="sweep_pick").value == "b" and not at.exception


def test_a_picked_run_damaged_while_shown_is_let_go_with_one_message_and_a_fresh_table(app_env):
    """The panels that found it unreadable (the charts', the weights' fragments among them) let it go
    through one full rerun of the page: the table, drawn outside those fragments, is drawn afresh at
    once (a fragment's pick left the old table in the page, and the user's next tick went to it and
    was lost), and the page says why once, over the panels, not once a panel."""
    damaged = _saved_run(app_env, 1, 0.91)
    at = _opened(app_env)
    _tick(at, app_env, [0])
    assert at.session_state["view_run"] == str(damaged.path)
    ticked_table = _table_key(app_env, at)
    (damaged.path / "metrics.jsonl").write_text("{not json\n")
    at.run()
    assert not at.exception
    said = [e.value for e in at.error if "Cannot show that run" in e.value]
    assert len(said) == 1 and damaged.run_id in said[0].replace("\\", ""), said
    assert said[0].endswith("The page shows the current run again."), said
    assert at.session_state["view_run"] is None and _banner(at) == ""
    assert _table_key(app_env, at) != ticked_table and _ticked_rows(at, app_env) == []
    at.run()  # said once: the next run of the page is quiet
    assert not [e for e in at.error if "Cannot show that run" in e.value] and not at.exception


def test_a_picked_run_found_unreadable_in_a_fragments_run_reruns_the_whole_page(monkeypatch):
    """The charts' and the weights' fragments read the run on their timers: letting it go there must
    rerun the page, not the fragment, so that the runs table (outside it) is drawn afresh at once."""
    from pathlib import Path

    from mlpdash.runs import RunError
    from mlpdash.ui import choices, panels

    state = {"view_run": "/runs/r1", "compare_runs": ["r1"]}
    monkeypatch.setattr(choices.st, "session_state", state)  # panels' `st` is the same module
    asked = []

    def rerun(**scope):
        asked.append(scope)
        raise InterruptedError  # as Streamlit's rerun does, nothing after it runs

    monkeypatch.setattr(choices.st, "rerun", rerun)

    class Unreadable:
        picked = Path("/runs/r1")

        def run_view(self):
            raise RunError("/runs/r1/metrics.jsonl: line 1 is not a metrics row")

    with pytest.raises(InterruptedError):
        panels.current_view(Unreadable())
    assert asked == [{"scope": "app"}]
    assert state["view_run"] is None and state["compare_runs"] == []
    assert state["runs_table_generation"] == 1  # the table's new key, for the page's full run
    assert state["run_let_go"] == "/runs/r1/metrics.jsonl: line 1 is not a metrics row"
