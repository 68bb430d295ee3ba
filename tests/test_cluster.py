"""Sweeps on a Dask cluster: a real LocalCluster (2 worker processes of 1 thread) training queued runs
with our engine, their folders brought home through the validating reader; cancel, a worker killed
mid-run, an address that does not answer, and a run folder tampered on the way."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from dask_cluster import local_cluster
from hostile import bad_crc, bomb, many_members, zip_of

from mlpdash.bench import free_port
from mlpdash.cluster import ClusterError, DaskExecutor, _DaskHandle, connect, pack_run, receive_run
from mlpdash.config import TrainConfig
from mlpdash.jobs import JobManager
from mlpdash.queue import InProcessExecutor, SweepQueue
from mlpdash.runs import RunError, RunWriter, list_runs, read_metrics

SMALL = TrainConfig(hidden=(16,), epochs=2, batch_size=32, train_digits=1000)
LONG = TrainConfig(hidden=(16,), epochs=300, batch_size=8, train_digits=1000)
MEDIUM = TrainConfig(hidden=(16,), epochs=12, batch_size=8, train_digits=1000)
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes of one thread each, as the issue's cluster tests ask."""
    with local_cluster(2) as local:
        yield local


@pytest.fixture
def executor_of():
    """executor_of(address, runs_dir): a DaskExecutor, closed after the test (its watch thread and
    client would otherwise go on for the rest of the session)."""
    made: list[DaskExecutor] = []

    def make(address: str, runs_dir: Path) -> DaskExecutor:
        made.append(DaskExecutor(address, runs_dir))
        return made[-1]

    yield make
    for executor in made:
        executor.close()


def _sweep(queue: SweepQueue, configs: list[TrainConfig], data: str = "sample", seconds: float = 300) -> list:
    sweep = queue.enqueue(configs, data, "sweep", ["learning_rate"])
    _wait(queue, seconds)
    return [item for item in queue.queue.items() if item.sweep == sweep.sweep]


