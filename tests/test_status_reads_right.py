"""The status line's pace and time left match the run's real progress (issue 21), on a fake clock:
the reporter's hooks are driven directly, as Keras tests its callbacks, with every step, validation
pass and write taking a known time."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from mlpdash.config import TrainConfig
from mlpdash.progress import Snapshot, Status
from mlpdash.recorder import EXPORT_SECONDS, Reporter, RunRecorder
from mlpdash.run_view import status_line

STEP = 0.01  # one training step (128 samples)
VALIDATION = 0.04  # one validation pass (and the test pass: the splits are the same size)
WRITE = 0.01  # one epoch's records and weights written
SET_UP = 0.01  # Keras between one epoch and the next
CONFIG = TrainConfig(epochs=3, batch_size=128)
TRAIN_SIZE = 1280  # 10 steps an epoch


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TimedRecorder(RunRecorder):
    """A recorder whose validation and writes take known times on the fake clock (no model)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(threading.RLock(), threading.Event())
        self.clock = clock
        self._start_seconds = VALIDATION + WRITE  # epoch 0's validation and snapshot
        self._validation_seconds = VALIDATION
        self._write_seconds = WRITE

    def validate(self, epoch, model):
        self.clock.advance(VALIDATION)
        return {"val_loss": 0.5, "val_accuracy": 0.9}

    def record_epoch(self, row, model):
        self.clock.advance(WRITE)
        with self._lock:
            self._history = (*self._history, row)


class FakeJob:
    config = CONFIG

    def __init__(self, clock: FakeClock, pace: float | None = None) -> None:
        self.recorder = TimedRecorder(clock)
        self.stop_requested = False
        self.clock, self.pace = clock, pace

    def hold_pace(self, samples: int, took: float) -> float:
        """Slow motion as the job holds it: a batch lasts samples / pace seconds in all."""
        if not self.pace:
            return 0.0
        held = max(0.0, samples / self.pace - took)
        self.clock.advance(held)
        return held

    def held_sample_seconds(self) -> float:
        return 1 / self.pace if self.pace else 0.0

    def wait_while_paused(self) -> float:
        return 0.0

    def epoch_recorded(self, epoch: int) -> None:
        pass


def snapshot(job: FakeJob) -> Snapshot:
    return Snapshot(status=Status.TRAINING, config=CONFIG, **job.recorder.progress())


def train(clock: FakeClock, job: FakeJob, on_batch=None) -> float:
    """Run the reporter's hooks over CONFIG's epochs; returns the clock when saving would begin."""
    reporter = Reporter(job, TRAIN_SIZE)
    reporter.set_model(SimpleNamespace(stop_training=False))
    for epoch in range(CONFIG.epochs):
        clock.advance(SET_UP)
        reporter.on_epoch_begin(epoch)
        for batch in range(reporter.steps):
            clock.advance(STEP)
            reporter.on_train_batch_end(batch, {"loss": 1.0 / (1 + epoch)})
            if on_batch is not None:
                on_batch(epoch + 1, batch + 1)
        reporter.on_epoch_end(epoch, {"loss": 0.5, "accuracy": 0.9})
    return clock.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


def test_samples_a_second_is_the_batch_counters_progress_with_each_epochs_end_counted(clock):
    job = FakeJob(clock)
    seen, snaps = [], []
    train(clock, job, lambda epoch, batch: seen.append((epoch, batch, snaps.append(snapshot(job))
                                                        or snaps[-1].samples_per_second)))
    # An epoch: 10 steps, then its validation and writes, then Keras' set-up of the next one.
    real = TRAIN_SIZE / (10 * STEP + VALIDATION + WRITE + SET_UP)
    # Measured from epoch 2's first batch on (the batch after the end it measures).
    after_first_end = [speed for epoch, batch, speed in seen if (epoch, batch) > (2, 1)]
    assert after_first_end and all(speed == pytest.approx(real, rel=0.02) for speed in after_first_end)
    # Before an epoch has ended, epoch 0's recording stands in for its end: within 10 %.
    assert all(speed is None or speed == pytest.approx(real, rel=0.1) for _, _, speed in seen)
    shown = snaps[15]  # epoch 2, batch 6
    assert f"{shown.samples_per_second:,.0f} samples/s" in status_line(shown)


