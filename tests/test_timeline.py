"""Weights over time: the records a run keeps, checked against Keras and against direct counts."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.runs import RunError, load_run, read_test_predictions, read_timeline
from mlpdash.timeline import (
    SINCE_PREVIOUS,
    SINCE_START,
    WEIGHTS,
    EpochRecord,
    Timeline,
    all_layer_bands,
    answers_over_time,
    common_range,
    compact,
    epoch_name,
    epoch_when,
    first_layer_view,
    fixed_range,
    layer_bands,
    layer_names,
    layer_shown,
    learned,
    per_class_accuracy,
    play_step,
    stable_since,
    thinned,
    unit_norms,
    unit_over_time,
    units_on_page,
)
from mlpdash.training import Status, TrainingJob

# For a job that is built but never started (the validation pass below).
SMALL = TrainConfig(hidden=(32, 16), epochs=3, batch_size=128)


@pytest.fixture
def small_run(trained_run):
    """The session's small run (conftest): its finished job and last snapshot. The tests below count on
    its three epochs (records 0-3); its sizes they read from its config."""
    assert trained_run.config.epochs == 3
    return trained_run.job, trained_run.snapshot


def _count(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    counts = np.zeros((10, 10), np.int64)
    for t, p in zip(labels, predictions):
        counts[int(t), int(p)] += 1
    return counts


def test_compact_halves_weights_and_keeps_huge_ones_exact():
    weights = np.linspace(-1, 1, 12, dtype=np.float32)
    assert compact(weights).dtype == np.float16
    assert compact(weights * 1e6).dtype == np.float32  # beyond float16's 65504: inf otherwise


@pytest.mark.parametrize(("sizes", "max_count", "budget", "kept"), [
    ([1] * 5, 10, 100, [0, 1, 2, 3, 4]),  # within both: all of them
    ([1] * 6, 4, 100, [0, 2, 4, 5]),  # too many: every other one, the first and the newest stay
    ([1] * 9, 4, 100, [0, 4, 8]),  # still too many after one pass: again
    ([10] * 5, 10, 35, [0, 2, 4]),  # too many bytes
    ([50, 50], 1, 10, [0, 1]),  # two always stay
])
def test_thinning_keeps_the_first_and_the_newest(sizes, max_count, budget, kept):
    assert thinned(sizes, max_count, budget) == kept


def test_a_record_answers_as_the_keras_model_does(small_run, tiny_data):
    job, snap = small_run
    images = tiny_data.x_test.astype(np.float32) / 255.0
    keras_logits = job.predictor.logits(images)
    last = snap.timeline.records[-1]
    assert last.epoch == job.config.epochs
    # float16 weights: the logits move by a little, the answers (nearly) never.
    ours = last.network().logits(images)
    np.testing.assert_allclose(ours, keras_logits, atol=0.05 * np.abs(keras_logits).max())
    assert np.mean(ours.argmax(1) == keras_logits.argmax(1)) >= 0.99


def test_every_epoch_keeps_its_weights_answers_and_confusion(small_run, tiny_data):
    job, snap = small_run
    timeline = snap.timeline
    assert timeline.epochs == [0, 1, 2, 3]
    assert list(timeline.confusion_epochs) == [0, 1, 2, 3]
    labels = tiny_data.y_val
    for record, row in zip(timeline.records, ({}, *snap.history)):
        counts = _count(labels, record.predictions)
        np.testing.assert_array_equal(timeline.confusion(record.epoch), counts)
        assert record.predictions.dtype == np.uint8 and record.confidences.dtype == np.float16
        assert np.all((record.confidences >= 0.1) & (record.confidences <= 1.0))  # the top of ten
        # The record's bytes: float16 weights and three bytes a validation digit.
        assert record.nbytes == 2 * job.config.parameters + 3 * len(labels)
        if row:  # the epoch's row and its record come from the same validation pass
            assert row["val_accuracy"] == pytest.approx(np.trace(counts) / len(labels))
    np.testing.assert_allclose(per_class_accuracy(timeline.confusion(3)),
                               np.diag(_count(labels, timeline.records[-1].predictions))
                               / np.bincount(labels, minlength=10))
    assert timeline.per_class_accuracy().shape == (4, 10)
    # Step 0 is the model as initialised: about chance, far below the trained one.
    assert np.trace(timeline.confusion(0)) < np.trace(timeline.confusion(3))


def test_the_validation_metrics_are_what_keras_reports(small_run, tiny_data):
    job, snap = small_run
    model = job.predictor.model
    loss, accuracy = model.evaluate(tiny_data.x_val.astype(np.float32) / 255.0, tiny_data.y_val, verbose=0)
    assert snap.history[-1]["val_loss"] == pytest.approx(loss, rel=1e-4)
    assert snap.history[-1]["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_the_run_folder_holds_the_same_timeline(small_run):
    _, snap = small_run
    saved = read_timeline(snap.run_dir)
    assert saved.epochs == snap.timeline.epochs
    np.testing.assert_array_equal(saved.confusions, snap.timeline.confusions)
    for ours, theirs in zip(saved.records, snap.timeline.records):
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(ours.weights, theirs.weights))
        np.testing.assert_array_equal(ours.predictions, theirs.predictions)
        np.testing.assert_array_equal(ours.confidences, theirs.confidences)


def test_records_are_thinned_alike_in_memory_and_on_disk(tiny_data, tmp_path, monkeypatch):
    record_mb = (2 * TrainConfig(hidden=(16,)).parameters + 3 * len(tiny_data.y_val)) / 2**20
    monkeypatch.setenv("MLPDASH_TIMELINE_MB", str(3.5 * record_mb))  # room for three records
    job = TrainingJob(TrainConfig(hidden=(16,), epochs=5, batch_size=256), tiny_data, tmp_path)
    job.start().join(120)
    snap = job.snapshot()
    assert snap.status == Status.FINISHED, snap.error
    kept = snap.timeline.epochs
    # Three fit: 0,1,2 -> +3: 0,2,3 -> +4: 0,3,4 -> +5: 0,4,5 (every other one dropped, never the ends).
    assert kept == [0, 4, 5]
    assert read_timeline(snap.run_dir).epochs == kept
    assert sorted(os.listdir(snap.run_dir / "timeline")) == sorted(
        [f"epoch-{e:05d}.npz" for e in kept] + ["confusions.npz"])
    assert list(snap.timeline.confusion_epochs) == [0, 1, 2, 3, 4, 5]  # every epoch's, thinned or not
    assert snap.timeline.record(3).epoch == 0  # a thinned epoch: the newest kept before it


def test_a_run_saved_before_the_timeline_still_loads_and_says_it_has_none(small_run, tmp_path):
    _, snap = small_run
    old = tmp_path / snap.run_dir.name
    shutil.copytree(snap.run_dir, old)
    shutil.rmtree(old / "timeline")
    assert read_timeline(old) is None
    assert load_run(old).metrics == load_run(snap.run_dir).metrics


def test_a_damaged_record_is_named(small_run, tmp_path):
    _, snap = small_run
    run = tmp_path / snap.run_dir.name
    shutil.copytree(snap.run_dir, run)
    record = run / "timeline" / "epoch-00001.npz"
    arrays = dict(np.load(record))
    arrays["w0"] = arrays["w0"][:, :5]  # a layer of the wrong size
    np.savez(record, **arrays)
    with pytest.raises(RunError, match="epoch-00001.npz: the weights do not match"):
        read_timeline(run)
    arrays = dict(np.load(snap.run_dir / "timeline" / "epoch-00001.npz"))
    arrays["predictions"] = arrays["predictions"] + 20  # answers that are no digit
    np.savez(record, **arrays)
    with pytest.raises(RunError, match="unreadable validation answers"):
        read_timeline(run)
    arrays = dict(np.load(snap.run_dir / "timeline" / "epoch-00001.npz"))
    arrays["confidences"] = arrays["confidences"] * np.float16(np.nan)  # no probability at all
    np.savez(record, **arrays)
    with pytest.raises(RunError, match="unreadable validation answers"):
        read_timeline(run)
    record.write_bytes(b"not an archive")
    with pytest.raises(RunError, match="epoch-00001.npz"):
        read_timeline(run)
    shutil.copy(snap.run_dir / "timeline" / "epoch-00001.npz", record)
    for epoch in range(100, 140):  # more records than a run ever keeps
        shutil.copy(record, run / "timeline" / f"epoch-{epoch:05d}.npz")
    with pytest.raises(RunError, match="more than a run keeps"):
        read_timeline(run)


def test_a_run_that_has_not_recorded_its_start_has_no_timeline_yet(small_run, tmp_path):
    _, snap = small_run
    run = tmp_path / snap.run_dir.name
    shutil.copytree(snap.run_dir, run)
    for file in (run / "timeline").iterdir():
        file.unlink()
    assert read_timeline(run) is None


def test_a_stop_during_the_validation_pass_ends_it_between_batches(tmp_path):
    job = TrainingJob(SMALL, None, tmp_path)
    calls = []

    class StopsAfterOneBatch:
        def logits(self, images):
            calls.append(len(images))
            job._stop.set()
            return np.zeros((len(images), 10), np.float32)

    job.recorder.set_validation(StopsAfterOneBatch(), np.zeros((5000, 28, 28), np.float32), np.zeros(5000, np.int64))
    assert job.recorder.validate(1, None) is None
    assert calls == [2048]  # one batch, then the stop was seen: no second batch


def test_the_first_layer_as_weights_and_as_change(small_run):
    _, snap = small_run
    timeline = snap.timeline
    first, second, last = (np.asarray(timeline.record(e).weights[0], np.float32) for e in (0, 2, 3))
    np.testing.assert_array_equal(first_layer_view(timeline, 3, WEIGHTS), last)
    np.testing.assert_array_equal(first_layer_view(timeline, 3, SINCE_START), last - first)
    np.testing.assert_array_equal(first_layer_view(timeline, 3, SINCE_PREVIOUS), last - second)
    assert not np.any(first_layer_view(timeline, 0, SINCE_PREVIOUS))  # step 0 has no epoch before
    unit = unit_over_time(timeline, 5, SINCE_START)
    np.testing.assert_array_equal(unit[3], (last - first)[:, 5])
    assert unit.shape == (4, 784) and not np.any(unit[0])
    width = snap.config.hidden[0]
    with pytest.raises(ValueError, match=f"unit {width} is out of range"):
        unit_over_time(timeline, width)
    with pytest.raises(ValueError, match="unknown view"):
        first_layer_view(timeline, 1, "sideways")


def test_the_bands_are_each_records_percentiles(small_run):
    _, snap = small_run
    bands = layer_bands(snap.timeline, 1)
    assert bands.shape == (4, 7)
    values = np.sort(np.asarray(snap.timeline.records[2].weights[2], np.float32).ravel())
    # The median of an even count: the mean of the middle two of the sorted weights.
    assert bands[2, 3] == pytest.approx((values[len(values) // 2 - 1] + values[len(values) // 2]) / 2)
    assert bands[2, 0] >= values[0] and bands[2, 6] <= values[-1]
    assert np.all(np.diff(bands, axis=1) >= 0)


def test_every_epochs_model_answers_a_digit_as_keras_did_then(small_run, tiny_data):
    job, snap = small_run
    image = tiny_data.x_test[3].astype(np.float32) / 255.0
    answers = answers_over_time(snap.timeline, image)
    assert answers.shape == (4, 10)
    np.testing.assert_allclose(answers.sum(axis=1), 1.0, rtol=1e-5)
    now = job.predictor.probabilities(image[None])[0]
    np.testing.assert_allclose(answers[-1], now, atol=0.02)  # float16 weights, the final model's answer


def test_a_runs_test_answers_are_read_back_and_checked(small_run, tmp_path):
    _, snap = small_run
    saved = read_test_predictions(snap.run_dir)
    np.testing.assert_array_equal(saved["predictions"], snap.report.predictions)
    np.testing.assert_array_equal(saved["labels"], snap.report.labels)
    run = tmp_path / snap.run_dir.name
    shutil.copytree(snap.run_dir, run)
    np.savez(run / "test_predictions.npz", labels=saved["labels"], predictions=saved["predictions"] + 10,
             confidences=saved["confidences"])
    with pytest.raises(RunError, match="test_predictions.npz: unreadable test predictions"):
        read_test_predictions(run)
    (run / "test_predictions.npz").unlink()
    assert read_test_predictions(run) is None


# --- what the page shows, computed headless


def _made_up(epochs: list[int], units: int = 4) -> Timeline:
    """A 784-`units`-10 model whose first-layer weights at epoch e are all e + 1, except unit 0's,
    which stay at 1 (it never learns)."""
    records = []
    for epoch in epochs:
        first = np.full((784, units), epoch + 1.0, np.float32)
        first[:, 0] = 1.0
        weights = [first, np.zeros(units, np.float32), np.ones((units, 10), np.float32), np.zeros(10, np.float32)]
        records.append(EpochRecord.of(epoch, weights, np.zeros(5, np.uint8), np.ones(5, np.float16)))
    return Timeline(tuple(records), np.array(epochs, np.int64), np.zeros((len(epochs), 10, 10), np.int64))


def test_epochs_are_named_as_the_page_names_them():
    assert [epoch_name(e) for e in (0, 1, 12)] == ["step 0", "epoch 1", "epoch 12"]
    assert [epoch_when(e) for e in (0, 3)] == ["at step 0", "after epoch 3"]


def test_a_long_run_that_keeps_every_other_epoch_is_known():
    assert _made_up([0, 1, 2, 3]).keeps_every_epoch
    assert not _made_up([0, 2, 4, 5]).keeps_every_epoch
    assert not _made_up([1, 2]).keeps_every_epoch  # step 0 is missing


@pytest.mark.parametrize(("epochs", "current", "step"), [
    ([0, 1, 2, 3], 0, (1, False)),
    ([0, 1, 2, 3], 2, (3, True)),  # the newest: the play ends there
    ([0, 1, 2, 3], 3, (3, True)),
    ([0, 2, 4, 6], 1, (2, False)),  # an epoch the thinned run does not keep: the next kept one
    ([0], 0, (0, True)),
])
def test_playing_steps_through_the_kept_epochs_and_stops_at_the_newest(epochs, current, step):
    assert play_step(epochs, current) == step


@pytest.mark.parametrize(("answers", "since"), [
    ([3, 5, 5, 7, 7], 4),  # the answer 7 since the fourth kept epoch, epoch 4
    ([7, 7, 7, 7, 7], 0),
    ([7, 7, 7, 7, 1], 6),
    ([1, 7, 1, 7, 7], 4),  # only the last stretch counts
])
def test_the_answer_is_stable_since_the_last_change(answers, since):
    assert stable_since([0, 1, 2, 4, 6], np.array(answers)) == since


def test_when_it_learned_reads_the_kept_record_of_an_epoch():
    timeline = _made_up([0, 2, 4])
    probabilities = np.full((3, 10), 0.05)
    probabilities[0, 1], probabilities[1, 8], probabilities[2, 8] = 0.55, 0.6, 0.9
    at_three = learned(timeline, probabilities, 3)  # not kept: the record of epoch 2 answers
    assert (at_three.answer, at_three.final, at_three.since) == (8, 8, 2)
    assert at_three.probability == pytest.approx(0.6)
    at_start = learned(timeline, probabilities, 0)
    assert (at_start.answer, at_start.probability) == (1, pytest.approx(0.55))


def test_one_colour_range_for_every_epoch_ignores_the_views_without_change():
    timeline = _made_up([0, 1, 2])
    largest = lambda values: float(np.abs(values).max())  # noqa: E731
    assert fixed_range(timeline, WEIGHTS, largest) == 3.0
    assert fixed_range(timeline, SINCE_START, largest) == 2.0  # step 0's change since itself is none
    assert fixed_range(_made_up([0]), SINCE_START, largest) == 1.0  # nothing has changed yet
    assert common_range([np.zeros(3), np.array([0.0, -0.5])], largest) == 0.5


def test_every_layer_has_its_bands_and_its_name():
    timeline = _made_up([0, 1])
    bands = all_layer_bands(timeline)
    assert [b.shape for b in bands] == [(2, 7), (2, 7)]
    np.testing.assert_array_equal(bands[1], layer_bands(timeline, 1))
    assert layer_names(timeline) == ["layer 1 (784→4)", "output (4→10)"]


def test_a_units_norm_over_time_is_the_length_of_its_weights():
    timeline = _made_up([0, 1, 2])
    np.testing.assert_allclose(unit_norms(timeline, 2), [1 * 28.0, 2 * 28.0, 3 * 28.0])  # sqrt(784) = 28
    np.testing.assert_allclose(unit_norms(timeline, 0), [28.0] * 3)


def test_the_first_layer_shown_is_its_change_with_the_most_changed_units_first():
    initial = np.zeros((784, 4), np.float32)
    kernel = np.zeros((784, 4), np.float16)
    kernel[0] = [0.5, 2.0, 0.5, 1.0]
    values, order = layer_shown(kernel, initial + 0.25)
    assert values.dtype == np.float32 and values[0, 1] == 1.75 and values[1, 0] == -0.25
    assert order.tolist() == [1, 3, 0, 2]  # by the size of the change; a tie by number
    raw, by_size = layer_shown(kernel)
    np.testing.assert_array_equal(raw, kernel.astype(np.float32))
    assert by_size.tolist() == [1, 3, 0, 2]
    kernel[0, 3] = np.nan  # a NaN weight counts as no weight: its unit is now the least changed
    assert layer_shown(kernel)[1].tolist() == [1, 0, 2, 3]


def test_the_units_grid_shows_a_page_at_a_time_by_change_or_by_number():
    order = np.array([4, 0, 3, 1, 2])
    assert units_on_page(order, True, 1, 2).tolist() == [4, 0]
    assert units_on_page(order, True, 3, 2).tolist() == [2]
    assert units_on_page(order, False, 2, 2).tolist() == [2, 3]

