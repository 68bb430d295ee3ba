"""Fine-tuning on your drawings: a consistent quirk of handwriting is learned, MNIST is not forgotten
(with replay), and the result is a run like any other."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from mlpdash import finetune as ft
from mlpdash.cli import main
from mlpdash.config import TrainConfig
from mlpdash.drawings import DrawingsError, save
from mlpdash.finetune import (
    FINETUNE_FILE,
    FinetunePlan,
    FinetuneSettings,
    check_finetune,
    finetune,
    finetune_config,
    finetune_job,
    read_report,
    report_of,
    split_held_out,
)
from mlpdash.progress import FINE_TUNING, Snapshot, Status
from mlpdash.runs import RunError, list_runs, load_run_model, read_info, read_timeline
from mlpdash.training import TrainingJob
from mlpdash.run_view import status_line

REPO = Path(__file__).resolve().parents[1]
# With replay, the MNIST test accuracy may fall by at most this much (measured: 1-3 points).
FORGETTING_BOUND = 0.04
SLANT_DEGREES = 40


def slanted(digit: np.ndarray) -> np.ndarray:
    """An MNIST digit as a hand that slants every digit 40 degrees would draw it on the canvas (the
    page's preparation centres and sizes a drawing, but never straightens it)."""
    turned = np.asarray(Image.fromarray(digit).rotate(-SLANT_DEGREES, resample=Image.BILINEAR))
    canvas = np.zeros((280, 280), np.uint8)
    canvas[28:252, 28:252] = np.kron(turned, np.ones((8, 8), np.uint8))
    return canvas


@pytest.fixture(scope="module")
def base_run(sample_data, tmp_path_factory) -> Path:
    # Its own run, not the session's shared one (conftest): what fine-tuning must gain and may forget
    # (FORGETTING_BOUND, +0.15 on the held-out drawings) was measured from this base, trained on the
    # whole sample.
    job = TrainingJob(TrainConfig(hidden=(64,), epochs=3), sample_data, tmp_path_factory.mktemp("runs"))
    job.start().join()
    assert job.snapshot().status.value == "finished", job.snapshot().error
    return Path(job.snapshot().run_dir)


@pytest.fixture(scope="module")
def slanted_drawings(sample_data, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("drawings")
    for i in range(1000, 1160):  # test digits the base model never trained on
        save(folder, slanted(sample_data.x_test[i]), int(sample_data.y_test[i]))
    return folder


def test_the_held_out_part_is_drawn_from_each_digit_and_never_empty():
    labels = np.array([0] * 8 + [1] * 4 + [2] * 2 + [3])
    train, held = split_held_out(labels, 0.25, seed=1)
    assert sorted([*train, *held]) == list(range(len(labels))) and not set(train) & set(held)
    assert [int(np.sum(labels[held] == d)) for d in range(4)] == [2, 1, 1, 0]  # the lone 3 is trained on
    assert np.array_equal(split_held_out(labels, 0.25, seed=1)[1], held)  # seeded
    _, held = split_held_out(np.array([4, 5, 6]), 0.25, seed=1)
    assert len(held) == 1  # every digit drawn once: one is held out all the same


def test_fine_tuning_learns_the_hand_and_with_replay_keeps_mnist(base_run, slanted_drawings, sample_data, tmp_path):
    settings = FinetuneSettings(epochs=5, replay=4, learning_rate=1e-3)
    report = finetune(base_run, slanted_drawings, sample_data, settings, tmp_path)
    assert report.drawings == 160 and report.held_out + report.trained_on == 160 and report.replayed == 4 * report.trained_on
    assert report.after.held_out >= report.before.held_out + 0.15, (report.before, report.after)
    assert report.after.drawings > report.before.drawings
    assert report.after.mnist_test >= report.before.mnist_test - FORGETTING_BOUND, (report.before, report.after)
    # Without replay the same training forgets more of MNIST.
    alone = finetune(base_run, slanted_drawings, sample_data,
                     FinetuneSettings(epochs=5, replay=0, learning_rate=1e-3), tmp_path)
    assert alone.replayed == 0 and alone.after.mnist_test < report.after.mnist_test
    # The new run is a run like any other: listed, tested, its model loaded, its epochs on a timeline.
    info = read_info(report.run_dir)
    assert info.status == "finished" and info.can_answer and info.summary["test_accuracy"] == pytest.approx(
        report.after.mnist_test)
    assert info.config.hidden == (64,) and info.config.epochs == 5 and info.name.endswith("fine-tuned on 160 drawings")
    assert [r.epoch for r in read_timeline(report.run_dir).records] == list(range(6))
    saved = read_report(report.run_dir)
    assert saved["base_run"] == base_run.name and saved["after"]["held_out"] == report.after.held_out
    model = load_run_model(report.run_dir)
    assert model.count_params() == TrainConfig(hidden=(64,)).parameters
    assert {r.path for r in list_runs(tmp_path)} == {report.run_dir, alone.run_dir}


def test_what_cannot_be_fine_tuned_is_refused_and_leaves_no_run(base_run, sample_data, tmp_path):
    few = tmp_path / "few"
    for i in range(2):
        save(few, slanted(sample_data.x_test[i]), int(sample_data.y_test[i]))
    save(few, np.zeros((280, 280), np.uint8), 5)  # blank: not counted
    with pytest.raises(DrawingsError, match="at least 3 drawings with ink"):
        finetune(base_run, few, sample_data, runs_dir=tmp_path / "runs")
    with pytest.raises(RunError, match="no model to fine-tune"):
        finetune(tmp_path, few, sample_data, runs_dir=tmp_path / "runs")
    for bad in (dict(epochs=0), dict(replay=-1), dict(learning_rate=1.0), dict(held_out=1.0)):
        with pytest.raises(ValueError):
            FinetuneSettings(**bad)
    assert list_runs(tmp_path / "runs") == []


def test_a_damaged_report_reads_as_none(base_run, tmp_path):
    (tmp_path / FINETUNE_FILE).write_text(json.dumps({"base_run": "x", "before": {"held_out": 2}}))
    assert read_report(tmp_path) is None and read_report(base_run) is None


def test_the_cli_fine_tunes_and_prints_the_report(base_run, slanted_drawings, tmp_path, capsys):
    assert main(["drawings", "finetune", "--model", str(base_run), "--folder", str(slanted_drawings),
                 "--epochs", "1", "--replay", "1", "--data", "sample", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["base_run"] == base_run.name and result["settings"]["replay"] == 1
    assert Path(result["run_dir"]).parent == tmp_path and 0 <= result["after"]["mnist_test"] <= 1
    assert main(["drawings", "finetune", "--model", str(base_run), "--folder", str(tmp_path / "none")]) == 2
    assert f"--folder {tmp_path / 'none'}: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["drawings", "finetune", "--model", str(base_run), "--folder", str(tmp_path / "empty")]) == 2
    assert "at least 3 drawings" in capsys.readouterr().err


# --- stopping, diverging, and what a saved report may hold ---------------------------------------


def start_finetune(base: Path, drawings: Path, out: Path, epochs: int = 20) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlpdash", "drawings", "finetune", "--model", str(base), "--folder", str(drawings),
         "--epochs", str(epochs), "--replay", "16", "--data", "sample", "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, pattern: str, out: Path, timeout: float = 240) -> None:
    """Wait until a file matching `pattern` appears under `out` (the run's progress, seen on disk)."""
    deadline = time.monotonic() + timeout
    while not any(out.glob(pattern)):
        if proc.poll() is not None:
            raise AssertionError(f"the fine-tune ended before {pattern}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"no {pattern} in {timeout} s"
        time.sleep(0.005)


def our_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("mlpdash:")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_after_an_epoch_saves_the_finetune_as_stopped(sig, base_run, slanted_drawings, tmp_path):
    out = tmp_path / "runs"
    proc = start_finetune(base_run, slanted_drawings, out)
    wait_for(proc, "*/metrics.jsonl", out)  # the first epoch has finished
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr  # as `train`: a run stopped and saved is a normal end
    [info] = list_runs(out)
    [line] = our_lines(stderr)
    epochs = info.summary["epochs_completed"]
    assert line == (f"mlpdash: fine-tuning stopped after {epochs} of 20 epochs; the run is saved as stopped: "
                    f"{info.path}")
    assert info.status == "stopped" and info.summary["outcome"] == "stopped" and 1 <= epochs < 20
    assert info.summary["stopped_early"] is True and 0 <= info.summary["test_accuracy"] <= 1
    assert f"run saved to {info.path}" in stdout
    assert (info.path / "model.weights.npz").is_file() and (info.path / "test_predictions.npz").is_file()
    assert (info.path / "model" / "saved_model.pb").is_file() and not (info.path / "training.lock").exists()
    report = read_report(info.path)
    assert report["stopped"] is True and report["epochs_completed"] == epochs
    assert report["after"]["mnist_test"] == pytest.approx(info.summary["test_accuracy"])
    assert len(read_timeline(info.path).records) == epochs + 1
    assert load_run_model(info.path).count_params() == TrainConfig(hidden=(64,)).parameters


def test_a_stop_signal_before_the_first_epoch_ends_leaves_no_run(base_run, slanted_drawings, tmp_path):
    out = tmp_path / "runs"
    proc = start_finetune(base_run, slanted_drawings, out)
    # The run has begun (its epoch 0 is recorded) and its first epoch is being traced and trained.
    wait_for(proc, "*/timeline/epoch-00000.npz", out)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert our_lines(stderr) == ["mlpdash: fine-tuning stopped before its first epoch had finished; "
                                 "no run was saved"]
    assert proc.returncode == 130 and stdout == ""
    assert list(out.iterdir()) == []  # no run folder, not even a hidden one


def test_a_stop_set_before_training_raises_and_saves_nothing(base_run, slanted_drawings, sample_data, tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(ft.FinetuneStopped, match="no run was saved"):
        finetune(base_run, slanted_drawings, sample_data, FinetuneSettings(epochs=1), tmp_path / "runs", stop=stop)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def base_with(base_run: Path, tmp_path: Path, change) -> Path:
    """A copy of `base_run` whose saved weights are `change(w)` for each array."""
    copy = tmp_path / "bases" / base_run.name
    shutil.copytree(base_run, copy)
    with np.load(copy / "model.weights.npz") as saved:
        arrays = {name: change(saved[name]) for name in saved.files}
    with open(copy / "model.weights.npz", "wb") as f:
        np.savez(f, **arrays)
    return copy


def test_a_finetune_that_diverges_is_refused_and_leaves_no_run(base_run, slanted_drawings, sample_data, tmp_path,
                                                             capsys):
    # Finite weights so large that the logits overflow: the first step's loss is NaN.
    huge = base_with(base_run, tmp_path, lambda w: w * np.float32(1e30) + np.float32(1e30))
    runs = tmp_path / "runs"
    with pytest.raises(ft.FinetuneDiverged, match="fine-tuning diverged: .*nothing was saved"):
        finetune(huge, slanted_drawings, sample_data, FinetuneSettings(epochs=2, replay=0), runs)
    assert list(runs.iterdir()) == []
    code = main(["drawings", "finetune", "--model", str(huge), "--folder", str(slanted_drawings), "--epochs", "1",
                 "--replay", "0", "--data", "sample", "--out", str(runs)])
    captured = capsys.readouterr()
    assert code == 3 and captured.out == ""
    [line] = captured.err.strip().splitlines()
    assert line.startswith("mlpdash: fine-tuning diverged: ") and "lower learning rate" in line
    assert list(runs.iterdir()) == []


def test_a_base_model_whose_weights_are_not_finite_is_refused(base_run, slanted_drawings, sample_data, tmp_path):
    def poisoned(w):
        w = w.copy()
        w.flat[0] = np.nan
        return w

    broken = base_with(base_run, tmp_path, poisoned)
    with pytest.raises(RunError, match="(?i)finite|NaN"):
        finetune(broken, slanted_drawings, sample_data, FinetuneSettings(epochs=1), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def valid_report() -> dict:
    return {"base_run": "20261124-101010-abcdef", "run_dir": "/runs/20261124-111111-fedcba",
            "settings": {"epochs": 5, "replay": 4, "learning_rate": 3e-4, "held_out": 0.25, "seed": 22},
            "before": {"held_out": 0.25, "drawings": 0.5, "mnist_test": 0.97},
            "after": {"held_out": 0.75, "drawings": 1.0, "mnist_test": 0.96},
            "drawings": 8, "trained_on": 6, "held_out": 2, "replayed": 256, "seconds": 3.5,
            "epochs_completed": 5, "stopped": False, "held_out_files": ["a.png", "b.png"]}


DAMAGE = {
    "no-run-dir": lambda r: r.pop("run_dir"),
    "run-dir-a-number": lambda r: r.update(run_dir=7),
    "base-run-5000-chars": lambda r: r.update(base_run="x" * 5000),
    "base-run-two-lines": lambda r: r.update(base_run="two\nlines"),
    "no-settings": lambda r: r.pop("settings"),
    "epochs-0": lambda r: r["settings"].update(epochs=0),
    "replay-text": lambda r: r["settings"].update(replay="4"),
    "learning-rate-true": lambda r: r["settings"].update(learning_rate=True),
    "no-seed": lambda r: r["settings"].pop("seed"),
    "mnist-test-1.5": lambda r: r["after"].update(mnist_test=1.5),
    "no-before-drawings": lambda r: r["before"].pop("drawings"),
    "no-trained-on": lambda r: r.pop("trained_on"),
    "trained-on-negative": lambda r: r.update(trained_on=-1),
    "held-out-true": lambda r: r.update(held_out=True),
    "counts-disagree": lambda r: r.update(drawings=9),  # trained on + held out make all the drawings
    "replayed-huge": lambda r: r.update(replayed=10**9),
    "seconds-text": lambda r: r.update(seconds="3.5"),
    "seconds-infinite": lambda r: r.update(seconds=float("inf")),
    "seconds-negative": lambda r: r.update(seconds=-1),
    "stopped-text": lambda r: r.update(stopped="no"),
    "epochs-completed-beyond": lambda r: r.update(epochs_completed=6),
    "held-out-files-text": lambda r: r.update(held_out_files="a.png"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_report_with_any_field_damaged_reads_as_none(damage, tmp_path):
    report = valid_report()
    DAMAGE[damage](report)
    (tmp_path / FINETUNE_FILE).write_text(json.dumps(report))
    assert read_report(tmp_path) is None
    (tmp_path / FINETUNE_FILE).write_text(json.dumps([valid_report()]))
    assert read_report(tmp_path) is None


def test_a_sound_report_reads_back_with_its_fields(tmp_path):
    (tmp_path / FINETUNE_FILE).write_text(json.dumps(valid_report()))
    assert read_report(tmp_path) == valid_report()
    older = valid_report()  # written before stopping existed
    for key in ("epochs_completed", "stopped", "held_out_files"):
        older.pop(key)
    (tmp_path / FINETUNE_FILE).write_text(json.dumps(older))
    assert read_report(tmp_path) == {**older, "epochs_completed": None, "stopped": False}


# --- a fine-tune is a training job ------------------------------------------------------------------

# Slow motion so slow that a batch of 32 would be held for hours: whatever moves on below was let go by
# a control (a faster pace, a pause, a stop), never by the clock.
HELD = 0.001
QUICK = FinetuneSettings(epochs=2, replay=1)
# The order a job's states come in (a snapshot may miss some, never reorder them).
ORDER = [Status.IDLE, Status.LOADING_DATA, Status.TRAINING, Status.PAUSED, Status.TRAINING, Status.EVALUATING,
         Status.FINISHED]


@pytest.fixture(scope="module")
def few_drawings(sample_data, tmp_path_factory) -> Path:
    """Twelve slanted drawings: enough to fine-tune on, few enough to be quick."""
    folder = tmp_path_factory.mktemp("few-drawings")
    for i in range(1000, 1012):
        save(folder, slanted(sample_data.x_test[i]), int(sample_data.y_test[i]))
    return folder


def wait_for_job(job: TrainingJob, predicate, timeout: float = 120.0) -> Snapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = job.snapshot()
        if predicate(snap):
            return snap
        if snap.status.ended:
            raise AssertionError(f"the job ended as {snap.status} ({snap.error}) before the condition held")
        time.sleep(0.01)
    raise AssertionError("timed out waiting for the job")


def in_order(seen: list[Status]) -> bool:
    """Whether `seen` (with repeats) follows ORDER, skipping what a snapshot missed."""
    rest = iter(ORDER)
    return all(any(status == expected for expected in rest) for status, _ in itertools.groupby(seen))


def test_the_checks_before_a_job_need_no_tensorflow_and_refuse_what_cannot_be_fine_tuned(base_run, sample_data,
                                                                                         tmp_path):
    few = tmp_path / "two"
    for i in range(2):
        save(few, slanted(sample_data.x_test[i]), int(sample_data.y_test[i]))
    with pytest.raises(DrawingsError, match="at least 3 drawings with ink.* has 2$"):
        check_finetune(base_run, few)
    with pytest.raises(RunError, match="no model to fine-tune"):
        check_finetune(tmp_path, few)
    save(few, np.zeros((280, 280), np.uint8), 5)  # three listed, two with ink: the job finds out
    assert check_finetune(base_run, few).path == base_run


def test_a_finetune_runs_as_a_training_job_in_the_background_and_pauses(base_run, few_drawings, tiny_data, tmp_path):
    runs = tmp_path / "runs"
    job = finetune_job(base_run, few_drawings, tiny_data, QUICK, runs)
    assert job.status == Status.IDLE and job.snapshot().task == FINE_TUNING  # not started: the caller starts it
    job.set_pace(HELD)
    seen = [job.snapshot().status, job.start().snapshot().status]
    snap = wait_for_job(job, lambda s: s.batches_done >= 1)  # held in slow motion after its first batch
    assert snap.task == FINE_TUNING and snap.config == finetune_config(read_info(base_run).config, QUICK)
    assert status_line(snap).startswith(f"Fine-tuning — epoch 1/2, batch 1/{snap.batches_per_epoch}")
    assert snap.run_dir is not None and snap.run_dir.parent == runs and snap.timeline.records[0].epoch == 0
    assert job.predict_drawing(slanted(tiny_data.x_test[0])).digit is not None  # the live model answers
    assert job.pause()
    seen.append(job.snapshot().status)
    job.set_pace(None)  # the hold ends: the pause holds the thread now
    snap = wait_for_job(job, lambda s: s.holding)
    assert status_line(snap) == f"Paused fine-tuning — epoch 1/2, batch 1/{snap.batches_per_epoch}"
    assert job.resume()
    while not job.join(0.01):
        seen.append(job.snapshot().status)
    seen.append(job.snapshot().status)
    assert in_order(seen) and Status.TRAINING in seen and Status.PAUSED in seen, seen
    snap = job.snapshot()
    assert snap.status == Status.FINISHED and status_line(snap).startswith("Finished fine-tuning — test accuracy")
    report = report_of(job)
    assert report is job.result and report.run_dir == snap.run_dir and not report.stopped
    assert report.epochs_completed == 2 and report.drawings == 12 and report.trained_on + report.held_out == 12
    # The run holds what a fine-tune's always held, and its summary reads as a training run's.
    info = read_info(report.run_dir)
    assert info.status == "finished" and info.can_answer and info.name.endswith("fine-tuned on 12 drawings")
    assert info.summary["test_accuracy"] == pytest.approx(report.after.mnist_test) == snap.report.accuracy
    assert info.summary["outcome"] == "finished" and info.summary["epochs_completed"] == 2
    assert not info.summary["stopped_early"] and info.summary["data_source"] == "sample"
    assert [r.epoch for r in read_timeline(report.run_dir).records] == [0, 1, 2]
    assert [row["epoch"] for row in snap.history] == [1, 2]
    assert read_report(report.run_dir)["after"] == dataclasses.asdict(report.after)
    assert len(read_report(report.run_dir)["held_out_files"]) == report.held_out
    for name in ("model.weights.npz", "test_predictions.npz", "model/saved_model.pb", "summary.json"):
        assert (report.run_dir / name).is_file(), name
    assert not (report.run_dir / "training.lock").exists()


def test_a_finetune_job_stopped_before_its_first_epoch_ends_leaves_no_run(base_run, few_drawings, tiny_data,
                                                                         tmp_path):
    runs = tmp_path / "runs"
    job = finetune_job(base_run, few_drawings, tiny_data, QUICK, runs)
    job.set_pace(HELD)
    job.start()
    assert wait_for_job(job, lambda s: s.batches_done >= 1).run_dir is not None  # the run had begun ...
    assert job.stop() and job.join(120)
    snap = job.snapshot()
    assert snap.status == Status.STOPPED and snap.run_dir is None and snap.report is None
    assert list(runs.iterdir()) == []  # ... and is gone, not even a hidden folder left
    assert status_line(snap) == "Fine-tuning stopped before its first epoch had finished — nothing was saved"
    assert job.exception is None and job.result is None
    with pytest.raises(ft.FinetuneStopped, match="no run was saved"):
        report_of(job)


class _StopAfterTheFirstEpoch(keras.callbacks.Callback):
    def __init__(self, job_ref):
        super().__init__()
        self.job_ref = job_ref

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.job_ref[0].stop()  # after the reporter has recorded the epoch: the next batch is the last


def test_a_finetune_job_stopped_after_an_epoch_is_saved_as_stopped(base_run, few_drawings, tiny_data, tmp_path):
    # The job finetune_job makes, with a callback: a fine-tune is a training job with a plan of its own.
    settings = FinetuneSettings(epochs=4, replay=1)
    info = check_finetune(base_run, few_drawings)
    ref = []
    job = TrainingJob(finetune_config(info.config, settings), tiny_data, tmp_path / "runs",
                      plan=FinetunePlan(info, few_drawings, settings), callbacks=[_StopAfterTheFirstEpoch(ref)])
    ref.append(job)
    assert job.start().join(120)
    snap = job.snapshot()
    assert snap.status == Status.STOPPED and snap.epochs_completed == 1
    # The stop takes effect after the next batch: the model tested is one batch into epoch 2.
    assert status_line(snap).startswith("Stopped fine-tuning in epoch 2 of 4, at batch 1/")
    assert "(1 epoch finished) — the model as it stopped: test accuracy" in status_line(snap)
    report = report_of(job)
    assert report.stopped and report.epochs_completed == 1 and report.run_dir == snap.run_dir
    [saved] = list_runs(tmp_path / "runs")
    assert saved.path == report.run_dir and saved.status == "stopped"
    assert saved.summary["outcome"] == "stopped" and saved.summary["stopped_early"] is True
    assert saved.summary["epochs_completed"] == 1
    assert read_report(saved.path)["stopped"] is True and read_report(saved.path)["epochs_completed"] == 1
    assert [r.epoch for r in read_timeline(saved.path).records] == [0, 1]
    assert "stopped after 1 of 4 epochs" in saved.note


@pytest.mark.parametrize(("snapshot", "expected"), [
    (dict(status=Status.LOADING_DATA), "Loading data for fine-tuning…"),
    (dict(status=Status.TRAINING, epoch=2, batch=3, batches_per_epoch=40),
     "Fine-tuning — epoch 2/5, batch 3/40"),
    (dict(status=Status.PAUSED, epoch=2, batch=3, batches_per_epoch=40, holding=True),
     "Paused fine-tuning — epoch 2/5, batch 3/40"),
    (dict(status=Status.STOPPING, epoch=2, batch=3, batches_per_epoch=40),
     "Stopping fine-tuning — finishing batch 3 of epoch 2"),
    (dict(status=Status.EVALUATING), "Fine-tuning done — evaluating on the test set and saving the run…"),
    (dict(status=Status.FAILED, error="x.png cannot be read"), "Fine-tuning failed: x.png cannot be read"),
    (dict(status=Status.STOPPED), "Fine-tuning stopped before its first epoch had finished — nothing was saved"),
])
def test_the_status_line_says_a_finetune_is_one(snapshot, expected):
    assert status_line(Snapshot(config=TrainConfig(epochs=5), task=FINE_TUNING, **snapshot)) == expected


def test_a_finetune_diverges_only_when_its_numbers_are_not_finite(base_run, few_drawings, tiny_data, tmp_path):
    # As before fine-tunes were jobs: a huge loss that is still a number is trained on, not refused.
    from mlpdash.recorder import DivergedError, Reporter

    job = finetune_job(base_run, few_drawings, tiny_data, QUICK, tmp_path)
    assert not job.plan.judges_divergence
    rows = [{"epoch": epoch, "loss": loss, "accuracy": 0.1, "val_loss": 2.31, "val_accuracy": 0.1, "seconds": 1.0}
            for epoch, loss in enumerate((1e6, 2.31, 2.31, 2.31), start=1)]  # far above a guess, then "stuck"
    with pytest.raises(DivergedError, match="far above"):  # what a training run would make of them
        Reporter(job, train_size=3200)._check_divergence(rows[0])
    with pytest.raises(DivergedError, match="stuck at chance"):
        strict = Reporter(job, train_size=3200)
        for row in rows[1:]:
            strict._check_divergence(row)
    reporter = Reporter(job, train_size=3200, judge_divergence=job.plan.judges_divergence)
    reporter.on_epoch_begin(0)
    reporter.on_train_batch_end(0, {"loss": 1e6})
    for row in rows:
        reporter._check_divergence(row)
    with pytest.raises(DivergedError, match="the loss reached nan"):
        reporter.on_train_batch_end(1, {"loss": float("nan")})
    diverged = job.plan.failure(DivergedError("the loss reached nan in epoch 1, batch 2"))
    assert isinstance(diverged, ft.FinetuneDiverged) and str(diverged) == (
        "fine-tuning diverged: the loss reached nan in epoch 1, batch 2; nothing was saved. "
        "Try a lower learning rate than 0.0003")
