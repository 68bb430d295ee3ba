"""The server-wide job manager: one job at a time, shared data, the model that answers drawings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.jobs import ByteBudgetCache, JobBusyError, JobManager
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


def test_data_is_loaded_once_per_source_with_each_requests_reason(tmp_path, monkeypatch):
    manager = JobManager(tmp_path)
    first = manager.load_data("sample")
    monkeypatch.setenv("MLPDASH_DATA", "sample")
    again = manager.load_data(None)
    assert again.x_train is first.x_train  # the same arrays, not a second copy
    assert first.reason.endswith("as chosen") and again.reason.startswith("MLPDASH_DATA=sample")


def test_the_answering_model_is_the_job_then_the_newest_saved_run(tmp_path):
    manager = JobManager(tmp_path)
    assert not manager.has_model() and manager.answering_predictor() is None
    job = manager.start(QUICK, "sample")
    job.join(60)
    assert manager.has_model() and manager.answering_predictor() is job.predictor
    fresh = JobManager(tmp_path)  # a restarted server: no job, but the run on disk
    assert fresh.has_model()
    predictor = fresh.answering_predictor()
    x = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(predictor.logits(x), job.predictor.logits(x), atol=1e-5)
    assert fresh.predictor_for_run(job.snapshot().run_dir) is predictor  # loaded once


def test_saved_runs_are_read_once_and_the_cache_is_bounded_by_bytes(tmp_path, monkeypatch):
    import numpy as np

    from mlpdash.runs import RunWriter

    paths = []
    for _ in range(6):
        writer = RunWriter(tmp_path, QUICK, "sample")
        writer.write_snapshot(np.zeros((784, QUICK.hidden[0]), np.float32), 0)
        writer.write_summary({"test_accuracy": 0.5, "stopped_early": False})
        writer.close()
        paths.append(writer.path)
    monkeypatch.setenv("MLPDASH_CACHE_MB", str(3 * 784 * QUICK.hidden[0] * 2 / 2**20))  # room for three runs
    manager = JobManager(tmp_path)
    first = manager.saved_run(paths[0])
    assert manager.saved_run(paths[0]) is first
    for path in paths[1:]:
        manager.saved_run(path)
    assert len(manager._cache) == 3 and manager._cache.nbytes <= 3 * 784 * QUICK.hidden[0] * 2
    assert manager.saved_run(paths[0]) is not first  # dropped, then read again


def test_the_byte_budget_cache_drops_the_oldest_but_keeps_one_oversized_value():
    cache = ByteBudgetCache(100)
    for key in "abc":
        cache.get(key, lambda: key, lambda _: 40)
    assert len(cache) == 2 and cache.nbytes == 80  # "a" went first
    assert cache.get("b", lambda: "reloaded", lambda _: 40) == "b"
    assert cache.get("big", lambda: "big", lambda _: 500) == "big"
    assert len(cache) == 1 and cache.nbytes == 500


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


def test_the_model_in_focus_is_the_jobs_then_a_picked_runs_and_its_map_is_fitted_once(tmp_path, sample_data):
    from mlpdash.model import to_model_input
    from mlpdash.runs import RunError

    manager = JobManager(tmp_path)
    assert manager.model_in_focus() is None
    job = manager.start(QUICK, "sample")
    assert job.join(60)
    focus = manager.model_in_focus()
    images = to_model_input(sample_data.x_test[:20])
    np.testing.assert_allclose(focus.network.logits(images), job.predictor.logits(images), rtol=1e-4, atol=1e-4)
    assert focus.title.startswith("The current run") and focus.data_spec == "sample"
    first = manager.hidden_map(focus)
    assert manager.hidden_map(manager.model_in_focus()) is first  # same model state: not refitted
    assert len(first.points) == len(sample_data.x_test)
    again = manager.start(QUICK, "sample")  # a new job: a new map, whatever id() the job object got
    assert again.join(60)
    assert manager.model_in_focus().state[:2] != focus.state[:2]
    picked = manager.model_in_focus(job.snapshot().run_dir)
    assert picked.title == f"Saved run {job.snapshot().run_dir.name}" and picked.state != focus.state
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    with pytest.raises(RunError):
        manager.model_in_focus(empty)


def test_the_timeline_and_the_answers_in_focus_come_from_the_job_or_a_picked_run(tmp_path, sample_data):
    import shutil

    from mlpdash.runs import RunError

    manager = JobManager(tmp_path)
    assert manager.timeline_in_focus() is None
    answers, _, _, missing = manager.test_answers()
    assert answers is None and missing == "no run yet"
    job = manager.start(TrainConfig(hidden=(16,), epochs=2, batch_size=256), "sample")
    assert job.join(60)
    live = manager.timeline_in_focus()
    assert live.title == "The current run" and live.timeline.epochs == [0, 1, 2] and live.missing is None
    answers, title, spec, _ = manager.test_answers()
    report = job.snapshot().report
    assert title == "The current run" and spec == "sample" and answers.split == "test"
    np.testing.assert_array_equal(answers.confusion, report.confusion)
    validation = manager.validation_answers(live, 1)
    assert validation.split == "validation" and len(validation.labels) == len(sample_data.y_val)
    np.testing.assert_array_equal(validation.confusion, live.timeline.confusion(1))
    # The same from the run folder, as a picked run.
    run = job.snapshot().run_dir
    saved = manager.timeline_in_focus(run)
    assert saved.title == f"Saved run {run.name}" and saved.timeline.epochs == [0, 1, 2]
    answers, *_ = manager.test_answers(run)
    np.testing.assert_array_equal(answers.predictions, report.predictions)
    # A run from before the timeline: it says so instead of failing.
    old = tmp_path / f"{run.name[:-6]}abcdef"
    shutil.copytree(run, old)
    shutil.rmtree(old / "timeline")
    (old / "test_predictions.npz").unlink()
    before = manager.timeline_in_focus(old)
    assert before.timeline is None and "before mlpdash recorded every layer" in before.missing
    answers, _, _, missing = manager.test_answers(old)
    assert answers is None and missing == "this run's test answers were not saved"
    # Answers that do not fit the data's validation split are refused, not shown wrong.
    with pytest.raises(RunError, match="answers for 10 validation digits"):
        manager.validation_answers(dataclasses.replace(live, timeline=_shortened(live.timeline)), 1)
    counts = live.timeline.confusions.copy()
    counts[:, 0, 0] += 7  # seven more 0s than this data's validation split has
    other = dataclasses.replace(live.timeline, confusions=counts)
    with pytest.raises(RunError, match="not those of sample"):
        manager.validation_answers(dataclasses.replace(live, timeline=other), 1)


def _shortened(timeline):
    from mlpdash.timeline import EpochRecord, Timeline

    records = tuple(EpochRecord(r.epoch, r.weights, r.predictions[:10], r.confidences[:10]) for r in timeline.records)
    return Timeline(records, timeline.confusion_epochs, timeline.confusions)
