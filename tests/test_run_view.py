"""The status line and run views the page shows, built headless."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.evaluate import report_from_logits
from mlpdash.pace import PACES
from mlpdash.progress import Snapshot, Status
from mlpdash.runs import RunInfo, SavedRun
from mlpdash.run_view import (FITTED_BATCHES, chart_epochs, chart_notes, format_duration, page_count, status_line,
                              stopped_mid_epoch, view_of_run, view_of_snapshot)

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
    assert chart_epochs(None, False, 3) == 3 and chart_epochs(None, True) is None
    # Stopped at batch 94 of 469 in epoch 2: both charts run to 1.2 epochs, not to 1 or to 10.
    rows = ({"epoch": 1, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.93},)
    stopped = view_of_snapshot(snap(Status.STOPPED, history=rows, batches_per_epoch=469,
                                    batch_steps=np.arange(1, 564), batch_loss_smoothed=np.ones(563, np.float32)))
    assert chart_epochs(stopped, False) == pytest.approx(563 / 469)
    # Diverged in its second batch: the span is what it did, and never negative or empty.
    diverged = view_of_snapshot(snap(Status.DIVERGED, batches_per_epoch=469, batch_steps=np.arange(1, 3),
                                     batch_loss_smoothed=np.ones(2, np.float32)))
    assert chart_epochs(diverged, False) == pytest.approx(2 / 469)
    assert chart_epochs(view_of_snapshot(snap(Status.STOPPED)), False) == 1
    saved = view_of_run(SavedRun(info=RunInfo(tmp_path, "stopped", CONFIG, "sample", None), metrics=list(rows) * 1,
                                 kernels=None, kernel_epochs=None))
    assert chart_epochs(saved, False) == 1


def test_at_a_batch_pace_the_charts_span_the_batches_so_far_and_half_as_many_again():
    def paced(pace, batches):
        return view_of_snapshot(snap(Status.TRAINING, batches_per_epoch=469, pace=pace,
                                     batch_steps=np.arange(1, batches + 1),
                                     batch_loss_smoothed=np.ones(batches, np.float32)))

    # A batch a second: 12 batches in, the axis spans 30 batches (the curve 40 % of the width), not 10
    # epochs (0.3 %); it grows with the run and never past the run's length.
    assert chart_epochs(paced(PACES["a batch a second"], 12), True) == pytest.approx(FITTED_BATCHES / 469)
    assert chart_epochs(paced(PACES["5 batches a second"], 0), True) == pytest.approx(FITTED_BATCHES / 469)
    assert chart_epochs(paced(PACES["5 batches a second"], 600), True) == pytest.approx(900 / 469)
    assert chart_epochs(paced(PACES["a batch a second"], 4000), True) == CONFIG.epochs
    # An epoch pace, or full speed: the whole run, which shows how much of it is done.
    assert chart_epochs(paced(PACES["an epoch a minute"], 12), True) == CONFIG.epochs
    assert chart_epochs(paced(None, 12), True) == CONFIG.epochs


def test_an_ended_run_with_nothing_to_chart_says_what_happened(tmp_path):
    assert chart_notes(view_of_snapshot(snap(Status.TRAINING)), True) == (None, None)  # still to come
    assert chart_notes(None, False) == (None, None)
    loss, accuracy = chart_notes(view_of_snapshot(snap(Status.STOPPED)), False)
    assert loss == "stopped before its first batch finished"
    assert accuracy == "stopped before its first epoch finished: no epoch to show"
    loss, accuracy = chart_notes(view_of_snapshot(snap(Status.DIVERGED)), False)
    assert accuracy.startswith("diverged before its first epoch finished") and "waiting" not in loss
    saved = view_of_run(SavedRun(info=RunInfo(tmp_path, "stopped", CONFIG, "sample", None), metrics=[],
                                 kernels=None, kernel_epochs=None))
    assert saved.ended == "stopped" and chart_notes(saved, False)[1].startswith("stopped before")


ROW = {"epoch": 1, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.93}


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        # Never a test accuracy beside "after 0 of 2 epochs": where it stopped, and whose result it is.
        (snap(Status.STOPPED, report=report(9), epoch=1, batch=30, batches_per_epoch=47),
         "Stopped in epoch 1 of 10, at batch 30/47 (no epoch finished) — the model as it stopped: "
         "test accuracy 0.9000"),
        (snap(Status.STOPPED, report=report(9), history=(ROW,), epoch=2, batch=94, batches_per_epoch=469),
         "Stopped in epoch 2 of 10, at batch 94/469 (1 epoch finished) — the model as it stopped: "
         "test accuracy 0.9000"),
        (snap(Status.STOPPED, report=report(9), history=(ROW,), epoch=1, batch=469, batches_per_epoch=469),
         "Stopped after 1 of 10 epochs — test accuracy 0.9000"),
        (snap(Status.STOPPED, report=report(9), epoch=1, batch=469, batches_per_epoch=469),
         "Stopped at the end of epoch 1 of 10, before its validation (no epoch finished) — the model"),
        # Stopped and tested, still saving: it says Stopped at once, and that the saving goes on.
        (snap(Status.EVALUATING, stop_requested=True, report=report(9), epoch=1, batch=30, batches_per_epoch=47),
         "Stopped in epoch 1 of 10, at batch 30/47 (no epoch finished) — the model as it stopped: "
         "test accuracy 0.9000, test loss"),
        (snap(Status.EVALUATING, stop_requested=True, epoch=1, batch=30, batches_per_epoch=47),
         "Stopping — testing the model as it stopped…"),
    ],
)
def test_a_stopped_run_says_where_it_stopped(snapshot, expected):
    assert status_line(snapshot).startswith(expected)


def test_a_stopped_run_still_saving_says_so():
    line = status_line(snap(Status.EVALUATING, stop_requested=True, report=report(9), epoch=1, batch=30,
                            batches_per_epoch=47))
    assert line.endswith(" · saving the run…")
    # A stop after the last epoch cut nothing short: it is a finished run being evaluated.
    done = snap(Status.EVALUATING, stop_requested=True, history=(ROW,) * 10)
    assert status_line(done).startswith("Evaluating on the test set")


def test_the_current_jobs_result_is_labelled_as_its_own_while_a_saved_run_is_shown():
    finished = snap(Status.FINISHED, report=report(8))
    assert status_line(finished, other_run_shown=True).startswith("Current job: Finished — test accuracy 0.8000")
    assert status_line(finished).startswith("Finished — ")
    # Training names itself already; idle has no numbers.
    assert status_line(snap(Status.TRAINING, epoch=1, batch=1, batches_per_epoch=4),
                       other_run_shown=True).startswith("Training — ")
    assert status_line(None, other_run_shown=True).startswith("Idle")


def test_the_time_left_shows_through_the_finish():
    line = status_line(snap(Status.TRAINING, epoch=10, batch=391, batches_per_epoch=391, finishing=True,
                            seconds_left=12.0, seconds_left_at=time.perf_counter()))
    assert line.startswith("Finishing — last batch done") and line.endswith(" · 12 s left")
    line = status_line(snap(Status.EVALUATING, seconds_left=3.0, seconds_left_at=time.perf_counter() - 10))
    assert line == "Evaluating on the test set and saving the run… · almost done"


def test_pages_hold_what_one_page_cannot():
    assert [page_count(n, 128) for n in (0, 1, 128, 129, 700)] == [1, 1, 1, 2, 6]



def test_a_result_of_a_run_stopped_inside_an_epoch_says_where_its_model_was(tmp_path):
    def stopped(steps, history=()):
        return view_of_snapshot(snap(Status.STOPPED, history=history, batches_per_epoch=47,
                                     batch_steps=np.arange(1, steps + 1),
                                     batch_loss_smoothed=np.ones(steps, np.float32)))

    assert stopped_mid_epoch(stopped(8)) == "tested as it stopped, 8 batches into epoch 1"
    assert stopped_mid_epoch(stopped(48, (ROW,))) == "tested as it stopped, 1 batch into epoch 2"
    assert stopped_mid_epoch(stopped(47, (ROW,))) is None  # at an epoch's end: the epoch's model
    assert stopped_mid_epoch(view_of_snapshot(snap(Status.FINISHED))) is None
