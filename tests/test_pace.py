"""Slow motion as a class sees it: a pace in batches or epochs a second is held in digits a second
worked out from the run's own batch size and data, and a run can pause itself after an epoch."""

from __future__ import annotations

import time

import pytest

from mlpdash.config import TrainConfig
from mlpdash.pace import PACES, Pace, pace_label
from mlpdash.progress import Status
from mlpdash.training import TrainingJob


def test_a_pace_is_digits_a_second_for_the_runs_batch_size_and_data():
    assert Pace(1, "batch").samples_per_second(batch_size=128, train_size=50_000) == 128
    assert Pace(1 / 60, "epoch").samples_per_second(128, 60_000) == pytest.approx(1000)
    assert Pace(500).samples_per_second(128, 50_000) == 500
    assert pace_label(PACES["a batch a second"]) == "a batch a second" and pace_label(None) == "full speed"
    assert pace_label(Pace(500)) == "500 samples a second"  # a pace set outside the Speed box
    with pytest.raises(ValueError, match="one of sample, batch, epoch"):
        Pace(1, "minute")
    with pytest.raises(ValueError, match="positive"):
        Pace(0, "batch")


def wait_for(job: TrainingJob, done, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not done(snap := job.snapshot()):
        assert time.monotonic() < deadline, snap
        time.sleep(0.02)
    return snap


def test_an_epoch_pace_holds_the_run_to_its_own_data(tiny_data, tmp_path):
    # An epoch in 1,000 s of 2,000 digits: 2 digits a second, a batch of 50 held 25 s. Whatever moves
    # on below was let go by full speed, never by the clock.
    job = TrainingJob(TrainConfig(hidden=(16,), epochs=2, batch_size=50), tiny_data, tmp_path,
                      pace=Pace(0.001, "epoch")).start()
    held_at = wait_for(job, lambda s: s.batches_done >= 1).batches_done
    time.sleep(0.5)
    assert job.snapshot().batches_done == held_at
    assert job.pace == Pace(0.001, "epoch")
    job.set_pace(PACES["full speed"])
    assert job.join(60) and job.snapshot().status == Status.FINISHED


def test_a_run_pauses_itself_after_the_epoch_asked_and_resumes_on_request(tiny_data, tmp_path):
    job = TrainingJob(TrainConfig(hidden=(16,), epochs=3, batch_size=100), tiny_data, tmp_path)
    job.pause_after_epoch(1)
    job.start()
    snap = wait_for(job, lambda s: s.status == Status.PAUSED)
    time.sleep(0.3)
    snap = job.snapshot()
    assert snap.status == Status.PAUSED and len(snap.history) == 1  # validated and recorded, then held
    assert snap.batches_done == snap.batches_per_epoch  # no batch of epoch 2 started
    assert job.resume()
    assert job.join(60) and job.snapshot().status == Status.FINISHED and len(job.snapshot().history) == 3
