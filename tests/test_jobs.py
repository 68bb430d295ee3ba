"""The server-wide job manager: one job at a time, training and fine-tuning alike, models handed on."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.jobs import JobBusyError, JobManager
from mlpdash.progress import Status
from mlpdash.training import NotReadyError

QUICK = TrainConfig(hidden=(16,), epochs=1, batch_size=64)
LONG = TrainConfig(hidden=(16,), epochs=200, batch_size=8)


def test_a_second_start_is_refused_while_a_job_runs(tmp_path):
    manager = JobManager(tmp_path)
    first = manager.start(LONG, "sample")
    try:
        with pytest.raises(JobBusyError, match="already in progress"):
            manager.start(QUICK, "sample")
        assert manager.job is first
    finally:
        first.stop()
        first.join(60)
    assert first.snapshot().status == Status.STOPPED
    second = manager.start(QUICK, "sample")  # once it has ended, Start works again
    assert second.join(60) and second.snapshot().status == Status.FINISHED


def _losses(job) -> list[float]:
    return [epoch["loss"] for epoch in job.snapshot().history]


def test_a_rerun_of_the_same_settings_reuses_the_compiled_model_and_learns_exactly_as_a_new_one(tmp_path):
    """Reusing the ended job's model (so that TensorFlow traces no new training step) must not change
    a single number: the second run of a config, and a run of another seed in between, train as they
    would on a freshly built model in a fresh manager."""
    config = TrainConfig(hidden=(16,), epochs=2, batch_size=64, dropout=0.2)
    reseeded = TrainConfig(hidden=(16,), epochs=2, batch_size=64, dropout=0.2, seed=5)
    manager = JobManager(tmp_path / "reused")
    first = manager.start(config, "sample")
    first.join(60)
    first_model = first.predictor.model
    other_seed = manager.start(reseeded, "sample")
    other_seed.join(60)
    again = manager.start(config, "sample")
    again.join(60)
    assert again.predictor.model is first_model  # reused, through the other seed's job
    assert first.predictor is None  # a job whose model moved on answers nothing
    with pytest.raises(NotReadyError, match="went to a newer job"):
        first.predict_drawing(np.zeros((280, 280, 4), np.uint8))
    assert _losses(again) == _losses(first)
    assert again.snapshot().report.accuracy == first.snapshot().report.accuracy
    fresh = JobManager(tmp_path / "fresh").start(reseeded, "sample")
    fresh.join(60)
    assert _losses(other_seed) == _losses(fresh)


def test_a_different_graph_gets_a_new_model(tmp_path):
    manager = JobManager(tmp_path)
    first = manager.start(QUICK, "sample")
    first.join(60)
    model = first.predictor.model
    wider = manager.start(TrainConfig(hidden=(32,), epochs=1, batch_size=64), "sample")
    wider.join(60)
    assert wider.predictor.model is not model
    assert wider.snapshot().status == Status.FINISHED


def test_a_spare_model_is_not_used_under_a_callers_strategy(tmp_path, tiny_data):
    import tensorflow as tf

    from mlpdash.training import TrainingJob

    first = TrainingJob(QUICK, tiny_data, tmp_path).start()
    assert first.join(60)
    spare = first.release_model()
    assert spare is not None
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    job = TrainingJob(QUICK, tiny_data, tmp_path, strategy=strategy, spare=spare).start()
    assert job.join(60) and job.snapshot().status == Status.FINISHED
    assert job.predictor.model is not spare.model  # built under the strategy, as asked
    assert job.release_model() is None  # and not offered on: it belongs to the caller's strategy


def test_a_failed_job_hands_over_no_model_and_a_running_one_none_yet(tmp_path, tiny_data):
    import keras

    from mlpdash.training import TrainingJob

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom")

    failed = TrainingJob(QUICK, tiny_data, tmp_path, callbacks=[Boom()]).start()
    failed.join(60)
    assert failed.snapshot().status == Status.FAILED
    assert failed.release_model() is None
    running = TrainingJob(LONG, tiny_data, tmp_path).start()
    try:
        while running.snapshot().status != Status.TRAINING:
            assert not running.join(0.05), running.snapshot().error
        assert running.release_model() is None
    finally:
        running.stop()
        running.join(60)
    assert running.release_model() is not None


def _drawings(folder, sample_data, count: int = 4):
    from mlpdash.drawings import save

    for index in range(count):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[70:210, 70:210] = np.kron(sample_data.x_test[index], np.ones((5, 5), np.uint8))
        save(folder, canvas, int(sample_data.y_test[index]))
    return folder


def test_a_finetune_is_the_managers_job_refused_while_another_runs_and_controlled_alike(tmp_path, sample_data):
    from mlpdash.finetune import FinetuneSettings
    from mlpdash.progress import FINE_TUNING
    from mlpdash.run_view import status_line

    drawings = _drawings(tmp_path / "drawings", sample_data)
    manager = JobManager(tmp_path / "runs")
    base = manager.start(QUICK, "sample")
    assert base.join(60)
    base_dir = base.snapshot().run_dir
    long = manager.start(LONG, "sample")
    try:
        with pytest.raises(JobBusyError, match="already in progress"):
            manager.start_finetune(base_dir, drawings, FinetuneSettings(epochs=1))
        assert manager.job is long
    finally:
        long.stop()
        long.join(60)
    tune = manager.start_finetune(base_dir, drawings, FinetuneSettings(epochs=20, replay=16))
    assert manager.job is tune and manager.active()
    with pytest.raises(JobBusyError):
        manager.start(QUICK, "sample")  # and the other way round
    while tune.snapshot().status != Status.TRAINING:
        assert not tune.join(0.05), tune.snapshot().error
    assert tune.pause()
    snap = tune.snapshot()
    assert snap.task == FINE_TUNING and status_line(snap).startswith(("Pausing", "Paused"))
    assert tune.resume() and status_line(tune.snapshot()).startswith("Fine-tuning")
    assert tune.stop() and tune.join(60)
    assert tune.snapshot().status in (Status.STOPPED, Status.FINISHED)


def test_the_pause_button_does_what_it_said_however_often_its_callback_runs(tmp_path):
    # One click's callback once ran twice in CI: a Resume that paused again. The button's callback
    # carries the action it was drawn with, so a second run of it changes nothing.
    from mlpdash.ui.sidebar import pause_or_resume

    manager = JobManager(tmp_path)
    job = manager.start(LONG, "sample")
    try:
        deadline = time.monotonic() + 60
        while job.status != Status.TRAINING:
            assert time.monotonic() < deadline, job.status
            time.sleep(0.02)
        for action, status in (("pause", Status.PAUSED), ("resume", Status.TRAINING)):
            pause_or_resume(manager, action)
            pause_or_resume(manager, action)
            assert job.status == status, action
    finally:
        job.stop()
        job.join(60)
