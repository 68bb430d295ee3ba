"""Sweeps: the grid of settings, the queue (order, cancel, a page refresh, a server restart) and the
job manager training it one run at a time."""

from __future__ import annotations

import json
import time

import pytest

from mlpdash.config import TrainConfig
from mlpdash.server import Server
from mlpdash.progress import Status
from mlpdash.runs import list_runs
from mlpdash.sweep import MAX_RUNS, QUEUE_FILE, RunQueue, grid, parse_values, plan

QUICK = TrainConfig(hidden=(16,), epochs=1, batch_size=32, learning_rate=3e-3, train_digits=1000)
LONG = TrainConfig(hidden=(8,), epochs=200, batch_size=8)


def test_values_are_read_from_text_with_hidden_sizes_separated_by_colons():
    assert parse_values("learning_rate", "0.001, 0.01,0.001") == [0.001, 0.01]
    assert parse_values("hidden", "128:700,500:0") == [(128,), (700, 500), ()]
    assert parse_values("activation", "relu,tanh") == ["relu", "tanh"]
    with pytest.raises(ValueError, match="not a number"):
        parse_values("learning_rate", "0.1,fast")
    with pytest.raises(ValueError, match="empty value"):
        parse_values("dropout", "0.1,,0.2")
    with pytest.raises(ValueError, match="empty value"):
        parse_values("hidden", "128:")  # a slip, not a linear model
    with pytest.raises(ValueError, match="cannot be swept"):
        parse_values("beta_1", "0.9")


def test_the_grid_varies_the_first_setting_slowest_over_the_base_config():
    configs = grid(QUICK, {"learning_rate": [0.001, 0.01], "hidden": [(16,), ()]})
    assert [(c.learning_rate, c.hidden) for c in configs] == [
        (0.001, (16,)), (0.001, ()), (0.01, (16,)), (0.01, ())]
    assert all(c.epochs == QUICK.epochs and c.seed == QUICK.seed for c in configs)
    # A setting given one value is set, not varied, and does not count against the three.
    fixed = grid(QUICK, {"seed": [1], "epochs": [2], "dropout": [0.0, 0.1], "learning_rate": [1e-3, 1e-2],
                         "hidden": [(4,), (8,)]})
    assert len(fixed) == 8 and {(c.seed, c.epochs) for c in fixed} == {(1, 2)}


@pytest.mark.parametrize("axes, message", [
    ({}, "at least one setting"),
    ({"learning_rate": [1e-3, 1e-2], "dropout": [0.0, .1], "seed": [1, 2], "epochs": [1, 2]}, "at most 3 settings"),
    ({"seed": list(range(6)), "dropout": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]}, f"at most {MAX_RUNS}"),
    ({"dropout": [0.0, 1.5]}, "dropout 1.5"),
])
def test_a_sweep_that_cannot_run_is_refused_with_its_reason(axes, message):
    with pytest.raises(ValueError, match=message):
        grid(QUICK, axes)


def test_the_queue_keeps_order_and_cancels_waiting_runs(tmp_path):
    queue = RunQueue(tmp_path / QUEUE_FILE)
    first = queue.add(grid(QUICK, {"seed": [1, 2, 3]}), "sample", "seeds", ["seed"])
    second = queue.add(grid(QUICK, {"dropout": [0.0, 0.2]}), "sample", "dropout", ["dropout"])
    taken = queue.take_next()
    assert taken.item == first.items[0].item and taken.state == "running"
    assert queue.cancel([first.items[1].item]) == []
    assert [i.config.seed for i in [queue.take_next()]] == [3]  # the cancelled one is skipped
    assert queue.cancel([taken.item]) == [queue.items()[0]]  # a running one is for the caller to stop
    assert queue.take_next().item == second.items[0].item
    assert [s.name for s in queue.sweeps()] == ["dropout", "seeds"]
    assert first.items[0].label == "seed 1" and second.items[1].label == "dropout 0.2"


def test_two_sweeps_never_share_a_name(tmp_path):
    """Issue 21: two sweeps queued as "Linear vs MLP" could not be told apart in the picker."""
    queue = RunQueue(tmp_path / QUEUE_FILE)
    names = [queue.add([QUICK], "sample", "Linear vs MLP", ["seed"]).name for _ in range(3)]
    assert names == ["Linear vs MLP", "Linear vs MLP (2)", "Linear vs MLP (3)"]
    assert sorted(s.name for s in RunQueue(tmp_path / QUEUE_FILE).sweeps()) == sorted(names)  # as saved
    queue.cancel([item.item for item in queue.items()])
    queue.forget(next(s.sweep for s in queue.sweeps() if s.name == "Linear vs MLP"))
    assert queue.add([QUICK], "sample", "Linear vs MLP", ["seed"]).name == "Linear vs MLP"  # free again


