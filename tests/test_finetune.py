"""Fine-tuning on your drawings: a consistent quirk of handwriting is learned, MNIST is not forgotten
(with replay), and the result is a run like any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlpdash.cli import main
from mlpdash.config import TrainConfig
from mlpdash.drawings import DrawingsError, save
from mlpdash.finetune import FINETUNE_FILE, FinetuneSettings, finetune, read_report, split_held_out
from mlpdash.runs import RunError, list_runs, load_run_model, read_info, read_timeline
from mlpdash.training import TrainingJob

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
    assert "at least 3 drawings" in capsys.readouterr().err
