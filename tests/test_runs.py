"""Run folders: atomic writes, the listing, reloading, and damaged folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.runs import (
    RunError,
    RunWriter,
    list_runs,
    load_run,
    read_info,
    write_bytes_atomic,
)

CONFIG = TrainConfig(hidden=(16,), epochs=2)
ROWS = [
    {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.5},
    {"epoch": 2, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.88, "seconds": 1.4},
]


def write_run(root, stopped=False):
    writer = RunWriter(root, CONFIG, "sample")
    writer.write_metrics(ROWS)
    kernels = [np.full((784, 16), i, np.float32) for i in range(3)]
    writer.write_weights(kernels, [0, 1, 2])
    writer.write_test_results(
        {"labels": np.array([1, 2], np.uint8), "predictions": np.array([1, 3], np.uint8),
         "confidences": np.array([0.9, 0.6], np.float32)},
        {"index": [1], "label": [2], "prediction": [3], "confidence": [0.6]},
    )
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": stopped, "epochs_completed": 2})
    return writer.path


def test_round_trip(tmp_path):
    path = write_run(tmp_path)
    run = load_run(path)
    assert run.info.status == "finished" and run.info.config == CONFIG
    assert run.info.data_source == "sample"
    assert run.metrics == ROWS
    assert run.kernels.shape == (3, 784, 16) and run.kernels.dtype == np.float32
    assert run.kernels[2, 0, 0] == 2.0 and list(run.kernel_epochs) == [0, 1, 2]
    assert run.mistakes["prediction"] == [3]
    lines = (path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_listing_is_newest_first_and_reports_every_state(tmp_path):
    finished = write_run(tmp_path)
    stopped = write_run(tmp_path, stopped=True)
    incomplete = RunWriter(tmp_path, CONFIG, "sample").path
    failed = RunWriter(tmp_path, CONFIG, "sample")
    failed.write_failure("RuntimeError: boom")
    corrupt = tmp_path / "20990101-000000-bad"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    empty = tmp_path / "20990101-000001-empty"
    empty.mkdir()
    runs = {r.path: r for r in list_runs(tmp_path)}
    assert runs[finished].status == "finished"
    assert runs[stopped].status == "stopped"
    assert runs[incomplete].status == "incomplete"
    assert runs[failed.path].status == "failed" and runs[failed.path].error == "RuntimeError: boom"
    assert runs[corrupt].status == "corrupt" and "not valid JSON" in runs[corrupt].error
    assert str(corrupt / "config.json") in runs[corrupt].error
    assert runs[empty].status == "corrupt" and "missing" in runs[empty].error
    names = [r.path.name for r in list_runs(tmp_path)]
    assert names == sorted(names, reverse=True)


def test_damaged_files_name_themselves(tmp_path):
    path = write_run(tmp_path)
    (path / "summary.json").write_text("[1, 2")
    assert read_info(path).status == "corrupt"
    with pytest.raises(RunError, match="summary.json"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(RunError, match="metrics.jsonl: line 1"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "weights.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(RunError, match="weights.npz"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "config.json").write_text(json.dumps({"config": {"epochs": 0}, "data_source": "x"}))
    info = read_info(path)
    assert info.status == "corrupt" and "epochs must be" in info.error


def test_a_run_without_a_model_says_so(tmp_path):
    path = write_run(tmp_path)
    with pytest.raises(RunError, match="no saved model"):
        load_run(path).load_model()


def test_missing_root_lists_nothing(tmp_path):
    assert list_runs(tmp_path / "nope") == []


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("mlpdash.runs.os.replace", broken_replace)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
