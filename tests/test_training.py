"""The engine, with real TensorFlow training on slices of the bundled MNIST sample."""

from __future__ import annotations

import json
import random
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from mlpdash.config import TrainConfig
from mlpdash.data import DataError
from mlpdash.model import build_network
from mlpdash.runs import METRIC_KEYS, list_runs, load_run
from mlpdash.recorder import Reporter
from mlpdash.training import DivergedError, NotReadyError, Status, TrainingJob

SMALL = TrainConfig(hidden=(32,), epochs=2, batch_size=64)
# Many small batches, so that a control lands mid-epoch.
SLOW = TrainConfig(hidden=(32,), epochs=30, batch_size=8)


def drawing_of(digit: np.ndarray) -> np.ndarray:
    """A sample digit blown up onto a black RGBA canvas, as the drawing widget returns it."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[70:210, 70:210, :3] = np.kron(digit, np.ones((5, 5), np.uint8))[..., None]
    return canvas


def wait_for(job: TrainingJob, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = job.snapshot()
        if predicate(snap):
            return snap
        if snap.status.ended:
            raise AssertionError(f"job ended as {snap.status} ({snap.error}) before the condition held")
        time.sleep(0.01)
    raise AssertionError("timed out waiting for the job")


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    """One small run, watched from start to end; its statuses in the order they were seen."""
    # Its own run, not the session's shared one (conftest): the statuses are watched from before the
    # start, and the tests check this config's own numbers (two epochs, 32 units, its batch count).
    root = tmp_path_factory.mktemp("runs")
    job = TrainingJob(SMALL, tiny_data, root)
    seen = [job.snapshot().status]
    job.start()
    while not job.join(0.005):
        status = job.snapshot().status
        if status != seen[-1]:
            seen.append(status)
    snap = job.snapshot()
    if snap.status != seen[-1]:
        seen.append(snap.status)
    return job, snap, seen, root


def test_a_run_goes_through_its_states_in_order(finished):
    _, snap, seen, _ = finished
    assert snap.status == Status.FINISHED, snap.error
    order = [Status.IDLE, Status.LOADING_DATA, Status.TRAINING, Status.EVALUATING, Status.FINISHED]
    assert seen[0] == Status.IDLE and seen[-1] == Status.FINISHED
    assert [s for s in order if s in seen] == [s for s in seen if s in order]
    assert Status.TRAINING in seen


def test_snapshot_records_every_epoch_batch_and_kernel(finished, tiny_data):
    _, snap, _, _ = finished
    steps = -(-len(tiny_data.x_train) // SMALL.batch_size)
    assert snap.batches_per_epoch == steps
    assert [row["epoch"] for row in snap.history] == [1, 2]
    assert all(set(METRIC_KEYS) <= set(row) for row in snap.history)
    assert snap.history[1]["loss"] < snap.history[0]["loss"]
    assert len(snap.batch_loss) == len(snap.batch_loss_smoothed) == 2 * steps
    assert np.all(np.isfinite(snap.batch_loss))
    # The per-batch losses undo Keras' running mean: their weighted mean is the epoch's loss.
    sizes = np.full(steps, SMALL.batch_size)
    sizes[-1] = len(tiny_data.x_train) - (steps - 1) * SMALL.batch_size
    epoch2 = np.average(snap.batch_loss[steps:], weights=sizes)
    assert epoch2 == pytest.approx(snap.history[1]["loss"], rel=1e-3)
    assert snap.kernel_epochs == (0, 1, 2)
    assert all(k.shape == (784, 32) for k in snap.kernels)
    assert not np.allclose(snap.kernels[0], snap.kernels[2])
    assert snap.samples_per_second and snap.samples_per_second > 0
    assert snap.progress == 1.0


def test_test_report_matches_the_saved_summary(finished, tiny_data):
    _, snap, _, _ = finished
    report = snap.report
    assert report.confusion.sum() == len(tiny_data.y_test)
    assert report.accuracy > 0.6  # 2 epochs on 2,000 real digits; chance is 0.1
    summary = json.loads((snap.run_dir / "summary.json").read_text())
    assert summary["test_accuracy"] == pytest.approx(report.accuracy)
    assert summary["confusion_matrix"] == report.confusion.tolist()
    assert summary["epochs_completed"] == 2 and summary["stopped_early"] is False
    assert summary["data_source"] == "sample"
    assert summary["samples_per_second"] > 0
    assert len(summary["per_class_accuracy"]) == 10


def test_run_folder_round_trip(finished):
    _, snap, _, root = finished
    [info] = [r for r in list_runs(root) if r.path == snap.run_dir]
    assert info.status == "finished" and info.config == SMALL
    saved = load_run(snap.run_dir)
    assert [row["epoch"] for row in saved.metrics] == [1, 2]
    assert saved.metrics[0]["val_accuracy"] == pytest.approx(snap.history[0]["val_accuracy"])
    assert saved.kernels.shape == (3, 784, 32)
    np.testing.assert_allclose(saved.kernels[-1], snap.kernels[-1], atol=2e-3)  # float16 on disk
    wrong = snap.report.predictions != snap.report.labels
    assert sorted(saved.mistakes["index"]) == np.flatnonzero(wrong).tolist()
    with np.load(snap.run_dir / "test_predictions.npz") as preds:
        np.testing.assert_array_equal(preds["predictions"], snap.report.predictions)
    model = saved.load_model()
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(model(x).numpy(), finished[0].predictor.logits(x), atol=1e-5)


def test_saved_model_signature_takes_raw_pixels(finished, tiny_data):
    _, snap, _, _ = finished
    serving = tf.saved_model.load(str(snap.run_dir / "model")).signatures["serving_default"]
    out = serving(images=tf.constant(tiny_data.x_test[:50]))
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (50, 10)
    assert out["digit"].dtype == tf.int64
    np.testing.assert_array_equal(out["digit"].numpy(), snap.report.predictions[:50])


def test_same_seed_same_metrics(tiny_data, tmp_path):
    config = SMALL.replace(epochs=1)
    first, second = (_run_to_end(TrainingJob(config, tiny_data, tmp_path)) for _ in range(2))
    assert first.history[0]["loss"] == second.history[0]["loss"]
    assert first.history[0]["val_accuracy"] == second.history[0]["val_accuracy"]
    np.testing.assert_array_equal(first.kernels[-1], second.kernels[-1])
    other = _run_to_end(TrainingJob(config.replace(seed=23), tiny_data, tmp_path))
    assert other.history[0]["loss"] != first.history[0]["loss"]


def _run_to_end(job: TrainingJob):
    job.start().join()
    return job.snapshot()


def test_stop_takes_effect_within_one_batch_and_saves_a_partial_run(tiny_data, tmp_path):
    job = TrainingJob(SLOW, tiny_data, tmp_path).start()
    wait_for(job, lambda s: s.batches_done >= 5)
    job.stop()
    at_stop = job.snapshot().batches_done
    assert job.snapshot().status == Status.STOPPING
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == Status.STOPPED, snap.error
    # The batch in flight when stop() was called may finish; no further one starts.
    assert at_stop <= snap.batches_done <= at_stop + 1
    assert len(snap.batch_loss) == snap.batches_done
    assert snap.epochs_completed == 0 and snap.history == ()
    [info] = list_runs(tmp_path)
    assert info.status == "stopped"
    assert info.summary["stopped_early"] is True and info.summary["epochs_completed"] == 0
    assert 0.0 <= info.summary["test_accuracy"] <= 1.0
    assert load_run(info.path).load_model() is not None


def test_pause_holds_training_and_resume_continues(tiny_data, tmp_path):
    job = TrainingJob(SLOW.replace(epochs=2), tiny_data, tmp_path).start()
    wait_for(job, lambda s: s.batches_done >= 3)
    assert job.pause()
    # Paused at once, holding once the batch in flight has finished (the page says "Pausing" till then).
    held = wait_for(job, lambda s: s.holding, timeout=10)
    time.sleep(0.7)
    later = job.snapshot()
    assert held.status == later.status == Status.PAUSED and later.holding
    assert later.batches_done == held.batches_done
    # The model answers while paused.
    prediction = job.predict_drawing(drawing_of(tiny_data.x_test[0]))
    assert prediction.digit is not None
    assert job.resume()
    assert job.snapshot().status == Status.TRAINING
    wait_for(job, lambda s: s.batches_done > later.batches_done + 3)
    assert not job.snapshot().holding
    job.stop()
    job.join(60)
    assert job.snapshot().status == Status.STOPPED


def test_the_live_kernel_is_the_weights_mid_epoch_with_where_they_were_read(tiny_data, tmp_path):
    job = TrainingJob(SLOW.replace(epochs=2), tiny_data, tmp_path).start()
    wait_for(job, lambda s: s.batches_done >= 3)
    assert job.pause()
    snap = wait_for(job, lambda s: s.holding, timeout=30)  # the batch in flight has finished
    kernel, epoch, batch = job.live_kernel()
    assert (epoch, batch) == (snap.epoch, snap.batch) and snap.epochs_completed == 0
    assert kernel.dtype == np.float32 and kernel.shape == snap.kernels[0].shape
    # Still epoch 1: the only snapshot is step 0's, and the live weights have moved from it.
    assert len(snap.kernels) == 1 and np.abs(kernel - snap.kernels[0].astype(np.float32)).max() > 0
    job.stop()
    job.join(60)


def test_train_digits_trains_on_the_first_n_and_leaves_the_shared_data_whole(tiny_data, tmp_path):
    config = TrainConfig(hidden=(16,), epochs=1, batch_size=100, train_digits=300)
    job = TrainingJob(config, tiny_data, tmp_path).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == Status.FINISHED and snap.train_size == 300
    assert snap.batches_per_epoch == 3
    assert len(tiny_data.x_train) == 2000  # the loaded splits are shared with other jobs
    assert json.loads((snap.run_dir / "config.json").read_text())["config"]["train_digits"] == 300
    assert "training on the first 300 digits" in snap.data_reason


def test_more_training_digits_than_the_split_has_uses_all_and_says_so(tiny_data, tmp_path):
    job = TrainingJob(TrainConfig(hidden=(16,), epochs=1, batch_size=100, train_digits=5000), tiny_data,
                      tmp_path).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == Status.FINISHED and snap.train_size == 2000
    assert "5,000 training digits asked for, the split has 2,000" in snap.data_reason


# Slow motion so slow that a batch of 50 would be held 5,000 s: whatever moves on below was let go by a
# control, never by the clock. How fast slow motion runs, and how soon a control takes effect in
# seconds, is printed by the bench (`python -m mlpdash bench`: mlpdash/bench/controls.py).
HELD = 0.01


def test_slow_motion_holds_the_thread_a_faster_pace_lets_go_and_a_stop_cuts_a_hold_short(tiny_data, tmp_path):
    config = TrainConfig(hidden=(16,), epochs=50, batch_size=50)
    job = TrainingJob(config, tiny_data, tmp_path, pace=HELD).start()
    held_at = wait_for(job, lambda s: s.batches_done >= 1).batches_done
    time.sleep(0.5)
    assert job.snapshot().batches_done == held_at  # held after its first batch: no batch started since
    job.set_pace(None)  # full speed, at once: not after the 5,000 s
    wait_for(job, lambda s: s.batches_done >= held_at + 20, timeout=60)
    job.set_pace(HELD)  # mid-run: the batch in flight may end, no batch starts after it
    asked = job.snapshot().batches_done
    time.sleep(0.5)
    held_at = job.snapshot().batches_done
    assert held_at <= asked + 1
    time.sleep(0.3)
    assert job.snapshot().batches_done == held_at
    job.stop()
    assert job.join(60)  # the held batch would have taken 5,000 s: the stop ended the hold
    snap = job.snapshot()
    assert snap.status == Status.STOPPED
    assert snap.batches_done == held_at  # stopped within the batch it was holding: none after it
    with pytest.raises(ValueError, match="positive"):
        job.set_pace(-5)


class _EpochSpans(keras.callbacks.Callback):
    """Each epoch's wall time from its start to its end, as a callback after the engine's sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.spans.append(time.perf_counter() - self.began)


