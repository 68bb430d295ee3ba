"""Ctrl-C, SIGTERM and SIGKILL sent to the real CLI at a chosen moment (after an epoch line, not a sleep),
then the run folder read back: a stopped run is saved whole; a killed one loses at most the epoch in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mlpdash.jobs import JobManager
from mlpdash.runs import list_runs, load_run, load_run_model

REPO = Path(__file__).resolve().parents[1]
# Many short epochs on the bundled sample: a signal lands while training, never after the end.
ARGS = ["train", "--data", "sample", "--hidden", "32", "--epochs", "200", "--batch-size", "64"]
SAVE_DEADLINE_S = 30


def start_training(out: Path, extra: list[str] = ()) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "mlpdash", *ARGS, *extra, "--out", str(out)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_epochs(proc: subprocess.Popen, epochs: int, timeout: float = 240) -> list[str]:
    """Read the CLI's output until `epochs` epoch lines (Keras prints val_accuracy once per epoch)."""
    lines, seen = [], 0
    deadline = time.monotonic() + timeout
    while seen < epochs:
        assert time.monotonic() < deadline, f"no {epochs} epochs in {timeout} s: {lines}"
        line = proc.stdout.readline()
        assert line, f"the CLI ended early ({proc.wait()}): {lines}\n{proc.stderr.read()}"
        lines.append(line)
        seen += "val_accuracy" in line
    return lines


def finish(proc: subprocess.Popen) -> tuple[int, str, str, float]:
    began = time.monotonic()
    out, err = proc.communicate(timeout=SAVE_DEADLINE_S + 30)
    return proc.returncode, out, err, time.monotonic() - began


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_saves_the_partial_run_and_exits_cleanly(tmp_path, sig):
    proc = start_training(tmp_path)
    wait_for_epochs(proc, 2)
    proc.send_signal(sig)
    code, out, err, seconds = finish(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert seconds < SAVE_DEADLINE_S
    [info] = list_runs(tmp_path)
    assert info.status == "stopped", info.error
    assert 2 <= info.summary["epochs_completed"] < 200 and info.summary["outcome"] == "stopped"
    assert f"run saved to {info.path}" in out and "test accuracy 0." in out
    assert (info.path / "model" / "saved_model.pb").is_file() and (info.path / "model.weights.npz").is_file()
    assert not (info.path / "training.lock").exists()
    assert not [p for p in info.path.rglob(".*.tmp*")]


def test_a_killed_run_loses_at_most_the_epoch_in_flight_and_can_be_evaluated(tmp_path, sample_data):
    proc = start_training(tmp_path)
    wait_for_epochs(proc, 3)
    proc.kill()
    proc.wait(30)
    [info] = list_runs(tmp_path)
    assert info.status == "interrupted" and info.epochs_completed >= 3
    assert info.label.startswith("interrupted after ")
    assert info.can_answer and not info.summary
    run = load_run(info.path)
    assert len(run.metrics) == info.epochs_completed
    # Every finished epoch's snapshot (a kill between two files may leave the next one too).
    assert list(run.kernel_epochs)[: info.epochs_completed + 1] == list(range(info.epochs_completed + 1))
    # Its model loads and answers.
    model = load_run_model(info.path)
    logits = model(sample_data.x_test[:200].astype(np.float32) / 255).numpy()
    assert (logits.argmax(1) == sample_data.y_test[:200]).mean() > 0.5
    # The page's "evaluate on the test set" records a summary; it then lists with a test accuracy.
    evaluated = JobManager(tmp_path).evaluate_run(info.path, "sample")
    assert evaluated.status == "interrupted" and evaluated.summary["test_accuracy"] > 0.5
    assert evaluated.summary["epochs_completed"] == info.epochs_completed
    assert evaluated.label == info.label


def test_a_stale_temporary_file_is_cleaned_when_listed(tmp_path):
    proc = start_training(tmp_path)
    wait_for_epochs(proc, 1)
    proc.kill()
    proc.wait(30)
    [info] = list_runs(tmp_path)
    leftover = info.path / ".metrics.jsonl.0badf00d.tmp"  # what a kill during a write leaves behind
    leftover.write_text("half")
    keras_leftover = info.path / ".model.keras.0badf00d.tmp.keras"  # Keras insists on its suffix
    keras_leftover.write_text("half")
    record_leftover = info.path / "timeline" / ".epoch-00002.npz.0badf00d.tmp"
    record_leftover.write_text("half")
    mine = info.path / ".notes.tmp"  # not a name we write: not ours to delete
    mine.write_text("keep")
    abandoned = tmp_path / ".20261124-000000-abcdef.tmp"  # a run folder killed while being created
    abandoned.mkdir()
    (abandoned / "training.lock").touch()
    being_made = tmp_path / ".20261124-000001-fedcba.tmp"  # one another process is creating now
    being_made.mkdir()
    os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
    [again] = list_runs(tmp_path)
    assert again.status == "interrupted"
    assert not leftover.exists() and not keras_leftover.exists() and not abandoned.exists()
    assert not record_leftover.exists()
    assert being_made.exists() and mine.exists()
