"""Fine-tuning on your drawings: a consistent quirk of handwriting is learned, MNIST is not forgotten
(with replay), and the result is a run like any other."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlpdash import finetune as ft
from mlpdash.cli import main
from mlpdash.config import TrainConfig
from mlpdash.drawings import DrawingsError, save
from mlpdash.finetune import FINETUNE_FILE, FinetuneSettings, finetune, read_report, split_held_out
from mlpdash.runs import RunError, list_runs, load_run_model, read_info, read_timeline
from mlpdash.training import TrainingJob

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