def test_a_page_refresh_finds_the_queue_and_a_server_restart_says_what_ran(tmp_path):
    queue = RunQueue(tmp_path / QUEUE_FILE)
    sweep = queue.add(grid(QUICK, {"seed": [1, 2, 3]}), "sample", "seeds", ["seed"])
    queue.update(queue.take_next().item, state="finished", run="20260101-000000-aaaaaa")
    queue.update(queue.take_next().item, run="20260101-000001-bbbbbb")  # training when the server died
    again = RunQueue(tmp_path / QUEUE_FILE)
    assert [(i.state, i.run) for i in again.items()] == [
        ("finished", "20260101-000000-aaaaaa"), ("interrupted", "20260101-000001-bbbbbb"), ("not run", None)]
    assert again.take_next() is None  # nothing starts by itself after a restart
    assert again.resume(sweep.sweep) == 1 and again.take_next().config.seed == 3


def _saved_item(**changes) -> dict:
    queue = RunQueue()
    queue.add([QUICK], "sample", "one", ["seed"])
    return {**queue.items()[0].to_dict(), **changes}


@pytest.mark.parametrize("content", [
    "{", json.dumps({"items": [{"item": "x"}]}), json.dumps([1, 2]),
    json.dumps({"items": [_saved_item(run="../../etc")]}),
    json.dumps({"items": [_saved_item(swept=["beta_1"])]}),
    json.dumps({"items": [_saved_item(state="exploded")]}),
    json.dumps({"items": [_saved_item(config={"hidden": [8], "epochs": -1})]}),
])
def test_a_damaged_queue_file_starts_afresh_and_says_so(tmp_path, content):
    (tmp_path / QUEUE_FILE).write_text(content)
    queue = RunQueue(tmp_path / QUEUE_FILE)
    assert queue.items() == [] and "started afresh" in queue.problem


def _wait_for_queue(server: Server, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while server.sweeps.running():
        assert time.monotonic() < deadline, "the queue did not finish"
        time.sleep(0.1)


def test_the_manager_trains_a_sweep_one_run_at_a_time_in_order(tmp_path):
    server = Server.open(tmp_path)
    sweep = server.sweeps.enqueue(grid(QUICK, {"seed": [5, 6]}), "sample", "two seeds", ["seed"])
    _wait_for_queue(server)
    items = server.sweeps.queue.items()
    assert [i.state for i in items] == ["finished", "finished"]
    runs = {run.run_id: run for run in list_runs(tmp_path)}
    assert [runs[i.run].config.seed for i in items] == [5, 6]
    assert [runs[i.run].title for i in items] == ["seed 5", "seed 6"]  # named for what they vary
    assert runs[items[0].run].created <= runs[items[1].run].created
    assert all(runs[i.run].summary["test_accuracy"] > 0.3 for i in items)
    assert server.sweeps.queue.sweeps()[0].sweep == sweep.sweep


def test_cancelling_a_sweep_stops_its_run_and_skips_the_rest(tmp_path):
    server = Server.open(tmp_path)
    sweep = server.sweeps.enqueue([LONG, QUICK], "sample", "long then quick", ["epochs"])
    deadline = time.monotonic() + 60
    while not (server.jobs.job and server.jobs.job.snapshot().status == Status.TRAINING):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.sweeps.cancel([item.item for item in sweep.items])
    _wait_for_queue(server)
    assert [i.state for i in server.sweeps.queue.items()] == ["cancelled", "cancelled"]
    assert server.jobs.job.snapshot().status == Status.STOPPED and len(list_runs(tmp_path)) <= 1


def test_a_job_started_by_hand_is_waited_for(tmp_path):
    server = Server.open(tmp_path)
    by_hand = server.jobs.start(LONG, "sample")
    server.sweeps.enqueue([QUICK], "sample", "after it", ["seed"])
    time.sleep(1.0)
    assert server.jobs.job is by_hand and server.sweeps.queue.items()[0].state == "queued"
    by_hand.stop()
    _wait_for_queue(server)
    assert server.sweeps.queue.items()[0].state == "finished" and server.jobs.job is not by_hand


def test_a_worker_that_fails_leaves_no_run_running_and_the_next_sweep_trains(tmp_path, monkeypatch):
    server = Server.open(tmp_path)
    real = server.sweeps._follow

    def broken(item, handle):
        handle.wait()
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.sweeps, "_follow", broken)
    server.sweeps.enqueue([QUICK], "sample", "broken", ["seed"])
    _wait_for_queue(server)
    assert [(i.state, "a bug" in (i.error or "")) for i in server.sweeps.queue.items()] == [("failed", True)]
    monkeypatch.setattr(server.sweeps, "_follow", real)
    server.sweeps.enqueue([QUICK], "sample", "after it", ["seed"])
    _wait_for_queue(server)
    assert server.sweeps.queue.items()[-1].state == "finished"


