"""The focus: one rule picks the run every view is about, and what each view reads of it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.server import Server

QUICK = TrainConfig(hidden=(16,), epochs=1, batch_size=64)


def test_the_answering_model_is_the_job_then_the_newest_saved_run(tmp_path):
    server = Server.open(tmp_path)
    assert not server.focus().has_model() and server.focus().predictor() is None
    job = server.jobs.start(QUICK, "sample")
    job.join(60)
    assert server.focus().has_model() and server.focus().predictor() is job.predictor
    fresh = Server.open(tmp_path)  # a restarted server: no job, but the run on disk
    assert fresh.focus().has_model()
    predictor = fresh.focus().predictor()
    x = np.random.default_rng(0).random((2, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(predictor.logits(x), job.predictor.logits(x), atol=1e-5)
    assert fresh.store.predictor(job.snapshot().run_dir) is predictor  # loaded once


def test_the_model_in_focus_is_the_jobs_then_a_picked_runs_and_its_map_is_fitted_once(tmp_path, sample_data):
    from mlpdash.model import to_model_input
    from mlpdash.runs import RunError

    server = Server.open(tmp_path)
    assert server.focus().model() is None
    job = server.jobs.start(QUICK, "sample")
    assert job.join(60)
    focus = server.focus().model()
    images = to_model_input(sample_data.x_test[:20])
    np.testing.assert_allclose(focus.network.logits(images), job.predictor.logits(images), rtol=1e-4, atol=1e-4)
    assert focus.title.startswith("The current run") and focus.data_spec == "sample"
    first = server.focus().hidden_map(focus)
    assert server.focus().hidden_map(server.focus().model()) is first  # same model state: not refitted
    assert len(first.points) == len(sample_data.x_test)
    again = server.jobs.start(QUICK, "sample")  # a new job: a new map, whatever id() the job object got
    assert again.join(60)
    assert server.focus().model().state[:2] != focus.state[:2]
    picked = server.focus(job.snapshot().run_dir).model()
    assert picked.title == f"Saved run {job.snapshot().run_dir.name}" and picked.state != focus.state
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    with pytest.raises(RunError):
        server.focus(empty).model()


def test_the_timeline_and_the_answers_in_focus_come_from_the_job_or_a_picked_run(tmp_path, sample_data):
    import shutil

    from mlpdash.runs import RunError

    server = Server.open(tmp_path)
    assert server.focus().timeline() is None
    answers, _, _, missing = server.focus().test_answers()
    assert answers is None and missing == "no run yet"
    job = server.jobs.start(TrainConfig(hidden=(16,), epochs=2, batch_size=256), "sample")
    assert job.join(60)
    live = server.focus().timeline()
    assert live.title == "The current run" and live.timeline.epochs == [0, 1, 2] and live.missing is None
    answers, title, spec, _ = server.focus().test_answers()
    report = job.snapshot().report
    assert title == "The current run" and spec == "sample" and answers.split == "test"
    np.testing.assert_array_equal(answers.confusion, report.confusion)
    validation = server.focus().validation_answers(live, 1)
    assert validation.split == "validation" and len(validation.labels) == len(sample_data.y_val)
    np.testing.assert_array_equal(validation.confusion, live.timeline.confusion(1))
    # The same from the run folder, as a picked run.
    run = job.snapshot().run_dir
    saved = server.focus(run).timeline()
    assert saved.title == f"Saved run {run.name}" and saved.timeline.epochs == [0, 1, 2]
    answers, *_ = server.focus(run).test_answers()
    np.testing.assert_array_equal(answers.predictions, report.predictions)
    # A run from before the timeline: it says so instead of failing.
    old = tmp_path / f"{run.name[:-6]}abcdef"
    shutil.copytree(run, old)
    shutil.rmtree(old / "timeline")
    (old / "test_predictions.npz").unlink()
    before = server.focus(old).timeline()
    assert before.timeline is None and "before mlpdash recorded every layer" in before.missing
    answers, _, _, missing = server.focus(old).test_answers()
    assert answers is None and missing == "this run's test answers were not saved"
    # Answers that do not fit the data's validation split are refused, not shown wrong.
    with pytest.raises(RunError, match="answers for 10 validation digits"):
        server.focus().validation_answers(dataclasses.replace(live, timeline=_shortened(live.timeline)), 1)
    counts = live.timeline.confusions.copy()
    counts[:, 0, 0] += 7  # seven more 0s than this data's validation split has
    other = dataclasses.replace(live.timeline, confusions=counts)
    with pytest.raises(RunError, match="not those of sample"):
        server.focus().validation_answers(dataclasses.replace(live, timeline=other), 1)


def _shortened(timeline):
    from mlpdash.timeline import EpochRecord, Timeline

    records = tuple(EpochRecord(r.epoch, r.weights, r.predictions[:10], r.confidences[:10]) for r in timeline.records)
    return Timeline(records, timeline.confusion_epochs, timeline.confusions)


def test_a_run_that_cannot_answer_never_becomes_the_charts_run_while_another_answers(tmp_path):
    """One rule for every view: with no run picked and no job, the newest saved run that can answer
    drawings is the charts', the result's, the drawing's and the explanation's, even when a newer
    folder (tested, but without its weights) lists first."""
    import shutil

    trained = Server.open(tmp_path).jobs
    job = trained.start(QUICK, "sample")
    assert job.join(60)
    good = job.snapshot().run_dir
    newer = tmp_path / f"{good.name[:-6]}zzzzzz"  # the same time, so it sorts as the newer one
    shutil.copytree(good, newer)
    for name in ("model.weights.npz", "model.keras"):  # its weights, in either format
        (newer / name).unlink()
    server = Server.open(tmp_path)  # a restarted server: no job
    runs = server.jobs.runs()
    assert runs[0].path == newer and runs[0].summary and not runs[0].can_answer
    focus = server.focus()
    assert focus.run.path == good and not focus.run.live
    assert focus.run_view().run_dir == good
    assert focus.info().path == good
    assert focus.model().title == f"Saved run {good.name}"
    assert focus.predictor() is server.store.predictor(good)
    # Picked, the run that cannot answer is shown all the same, and says why it has no model.
    from mlpdash.runs import RunError

    picked = server.focus(newer)
    assert picked.run_view().run_dir == newer
    with pytest.raises(RunError, match="no model"):
        picked.model()


def test_the_current_job_is_in_focus_once_it_runs_and_a_job_that_made_no_run_gives_way(tmp_path):
    server = Server.open(tmp_path)
    job = server.jobs.start(QUICK, "sample")
    focus = server.focus()
    assert focus.run.live and focus.run.job is job  # from its first moment, loading included
    assert job.join(60)
    done = server.focus()
    assert done.run.live and done.run_view().live and done.info().path == job.snapshot().run_dir
    failed = server.jobs.start(QUICK, "idx:/no/such/folder")
    assert failed.join(60)
    after = server.focus()
    assert not after.run.live and after.run.path == job.snapshot().run_dir


def test_a_training_jobs_settled_model_is_its_newest_finished_epoch_until_it_ends(tmp_path):
    import time

    server = Server.open(tmp_path)
    job = server.jobs.start(TrainConfig(hidden=(16,), epochs=3, batch_size=64), "sample", pace=3000.0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        timeline = job.snapshot().timeline
        if timeline is not None and len(timeline.records) >= 2:
            break
        time.sleep(0.05)
    job.pause()
    try:
        focus = server.focus()
        record = focus.run.snapshot.timeline.records[-1]
        assert focus.run.snapshot.status.active and record.epoch >= 1
        settled = focus.settled_model()
        # The weights of that epoch's end, not of this instant, and a state named by the epoch.
        for kernel, kept in zip(settled.network.kernels, record.network().kernels, strict=True):
            np.testing.assert_array_equal(kernel, kept)
        assert settled.state[-2:] == ("epoch", record.epoch)
        assert settled.title.startswith(f"The current run after epoch {record.epoch}")
        assert focus.settled_epoch() == ("job", focus.run.serial, record.epoch)
    finally:
        job.resume()
    assert job.join(60)
    ended = server.focus()
    assert ended.settled_epoch() is None  # the watch of a page sees the end as a change
    assert ended.settled_model().state == ended.model().state