def test_slow_motion_is_not_counted_as_training_time(tiny_data, tmp_path):
    # The test holds the epoch itself for `hold_s` (the pace would hold it 5,000 s) and then lets go: the
    # seconds the epoch records must leave that hold out, on a slow machine as on a fast one.
    hold_s = 1.0
    spans = _EpochSpans()
    job = TrainingJob(TrainConfig(hidden=(16,), epochs=1, batch_size=100), tiny_data, tmp_path, pace=HELD,
                      callbacks=[spans]).start()
    held_at = wait_for(job, lambda s: s.batches_done >= 1).batches_done
    time.sleep(hold_s)
    assert job.snapshot().batches_done == held_at  # held all along
    job.set_pace(None)
    assert job.join(60) and job.snapshot().status == Status.FINISHED
    [row] = [json.loads(line) for line in (job.snapshot().run_dir / "metrics.jsonl").read_text().splitlines()]
    [span] = spans.spans
    # Counted, the hold would make the epoch's seconds its whole span; left out, they are short of
    # the span by the hold at least (the callbacks' own moments apart are microseconds).
    assert span > hold_s and row["seconds"] <= span - 0.75 * hold_s, (row["seconds"], span)


def test_predictions_during_training_use_the_current_weights(tiny_data, tmp_path):
    job = TrainingJob(SLOW.replace(epochs=3), tiny_data, tmp_path).start()
    wait_for(job, lambda s: s.status == Status.TRAINING and s.batches_done >= 2)
    drawing = drawing_of(tiny_data.x_test[1])
    answers = []
    for _ in range(20):
        prediction = job.predict_drawing(drawing)
        assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert prediction.digit == int(prediction.probabilities.argmax())
        answers.append(prediction.probabilities)
        time.sleep(0.02)
    during = job.snapshot().status
    blank = job.predict_drawing(np.zeros((280, 280, 4), np.uint8))
    job.stop()
    job.join(60)
    assert during in (Status.TRAINING, Status.PAUSED)
    assert blank.digit is None and blank.probabilities is None
    # The weights move between calls, so the answers do too.
    assert not np.allclose(answers[0], answers[-1])