def test_the_model_to_fine_tune_is_never_a_failed_job(tmp_path):
    good = Server.open(tmp_path)
    job = good.jobs.start(QUICK, "sample")
    job.join(60)
    failed = good.jobs.start(QUICK, "idx:/no/such/folder")
    failed.join(60)
    assert failed.snapshot().status == Status.FAILED
    assert good.focus().info().path == job.snapshot().run_dir  # the newest saved model, as the views use


def test_a_queued_run_is_recorded_the_moment_its_folder_exists(tmp_path, monkeypatch):
    # What a server killed at that moment would read back: the run, not "interrupted" with none.
    from mlpdash import training

    read_back = []
    fit = training.TrainingJob._fit

    def first_batch_not_yet_trained(job, model, data):
        read_back.extend((i.state, i.run) for i in RunQueue(tmp_path / QUEUE_FILE).items())
        return fit(job, model, data)

    monkeypatch.setattr(training.TrainingJob, "_fit", first_batch_not_yet_trained)
    server = Server.open(tmp_path)
    server.sweeps.enqueue([QUICK], "sample", "one", ["seed"])
    _wait_for_queue(server)
    [item] = server.sweeps.queue.items()
    assert item.state == "finished" and read_back == [("interrupted", item.run)]


def test_a_run_whose_server_died_before_its_folder_was_made_is_not_run_and_resumable(tmp_path):
    queue = RunQueue(tmp_path / QUEUE_FILE)
    sweep = queue.add([QUICK, QUICK], "sample", "two", ["seed"])
    queue.take_next()  # training, no folder yet, when the server died
    again = RunQueue(tmp_path / QUEUE_FILE)
    assert [(i.state, i.run) for i in again.items()] == [("not run", None), ("not run", None)]
    assert again.sweeps()[0].resumable == 2 and again.resume(sweep.sweep) == 2


def test_an_empty_run_left_by_a_server_killed_before_its_first_epoch_is_trashed_and_resumable(tmp_path):
    import os

    from mlpdash.runs import RunWriter, trashed_runs

    queue = RunQueue(tmp_path / QUEUE_FILE)
    sweep = queue.add([QUICK], "sample", "one", ["seed"])
    item = queue.take_next()
    orphan = RunWriter(tmp_path, QUICK, "sample")  # made, then the process died: its lock is free
    os.close(orphan._lock_fd)
    queue.update(item.item, run=orphan.path.name)
    server = Server.open(tmp_path)  # the restarted server
    assert [(i.state, i.run) for i in server.sweeps.queue.items()] == [("not run", None)]
    assert list_runs(tmp_path) == [] and [t.run_id for t in trashed_runs(tmp_path)] == [orphan.path.name]
    assert server.sweeps.queue.sweeps()[0].resumable == 1
    assert server.sweeps.resume_sweep(sweep.sweep) == 1
    _wait_for_queue(server)
    assert server.sweeps.queue.items()[0].state == "finished"


# --- what the page shows, computed headless
# One parser for the page's sweep form and `python -m mlpdash sweep`: text in, configs and the settings
# varied out.


def test_a_sweep_is_planned_from_text_as_the_form_and_the_command_give_it():
    planned = plan(QUICK, [("learning_rate", " 0.001, 0.01 "), ("hidden", "16:0"), ("seed", "4")])
    assert [(c.learning_rate, c.hidden, c.seed) for c in planned.configs] == [
        (0.001, (16,), 4), (0.001, (), 4), (0.01, (16,), 4), (0.01, (), 4)]
    assert planned.configs == grid(QUICK, {"learning_rate": [0.001, 0.01], "hidden": [(16,), ()], "seed": [4]})
    assert planned.swept == ["learning_rate", "hidden"]  # the seed is set, not varied
    assert planned.title == "Sweep of learning rate, hidden"
    one_value = plan(QUICK, [("seed", "4")])
    assert one_value.swept == ["seed"] and len(one_value.configs) == 1  # nothing varied: the setting given


@pytest.mark.parametrize(("given", "message"), [
    ([("dropout", "0.1, lots")], "'lots' is not a number"),
    ([("dropout", "  ")], "give values for dropout"),
    ([("dropout", "0.1"), ("dropout", "0.2")], "dropout is chosen twice"),
    ([], "at least one setting"),
    ([("dropout", "0.0, 1.5")], "dropout 1.5"),
])
def test_a_sweep_that_cannot_be_read_or_run_is_refused_with_its_reason(given, message):
    with pytest.raises(ValueError, match=message):
        plan(QUICK, given)


def test_the_page_names_a_setting_as_its_form_does():
    with pytest.raises(ValueError, match="give values for learning rate"):
        plan(QUICK, [("learning_rate", "")], {"learning_rate": "learning rate"})
    with pytest.raises(ValueError, match="training digits is chosen twice"):
        plan(QUICK, [("train_digits", "0"), ("train_digits", "100")], {"train_digits": "training digits"})