def test_the_time_left_counts_the_epoch_ends_the_test_and_the_saving(clock):
    job = FakeJob(clock)
    estimates = []
    train(clock, job, lambda epoch, batch: estimates.append((clock.now, snapshot(job).eta_seconds)))
    # After the last epoch's end: the test pass, then the saving (the weights twice and the export).
    end = clock.now + VALIDATION + 2 * WRITE + EXPORT_SECONDS
    for at, eta in estimates[11:]:  # from epoch 2's second batch on, an epoch's end measured
        assert eta == pytest.approx(end - at, abs=0.02)
    # At the last batch the run is not over: its validation, the test and the saving remain.
    assert estimates[-1][1] >= VALIDATION + WRITE + VALIDATION + EXPORT_SECONDS - 0.02


def test_the_time_left_counts_down_between_batches(clock):
    job = FakeJob(clock)
    train(clock, job)
    finishing = snapshot(job)
    left = finishing.eta_seconds
    clock.advance(0.5)  # testing and saving, with no batch to update the estimate
    assert snapshot(job).eta_seconds == pytest.approx(left - 0.5)
    clock.advance(60)
    assert snapshot(job).eta_seconds == 0.0


def test_in_slow_motion_the_pace_shown_is_the_pace_held(clock):
    job = FakeJob(clock, pace=2000.0)  # a batch of 128 lasts 64 ms: 10 ms of step, 54 ms held
    seen = []
    train(clock, job, lambda epoch, batch: seen.append((epoch, batch, snapshot(job).samples_per_second)))
    real = TRAIN_SIZE / (10 * 128 / 2000 + VALIDATION + WRITE + SET_UP)
    assert all(speed is None or speed <= 2000 for _, _, speed in seen), seen
    assert all(speed == pytest.approx(real, rel=0.02) for epoch, batch, speed in seen if (epoch, batch) > (2, 1))


def test_a_pace_slowed_mid_run_shows_in_the_time_left_at_the_next_batch(clock):
    # Full speed, then 200 digits a second from epoch 2's fourth batch: 0.64 s a batch where it was
    # 0.01. The next estimate counts the new pace (the steps' window alone read it a third of the time).
    job = FakeJob(clock)
    estimates = []

    def on_batch(epoch, batch):
        if (epoch, batch) == (2, 3):
            job.pace = 200.0
        estimates.append(((epoch, batch), clock.now, snapshot(job).eta_seconds))

    train(clock, job, on_batch)
    end = clock.now + VALIDATION + 2 * WRITE + EXPORT_SECONDS
    (where, at, eta), = [row for row in estimates if row[0] == (2, 4)]
    # Within one batch's time: the estimate is made as the batch ends, before its own hold.
    assert eta == pytest.approx(end - at, abs=128 / 200), (where, eta, end - at)


class PausingJob(FakeJob):
    """A job paused once, for PAUSE seconds, after epoch 2's fifth batch."""

    PAUSE = 30.0

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.batches = 0
        self.during: list[float | None] = []

    def wait_while_paused(self) -> float:
        self.batches += 1
        if self.batches != 15:
            return 0.0
        paused = Snapshot(status=Status.PAUSED, config=CONFIG, **self.recorder.progress())
        before = paused.eta_seconds
        self.clock.advance(self.PAUSE)
        self.during.append(before)
        self.during.append(paused.eta_seconds)
        return self.PAUSE


def test_a_pause_holds_the_time_left_and_the_count_down_resumes_from_its_end(clock):
    job = PausingJob(clock)
    estimates = []
    train(clock, job, lambda epoch, batch: estimates.append((clock.now, snapshot(job).eta_seconds)))
    # While paused the estimate stands still: 30 s of pause take nothing off it.
    before, during = job.during
    assert before is not None and during == before
    # Once the pause is over it counts down to the real end (it read 30 s short until a batch came).
    end = clock.now + VALIDATION + 2 * WRITE + EXPORT_SECONDS
    for at, eta in estimates[15:]:
        assert eta == pytest.approx(end - at, abs=0.02)