def _wait(queue: SweepQueue, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while queue.running():
        assert time.monotonic() < deadline, "the sweep did not end"
        time.sleep(0.2)


def test_a_sweep_on_the_cluster_reaches_the_same_epochs_as_in_process(cluster, tmp_path, executor_of):
    configs = [TrainConfig(hidden=(16,), epochs=2, batch_size=32, train_digits=1000, learning_rate=lr, seed=seed)
               for lr in (1e-3, 1e-2) for seed in (1, 2)]
    executor = executor_of(cluster.scheduler_address, tmp_path / "cluster")
    assert executor.describe().endswith("2 workers, 2 threads")
    on_cluster = _sweep(SweepQueue(tmp_path / "cluster", executor, keep_queue=False), configs)
    here = _sweep(SweepQueue(tmp_path / "here", InProcessExecutor(JobManager(tmp_path / "here")),
                             keep_queue=False), configs)

    assert [item.state for item in on_cluster] == ["finished"] * 4, [item.error for item in on_cluster]
    for remote, local in zip(on_cluster, here):
        far = read_metrics(tmp_path / "cluster" / remote.run / "metrics.jsonl")
        near = read_metrics(tmp_path / "here" / local.run / "metrics.jsonl")
        assert [row["epoch"] for row in far] == [1, 2]
        for a, b in zip(far, near):
            assert a.keys() == b.keys()
            for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
                assert a[key] == pytest.approx(b[key], abs=1e-4), key
    # Listed like any other run, with the worker that trained it in its record.
    runs = {info.path.name: info for info in list_runs(tmp_path / "cluster")}
    assert {item.run for item in on_cluster} == set(runs)
    assert all(info.status == "finished" and info.summary["test_accuracy"] > 0.3 for info in runs.values())
    workers = {info.note.rpartition("Dask worker ")[2].rstrip(".") for info in runs.values()}
    assert workers <= set(executor.client.scheduler_info(n_workers=-1)["workers"]) and workers

    def kept(dask_scheduler) -> list[str]:
        return [*dask_scheduler.extensions["events"]._events, *dask_scheduler.extensions["queues"].queues]

    # Each run's queue and events are let go on the scheduler once its folder is home (a message the
    # scheduler reads in its own time).
    deadline = time.monotonic() + 10
    while [name for name in executor.client.run_on_scheduler(kept) if str(name).startswith("mlpdash-")]:
        assert time.monotonic() < deadline, executor.client.run_on_scheduler(kept)
        time.sleep(0.2)


def test_an_idx_folder_missing_on_the_worker_fails_that_run_saying_where(cluster, tmp_path, executor_of):
    executor = executor_of(cluster.scheduler_address, tmp_path)
    (item,) = _sweep(SweepQueue(tmp_path, executor, keep_queue=False), [SMALL], "idx:/no/such/mnist")
    assert item.state == "failed" and item.error.startswith("on the Dask worker tcp://")
    assert "/no/such/mnist" in item.error
    (info,) = list_runs(tmp_path)  # its home folder says so too
    assert info.status == "failed" and info.error == item.error


def test_the_command_line_sweeps_on_the_cluster_it_is_given(cluster, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MLPDASH_CLUSTER", None)
    done = subprocess.run([sys.executable, "-m", "mlpdash", "sweep", "--lr", "0.003,0.03", "--hidden", "16",
                           "--epochs", "1", "--train-digits", "1000", "--data", "sample", "--out", str(tmp_path),
                           "--cluster", cluster.scheduler_address],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"sweep: 2 runs of learning_rate, on the Dask cluster at {cluster.scheduler_address}: 2 workers" \
        in done.stdout
    runs = list_runs(tmp_path)
    assert sorted(run.config.learning_rate for run in runs) == [0.003, 0.03]
    assert all(run.status == "finished" and "Dask worker" in run.note for run in runs)


def test_each_epoch_reaches_home_while_the_run_trains_and_cancel_stops_it(cluster, tmp_path, executor_of):
    executor = executor_of(cluster.scheduler_address, tmp_path)
    queue = SweepQueue(tmp_path, executor, keep_queue=False)
    sweep = queue.enqueue([LONG], "sample", "long", ["learning_rate"])
    deadline = time.monotonic() + 120
    while not any(len(handle.history) >= 2 for handle in executor.running()):
        assert time.monotonic() < deadline and queue.running(), "no epoch came home"
        time.sleep(0.2)
    # Listed at home as training, with the epochs so far: the page draws its curve live.
    (live,) = list_runs(tmp_path)
    assert live.status == "training" and live.path.name == queue.queue.items()[0].run
    assert len(read_metrics(live.path / "metrics.jsonl")) >= 2
    cancelled = time.monotonic()
    queue.cancel([item.item for item in sweep.items])
    _wait(queue, 60)
    waited = time.monotonic() - cancelled
    (item,) = queue.queue.items()
    assert item.state == "cancelled" and item.run, (item.state, item.error)
    (info,) = list_runs(tmp_path)
    assert info.status == "stopped" and 2 <= info.epochs_completed < LONG.epochs
    print(f"cancel to the stopped run home: {waited:.1f} s")


def _training_threads() -> list[str]:
    import threading

    return [thread.name for thread in threading.enumerate() if thread.name == "mlpdash-training"]


def test_a_run_whose_client_lets_go_of_it_stops_on_its_worker(cluster):
    # As when the page's server restarts, or loses the scheduler for a moment: nobody would take the
    # result, and the worker must not go on training for nobody.
    from distributed import Client, Event

    from mlpdash.cluster import train_on_worker

    client = Client(cluster.scheduler_address, set_as_default=False)
    try:
        key = f"mlpdash-let-go-{time.monotonic_ns()}"
        future = client.submit(train_on_worker, LONG.to_dict(), "sample", key, key=key, pure=False)
        assert Event(f"{key}-began", client=client).wait(120)
        deadline = time.monotonic() + 60
        while not any(client.run(_training_threads).values()):
            assert time.monotonic() < deadline, "the run did not start training"
            time.sleep(0.2)
        future.cancel()
        deadline = time.monotonic() + 60
        while any(client.run(_training_threads).values()):
            assert time.monotonic() < deadline, "the run trained on with nobody to take its result"
            time.sleep(0.5)
    finally:
        client.close()


def test_a_worker_killed_mid_run_fails_that_run_alone_and_it_is_not_trained_again(tmp_path, executor_of):
    # A cluster of its own: the other tests' keeps its two workers.
    with local_cluster(2, bare_main=True) as cluster:
        _kill_a_worker_mid_run(cluster.scheduler_address, tmp_path, executor_of)


def _kill_a_worker_mid_run(address: str, tmp_path: Path, executor_of) -> None:
    executor = executor_of(address, tmp_path)
    queue = SweepQueue(tmp_path, executor, keep_queue=False)
    queue.enqueue([LONG, SMALL], "sample", "killed", ["learning_rate"])
    deadline = time.monotonic() + 120
    long_run = None
    while long_run is None or not long_run.history:
        assert time.monotonic() < deadline, "the long run did not begin"
        long_run = next((h for h in executor.running() if h.item.config == LONG), None)
        time.sleep(0.2)
    worker = next(address for address, keys in executor.client.processing().items() if long_run.key in keys)
    pid = executor.client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)  # its nanny starts a new worker; the scheduler hands the task on
    _wait(queue, 180)
    killed, other = queue.queue.items()
    assert killed.state == "failed" and "lost mid-run" in killed.error and "not trained again" in killed.error
    assert other.state == "finished" and other.run
    runs = {info.path.name: info for info in list_runs(tmp_path)}
    assert set(runs) == {killed.run, other.run}
    assert runs[killed.run].status == "failed" and "lost mid-run" in runs[killed.run].error
    assert runs[killed.run].epochs_completed >= 1  # the epochs that came home before it was lost


def test_a_cluster_lost_mid_sweep_leaves_its_runs_to_resume_here(tmp_path, executor_of):
    executor_dir = tmp_path / "runs"
    with local_cluster(1) as lost:
        executor = executor_of(lost.scheduler_address, executor_dir)
        queue = SweepQueue(executor_dir, executor, keep_queue=False)
        sweep = queue.enqueue([MEDIUM, SMALL], "sample", "lost", ["epochs"])
        deadline = time.monotonic() + 120
        while not any(handle.history for handle in executor.running()):
            assert time.monotonic() < deadline, "the first run did not begin"
            time.sleep(0.2)
    _wait(queue, 90)  # the scheduler is gone: the queue lets go, it does not wait on it
    items = queue.queue.items()
    assert [item.state for item in items] == ["not run", "not run"], [item.error for item in items]
    assert "was lost before this run ended" in items[0].error
    # The second had not started, or was handed over as the scheduler went: either way, said.
    assert lost.scheduler_address in items[1].error
    assert not list_runs(executor_dir)  # the lost run's half folder is not kept: it trains again in full

    queue.executor = InProcessExecutor(JobManager(executor_dir))
    assert queue.resume_sweep(sweep.sweep) == 2
    _wait(queue, 300)
    assert [item.state for item in queue.queue.items()] == ["finished", "finished"]


def test_an_address_that_does_not_answer_is_one_line_and_queues_nothing(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ClusterError) as caught:
        connect(address, timeout=1)
    assert address in str(caught.value) and "\n" not in str(caught.value)

    env = dict(os.environ, MLPDASH_CLUSTER=address, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "mlpdash", "sweep", "--lr", "0.001,0.01", "--epochs", "1",
                           "--data", "sample", "--out", str(tmp_path / "runs")],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if address in line]
    assert done.returncode == 2 and len(errors) == 1 and "cannot reach the Dask scheduler" in errors[0]
    assert not list_runs(tmp_path / "runs")


@pytest.fixture(scope="module")
def sound_archive(trained_run) -> dict[str, bytes]:
    """The members of a real run folder, as a worker packs them."""
    with zipfile.ZipFile(io.BytesIO(pack_run(trained_run.run_dir))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _home_folder(tmp_path: Path, trained_run) -> RunWriter:
    """A run's home folder as the executor makes it when it hands the run to the cluster."""
    return RunWriter(tmp_path, trained_run.config, "sample")


def test_a_sound_run_folder_comes_home_and_reads_as_it_ended(sound_archive, trained_run, tmp_path):
    home = _home_folder(tmp_path, trained_run)
    info = receive_run(zip_of(sound_archive), home.path, "a test", trained_run.config)
    home.close()
    assert info.status == "finished" and info.has_model and read_metrics(info.path / "metrics.jsonl")
    assert [i.path for i in list_runs(tmp_path)] == [home.path]
    assert "model.keras" not in sound_archive  # only what mlpdash reads travels


@pytest.mark.parametrize("tamper, problem", [
    (lambda m: {**m, "../outside.json": b"{}"}, "not a file of a run folder"),
    (lambda m: {**m, "notes.json": b"{}"}, "not a file of a run folder"),
    (lambda m: {k: v for k, v in m.items() if k != "config.json"}, "no config.json"),
    (lambda m: {**m, "summary.json": b'{"test_accuracy": 7}'}, "test_accuracy"),
    (lambda m: {**m, "model.weights.npz": b"not an npz"}, "model.weights.npz"),
    (lambda m: {k: v for k, v in m.items() if k != "summary.json"}, "had not ended"),
    (lambda m: {**m, "config.json": m["config.json"].replace(b'"seed": ', b'"seed": 1')}, "other settings"),
])
def test_a_run_folder_tampered_on_the_way_is_refused_and_nothing_else_is_lost(cluster, sound_archive, trained_run,
                                                                              tmp_path, executor_of, tamper, problem):
    other = _home_folder(tmp_path, trained_run)
    receive_run(zip_of(sound_archive), other.path, "a test")
    other.close()
    executor = executor_of(cluster.scheduler_address, tmp_path)
    item = SimpleNamespace(config=trained_run.config)
    result = {"state": "finished", "worker": "tcp://10.0.0.9:40000", "error": None,
              "archive": zip_of(tamper(dict(sound_archive)))}
    ended = SimpleNamespace(done=lambda: True, result=lambda: result)
    handle = _DaskHandle(executor, item, "mlpdash-tampered", ended, _home_folder(tmp_path, trained_run))
    outcome = handle.wait()
    assert outcome.state == "failed" and outcome.run == handle.path.name
    assert outcome.error.startswith("refused: the run folder from the Dask worker tcp://10.0.0.9:40000")
    assert problem in outcome.error and str(tmp_path) not in outcome.error
    runs = {info.path.name: info for info in list_runs(tmp_path)}
    assert set(runs) == {other.path.name, handle.path.name}  # no half folder beside them
    assert runs[other.path.name].status == "finished"
    assert runs[handle.path.name].status == "failed" and runs[handle.path.name].error == outcome.error
    assert not runs[handle.path.name].has_model  # nothing of the refused folder was taken


@pytest.mark.parametrize("hostile, problem", [
    (lambda: bomb("timeline/epoch-00001.npz", unpacked=8 << 20), "compressed with method"),
    # Declares 2,000 bytes and holds 8 MB: zipfile reads what it declares, and the CRC then fails.
    (lambda: bomb("timeline/epoch-00001.npz", unpacked=8 << 20, method=zipfile.ZIP_DEFLATED), "Bad CRC"),
    # Declares what it holds, beyond the (here 1 MB) cap: refused before it is read.
    (lambda: zip_of({"timeline/epoch-00001.npz": bytes(2 << 20)}), "declares 2,097,152 bytes, more than"),
    # A name that only looks like a run folder's file (a newline after it; Arabic-Indic digits).
    (lambda: zip_of({"config.json\n": b"{}"}), "not a file of a run folder"),
    (lambda: zip_of({"timeline/epoch-\u0660\u0660\u0660\u0660\u0661.npz": b""}), "not a file of a run folder"),
    (lambda: bad_crc(zip_of({"config.json": b"{}", "metrics.jsonl": b""})), "damaged archive"),
    (lambda: many_members(5000), "members, more than"),
])
def test_a_hostile_archive_from_a_worker_is_refused_before_it_is_unpacked(trained_run, tmp_path, monkeypatch,
                                                                          hostile, problem):
    from mlpdash import cluster

    monkeypatch.setattr(cluster, "MAX_MEMBER_BYTES", 1 << 20)
    home = _home_folder(tmp_path, trained_run)
    with pytest.raises(RunError, match=problem):
        receive_run(hostile(), home.path, "a test")
    assert sorted(p.name for p in home.path.iterdir()) == ["config.json", "snapshots", "timeline", "training.lock"]
    home.close()


def test_an_archive_past_its_caps_is_refused_before_it_is_unpacked(trained_run, tmp_path, monkeypatch):
    from mlpdash import cluster

    home = _home_folder(tmp_path, trained_run)
    monkeypatch.setattr(cluster, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(cluster.RunError, match="more than the 1,000 allowed"):
        receive_run(zip_of({"config.json": b" " * 5000}), home.path, "a test")
    assert sorted(p.name for p in home.path.iterdir()) == ["config.json", "snapshots", "timeline", "training.lock"]
    home.close()


# --- the page -------------------------------------------------------------------------------------


def _sweep_page(monkeypatch, address: str):
    from apptest import new_page

    monkeypatch.setenv("MLPDASH_CLUSTER", address)
    page = new_page()
    page.run()
    page.text_input(key="hidden").input("16")
    page.number_input(key="epochs").set_value(2)
    page.session_state["view_tab"] = "Runs & comparison"
    page.run()
    page.selectbox(key="sweep_setting_0").set_value("learning rate").run()
    page.text_input(key="sweep_values_0").input("0.003, 0.03").run()
    return page


def _shown(markdown: str) -> str:
    """Markdown as the page shows it: `plain` escapes colons (":x:" would be an emoji) with a backslash
    and a word joiner."""
    return markdown.replace("\\", "").replace("\u2060", "")


def _captions(page) -> str:
    return _shown("\n".join(c.value for c in page.caption))


def _rerun_until(page, done, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not done(page):
        assert time.monotonic() < deadline, "the page never got there:\n" + _captions(page)
        time.sleep(0.5)
        page.run()
    assert not page.exception


def test_the_page_says_where_a_sweep_trains_and_trains_it_on_the_cluster(cluster, app_env, monkeypatch):
    page = _sweep_page(monkeypatch, cluster.scheduler_address)
    _rerun_until(page, lambda p: f"on the Dask cluster at {cluster.scheduler_address}: 2 workers, 2 threads"
                 in _captions(p))
    page.button(key="sweep_queue_button").click().run()
    assert not page.error
    _rerun_until(page, lambda p: "**2** finished" in "\n".join(m.value for m in p.markdown))
    runs = list_runs(app_env)
    assert sorted(run.config.learning_rate for run in runs) == [0.003, 0.03]
    assert all(run.status == "finished" and "Trained on the Dask worker tcp://" in run.note for run in runs)
    # Both ticked as they began (together: in either order), so the comparison draws both.
    assert sorted(page.session_state["compare_runs"]) == sorted(r.run_id for r in runs)


def test_a_cluster_that_does_not_answer_is_said_and_nothing_is_queued(app_env, monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    page = _sweep_page(monkeypatch, address)
    _rerun_until(page, lambda p: f"the Dask cluster at {address} (not answering now)" in _captions(p), 60)
    page.button(key="sweep_queue_button").click().run()
    assert [e.value for e in page.error if f"Not queued: cannot reach the Dask scheduler at {address}" in _shown(e.value)]
    assert not page.exception and not (app_env / "queue.json").exists()
