"""The status line and run views the page shows, built headless."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.evaluate import report_from_logits
from mlpdash.progress import Snapshot, Status
from mlpdash.runs import RunInfo, SavedRun
from mlpdash.run_view import chart_epochs, format_duration, page_count, status_line, view_of_run, view_of_snapshot

CONFIG = TrainConfig(epochs=10)


def report(accuracy_hits=8):
    labels = np.arange(10)
    logits = np.zeros((10, 10), np.float32)
    predictions = np.where(np.arange(10) < accuracy_hits, labels, (labels + 1) % 10)
    logits[np.arange(10), predictions] = 5
    return report_from_logits(logits, labels)


def snap(status, **kw):
    return Snapshot(status=status, config=CONFIG, **kw)


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (None, "Idle — choose a model in the sidebar and press Start training"),
        (snap(Status.LOADING_DATA), "Loading data…"),
        (snap(Status.PAUSED, epoch=3, batch=120, batches_per_epoch=391, holding=True),
         "Paused — epoch 3/10, batch 120/391"),
        (snap(Status.PAUSED, epoch=3, batch=120, batches_per_epoch=391), "Pausing — finishing batch 121 of epoch 3"),
        (snap(Status.PAUSED, epoch=3, batch=391, batches_per_epoch=391), "Pausing — after the validation of epoch 3"),
        (snap(Status.STOPPING, epoch=2, batch=7, batches_per_epoch=391),
         "Stopping — finishing batch 7 of epoch 2"),
        (snap(Status.FAILED, error="tfds: MNIST is not downloaded"), "Failed: tfds: MNIST is not downloaded"),
        (snap(Status.FINISHED, report=report(8)), "Finished — test accuracy 0.8000, test loss "),
        (snap(Status.STOPPED, report=report(9), history=({"epoch": 1},)),
         "Stopped after 1 of 10 epochs — test accuracy 0.9000"),
        (snap(Status.STOPPED), "Stopped before training began — nothing was trained or saved"),
        (snap(Status.DIVERGED, error="Diverged: the loss reached 1e+19 — lower the learning rate"),
         "Diverged: the loss reached 1e+19 — lower the learning rate"),
        (snap(Status.TRAINING, epoch=10, batch=391, batches_per_epoch=391, finishing=True),
         "Finishing — last batch done, validating · epoch 10/10"),
    ],
)
def test_status_line_names_the_state(snapshot, expected):
    assert status_line(snapshot).startswith(expected)


def test_training_line_has_position_pace_and_time_left():
    line = status_line(snap(Status.TRAINING, epoch=2, batch=100, batches_per_epoch=400,
                            samples_per_second=12800.0))
    # 8 epochs and 300 batches left at 100 batches/s.
    assert line == "Training — epoch 2/10, batch 100/400 · 12,800 samples/s · 35 s left"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59.4, "59 s"), (185, "3 min 05 s"),
                                               (3725, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_views_of_a_snapshot_and_of_a_saved_run_agree(tmp_path):
    kernels = (np.zeros((784, 8), np.float32), np.ones((784, 8), np.float32))
    history = ({"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85,
                "seconds": 1.0},)
    rep = report(8)
    live = view_of_snapshot(snap(Status.FINISHED, report=rep, history=history, kernels=kernels,
                                 kernel_epochs=(0, 1), batches_per_epoch=5,
                                 batch_loss_smoothed=np.ones(5, np.float32)))
    saved = view_of_run(SavedRun(
        info=RunInfo(tmp_path, "finished", CONFIG, "sample", {**rep.summary()}),
        metrics=list(history), kernels=np.stack(kernels), kernel_epochs=np.array([0, 1]),
    ))
    for view in (live, saved):
        assert view.history == history
        np.testing.assert_array_equal(view.confusion, rep.confusion)
        assert view.per_class_accuracy[:2] == [1.0, 1.0]
        assert view.kernel_epoch == 1 and view.kernel.shape == (784, 8) and view.kernel[0, 0] == 1
        assert view.initial_kernel[0, 0] == 0
        assert view.test_accuracy == pytest.approx(0.8)
    assert live.batch_loss.shape == (5,) and saved.batch_loss is None
    assert saved.title == f"Run {tmp_path.name}"


def test_a_view_before_any_test_has_no_results():
    view = view_of_snapshot(snap(Status.TRAINING))
    assert view.confusion is None and view.test_accuracy is None and view.kernel is None


# --- what the page shows, computed headless


def test_only_the_current_jobs_view_is_live(tmp_path):
    assert view_of_snapshot(snap(Status.TRAINING)).live
    saved = view_of_run(SavedRun(info=RunInfo(tmp_path, "finished", CONFIG, "sample", None), metrics=[],
                                 kernels=None, kernel_epochs=None))
    assert not saved.live


def test_the_charts_span_a_training_run_whole_an_ended_one_as_far_as_it_went(tmp_path):
    training = view_of_snapshot(snap(Status.TRAINING))
    assert chart_epochs(training, True, 3) == CONFIG.epochs
    assert chart_epochs(training, False, 3) is None  # a saved run picked meanwhile: what it did
    assert chart_epochs(None, False, 3) == 3 and chart_epochs(None, True) is None


def test_pages_hold_what_one_page_cannot():
    assert [page_count(n, 128) for n in (0, 1, 128, 129, 700)] == [1, 1, 1, 2, 6]