def test_predict_before_the_model_exists_says_so(tiny_data, tmp_path):
    job = TrainingJob(SMALL, tiny_data, tmp_path)
    with pytest.raises(NotReadyError):
        job.predict_drawing(drawing_of(tiny_data.x_test[0]))


def test_a_data_failure_is_reported_as_failed(tmp_path):
    def broken_loader(spec):
        raise DataError("idx:/nowhere: folder not found")

    job = TrainingJob(SMALL, "idx:/nowhere", tmp_path, loader=broken_loader).start()
    assert job.join(30)
    snap = job.snapshot()
    assert snap.status == Status.FAILED
    assert snap.error == "idx:/nowhere: folder not found"
    assert list_runs(tmp_path) == []  # nothing trained, nothing saved


class _Explode(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise RuntimeError("boom in batch 3")


def test_a_failure_inside_training_is_reported_and_recorded(tiny_data, tmp_path):
    job = TrainingJob(SMALL, tiny_data, tmp_path, callbacks=[_Explode()]).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == Status.FAILED
    assert "RuntimeError: boom in batch 3" in snap.error
    [info] = list_runs(tmp_path)
    assert info.status == "failed" and "boom" in info.error


def test_a_non_finite_or_exploding_batch_loss_ends_the_run_as_diverged(tmp_path):
    # Drive the reporting callback's hooks directly, as Keras tests its own callbacks.
    job = TrainingJob(SMALL, None, tmp_path)
    reporter = Reporter(job, train_size=640)
    reporter.on_epoch_begin(0)
    reporter.on_train_batch_end(0, {"loss": 2.3})
    with pytest.raises(DivergedError, match="Diverged.*lower the learning rate"):
        reporter.on_train_batch_end(1, {"loss": float("nan")})
    assert job.snapshot().batch == 2
    exploding = Reporter(TrainingJob(SMALL, None, tmp_path), train_size=640)
    exploding.on_epoch_begin(0)
    with pytest.raises(DivergedError, match="1e\\+19"):
        exploding.on_train_batch_end(0, {"loss": 1e19})


def epoch_row(epoch, loss, val_accuracy, val_loss):
    return {"epoch": epoch, "loss": loss, "accuracy": val_accuracy, "val_loss": val_loss,
            "val_accuracy": val_accuracy, "seconds": 1.0}


def test_an_epoch_far_above_a_uniform_guess_or_stuck_at_chance_is_divergence(tmp_path):
    def reporter(train_size=6400):  # 100 batches of 64 an epoch
        return Reporter(TrainingJob(SMALL.replace(epochs=5), None, tmp_path), train_size=train_size)

    with pytest.raises(DivergedError, match="1.92e\\+05"):
        reporter()._check_divergence(epoch_row(1, 191992.0, 0.10, 9.0))
    stuck = reporter()
    stuck._check_divergence(epoch_row(1, 2.31, 0.1135, 2.302))  # once may be a slow start
    stuck._check_divergence(epoch_row(2, 2.30, 0.1135, 2.302))  # not improving: stuck once
    with pytest.raises(DivergedError, match="stuck at chance"):
        stuck._check_divergence(epoch_row(3, 2.30, 0.1135, 2.302))
    slow = reporter()
    for epoch, val_loss in enumerate((2.40, 2.35, 2.33, 2.32), start=1):
        # A slow learner: at chance and no better than a guess yet, but its loss keeps falling.
        slow._check_divergence(epoch_row(epoch, 2.4, 0.12, val_loss))
    few_steps = reporter(train_size=64)  # one update an epoch: three epochs are no evidence
    for epoch in (1, 2, 3):
        few_steps._check_divergence(epoch_row(epoch, 2.31, 0.1, 2.31))


def test_adam_at_learning_rate_1_diverges_and_says_so(tiny_data, tmp_path):
    config = TrainConfig(hidden=(700, 500), epochs=3, learning_rate=1.0, lr_schedule="constant")
    job = TrainingJob(config, tiny_data, tmp_path).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == Status.DIVERGED and snap.status.ended and not snap.status.active
    assert snap.report is None and "lower the learning rate" in snap.error
    [info] = list_runs(tmp_path)
    assert info.status == "diverged" and not info.can_answer


def test_a_stop_while_the_data_loads_trains_nothing_and_saves_nothing(tiny_data, tmp_path):
    loading, release = threading.Event(), threading.Event()

    def slow_loader(spec):
        loading.set()
        release.wait(30)
        return tiny_data

    job = TrainingJob(SMALL, "sample", tmp_path, loader=slow_loader).start()
    assert loading.wait(30)
    assert job.stop()
    release.set()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == Status.STOPPED and snap.batches_done == 0 and snap.report is None
    assert snap.run_dir is None and list(tmp_path.iterdir()) == []


class _PauseDuringTheLastValidation(keras.callbacks.Callback):
    """Pauses once the last batch is done (the job's own callback, first in the list, has noted it):
    what is left is the validation, testing and saving."""

    def __init__(self, job_ref):
        super().__init__()
        self.job_ref, self.answers = job_ref, []

    def on_train_batch_end(self, batch, logs=None):
        job = self.job_ref[0]
        if job.snapshot().finishing:
            self.answers.append(job.pause())


def test_a_pause_after_the_last_batch_is_refused_not_shown_and_ignored(tiny_data, tmp_path):
    ref = []
    pauser = _PauseDuringTheLastValidation(ref)
    job = TrainingJob(SMALL, tiny_data, tmp_path, callbacks=[pauser])
    ref.append(job)
    job.start().join(60)
    assert pauser.answers == [False]
    assert job.snapshot().status == Status.FINISHED


def test_every_epoch_is_saved_as_it_ends(tiny_data, tmp_path):
    from mlpdash.runs import load_run_model

    class Check(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_epoch_end(self, epoch, logs=None):
            run = job.snapshot().run_dir
            self.seen.append((len(load_run(run).metrics), sorted(p.name for p in (run / "snapshots").iterdir())))
            model = load_run_model(run)
            np.testing.assert_allclose(model.get_weights()[0], self.model.get_weights()[0])

    check = Check()
    job = TrainingJob(SMALL, tiny_data, tmp_path, callbacks=[check]).start()
    assert job.join(60) and job.snapshot().status == Status.FINISHED
    assert check.seen == [(1, ["kernel-00000.npy", "kernel-00001.npy"]),
                          (2, ["kernel-00000.npy", "kernel-00001.npy", "kernel-00002.npy"])]
    assert not (job.snapshot().run_dir / "training.lock").exists()


def test_snapshots_stay_within_their_byte_budget(tiny_data, tmp_path, monkeypatch):
    kernel_bytes = 784 * 32 * 2  # float16
    monkeypatch.setenv("MLPDASH_SNAPSHOT_MB", str(4.5 * kernel_bytes / 2**20))
    job = TrainingJob(SMALL.replace(epochs=8), tiny_data, tmp_path).start()
    assert job.join(120)
    snap = job.snapshot()
    assert sum(k.nbytes for k in snap.kernels) <= 4.5 * kernel_bytes
    assert snap.kernel_epochs[0] == 0 and snap.kernel_epochs[-1] == 8 and len(snap.kernels) >= 3
    saved = load_run(snap.run_dir)
    assert list(saved.kernel_epochs) == list(snap.kernel_epochs)  # the folder is thinned the same way


def test_controls_refuse_what_does_not_apply(tiny_data, tmp_path):
    job = TrainingJob(SMALL.replace(epochs=1), tiny_data, tmp_path)
    assert not job.pause() and not job.resume() and not job.stop()
    job.start()
    with pytest.raises(RuntimeError):
        job.start()
    job.join(60)
    assert job.snapshot().status == Status.FINISHED
    assert not job.stop() and not job.pause()


def test_the_model_is_built_under_the_given_distribution_strategy(finished, tiny_data, tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    job = TrainingJob(SMALL, tiny_data, tmp_path, strategy=strategy)
    job.start().join()
    snap = job.snapshot()
    assert snap.status == Status.FINISHED, snap.error
    assert job.predictor.model.distribute_strategy is strategy
    # The same recipe learns as well as under the default strategy.
    assert snap.report.accuracy == pytest.approx(finished[1].report.accuracy, abs=0.05)


class _StopAtTheVeryEnd(keras.callbacks.Callback):
    def __init__(self, job_ref):
        super().__init__()
        self.job_ref = job_ref

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == SMALL.epochs:
            self.job_ref[0].stop()


def test_a_stop_after_the_last_batch_of_the_last_epoch_still_counts_as_finished(tiny_data, tmp_path):
    ref = []
    job = TrainingJob(SMALL, tiny_data, tmp_path, callbacks=[_StopAtTheVeryEnd(ref)])
    ref.append(job)
    job.start().join(60)
    snap = job.snapshot()
    assert snap.status == Status.FINISHED and len(snap.history) == SMALL.epochs
    [info] = list_runs(tmp_path)
    assert info.summary["stopped_early"] is False


def test_an_epoch_whose_validation_a_stop_cut_short_is_not_recorded(tmp_path):
    from mlpdash.predict import Predictor

    job = TrainingJob(SMALL, None, tmp_path)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    job.recorder.set_validation(Predictor(model), np.zeros((5000, 28, 28), np.float32), np.zeros(5000, np.int64))
    reporter = Reporter(job, train_size=SMALL.batch_size)
    reporter.set_model(model)
    reporter.on_epoch_begin(0)
    reporter.on_train_batch_end(0, {"loss": 2.0})  # the epoch's one and only training batch
    job._stop.set()  # ... but a stop came before its validation: that must not run, and it is no row
    reporter.on_epoch_end(0, {"loss": 2.0, "accuracy": 0.1})
    assert reporter.batches == reporter.steps  # the epoch's training was complete ...
    assert reporter.model.stop_training
    assert job.snapshot().history == () and job.snapshot().timeline is None


class _StopBeforeTheFirstBatchEnds(keras.callbacks.Callback):
    def __init__(self, job_ref):
        super().__init__()
        self.job_ref = job_ref

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 and not self.job_ref[0].stop_requested:
            self.job_ref[0].stop()  # while the first step is still being traced


def test_a_stop_before_the_first_batch_ends_leaves_no_run_and_no_answering_model(tiny_data, tmp_path):
    from mlpdash.focus import Focus
    from mlpdash.jobs import JobManager
    from mlpdash.store import Store

    ref = []
    job = TrainingJob(SMALL, tiny_data, tmp_path, callbacks=[_StopBeforeTheFirstBatchEnds(ref)])
    ref.append(job)
    assert job.start().join(60)
    snap = job.snapshot()
    assert snap.status == Status.STOPPED and snap.report is None and snap.run_dir is None
    assert list(tmp_path.iterdir()) == []
    manager = JobManager(tmp_path)
    manager._job = job
    assert Focus(manager, Store()).predictor() is None


def test_a_diverged_job_never_answers_drawings(tmp_path):
    from mlpdash.server import Server

    config = TrainConfig(hidden=(700, 500), epochs=2, learning_rate=1.0, lr_schedule="constant")
    server = Server.open(tmp_path)
    job = server.jobs.start(config, "sample")
    assert job.join(120) and job.snapshot().status == Status.DIVERGED
    assert server.focus().predictor() is None and not server.focus().has_model()


def test_stop_sets_one_save_deadline_that_every_waiter_shares(tiny_data, tmp_path):
    job = TrainingJob(SLOW, tiny_data, tmp_path).start()
    wait_for(job, lambda s: s.batches_done >= 3)
    job.stop()
    first = job._stop_deadline
    job.stop()  # a second stop (the exit hook after the CLI) keeps the first deadline
    assert job._stop_deadline == first
    assert job.wait_for_save() and job.snapshot().status == Status.STOPPED


def test_the_initial_weights_do_not_depend_on_other_users_of_pythons_random():
    # A Dask worker's own threads draw from Python's global `random`: one such draw between the seeding
    # and the build changed a run's weights (1 run in about 12 on a cluster trained differently).
    config = TrainConfig(hidden=(16, 8), dropout=0.5, seed=5)
    keras.utils.set_random_seed(config.seed)
    alone = [v.numpy() for v in build_network(config).variables]
    keras.utils.set_random_seed(config.seed)
    random.random()  # another thread's draw
    shared = [v.numpy() for v in build_network(config).variables]
    assert len(alone) == len(shared) and all(np.array_equal(a, b) for a, b in zip(alone, shared))
