"""The Runs & comparison tab with Streamlit's AppTest: a sweep queued and trained on the sample,
runs compared, a linear classifier against the MLP, and a run named, noted, deleted and restored."""

from __future__ import annotations

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
