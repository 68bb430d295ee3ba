"""Run folders: atomic writes, the listing, reloading, and damaged folders."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.files import write_bytes_atomic
from mlpdash.runs import (
    RunError,
    RunWriter,
    list_runs,
    load_run,
    read_info,
)
from mlpdash.timeline import compact

CONFIG = TrainConfig(hidden=(16,), epochs=2)
ROWS = [
    {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.5},
    {"epoch": 2, "loss": 0.3, "accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.88, "seconds": 1.4},
]


def write_run(root, stopped=False):
    writer = RunWriter(root, CONFIG, "sample")
    writer.write_epoch(ROWS, None)
    for epoch in range(3):
        writer.write_snapshot(np.full((784, 16), epoch, np.float32), epoch)
    writer.write_test_results(
        {"labels": np.array([1, 2], np.uint8), "predictions": np.array([1, 3], np.uint8),
         "confidences": np.array([0.9, 0.6], np.float32)},
        {"index": [1], "label": [2], "prediction": [3], "confidence": [0.6]},
    )
    writer.write_model_weights(model_weights())
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": stopped, "epochs_completed": 2})
    writer.close()
    return writer.path


def model_weights(hidden=16):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(784, hidden)), np.zeros(hidden), rng.normal(size=(hidden, 10)), np.zeros(10)]


def test_round_trip(tmp_path):
    path = write_run(tmp_path)
    run = load_run(path)
    assert run.info.status == "finished" and run.info.config == CONFIG
    assert run.info.data_source == "sample"
    assert run.metrics == ROWS
    assert run.kernels.shape == (3, 784, 16) and run.kernels.dtype == np.float16  # as stored
    assert run.kernels[2, 0, 0] == 2.0 and list(run.kernel_epochs) == [0, 1, 2]
    assert run.mistakes["prediction"] == [3]
    lines = (path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    assert not [p for p in path.iterdir() if ".tmp" in p.name]  # no temporary left behind


def test_listing_is_newest_first_and_reports_every_state(tmp_path):
    finished = write_run(tmp_path)
    stopped = write_run(tmp_path, stopped=True)
    training = RunWriter(tmp_path, CONFIG, "sample")  # its lock is held: still training
    training.write_epoch(ROWS[:1], None)
    killed = RunWriter(tmp_path, CONFIG, "sample")
    killed.write_epoch(ROWS, None)
    os.close(killed._lock_fd)  # what a killed process leaves: the lock file, held by no one
    failed = RunWriter(tmp_path, CONFIG, "sample")
    failed.write_failure("RuntimeError: boom")
    failed.close()
    diverged = RunWriter(tmp_path, CONFIG, "sample")
    diverged.write_failure("Diverged: the loss reached 1e+19", "diverged")
    diverged.close()
    broken = tmp_path / "20200101-000000-bad"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    empty = tmp_path / "20200101-000001-empty"
    empty.mkdir()
    runs = {r.path: r for r in list_runs(tmp_path)}
    assert runs[finished].status == "finished"
    assert runs[stopped].status == "stopped"
    assert runs[training.path].status == "training" and runs[training.path].epochs_completed == 1
    assert runs[killed.path].status == "interrupted"
    assert runs[killed.path].label == "interrupted after 2 epochs"
    assert runs[failed.path].status == "failed" and runs[failed.path].error == "RuntimeError: boom"
    assert runs[diverged.path].status == "diverged" and "1e+19" in runs[diverged.path].error
    assert runs[broken].status == "damaged" and "not valid JSON" in runs[broken].error
    assert str(broken / "config.json") in runs[broken].error
    assert runs[empty].status == "damaged" and "missing" in runs[empty].error
    order = [r.path for r in list_runs(tmp_path)]
    assert order[:6] == [diverged.path, failed.path, killed.path, training.path, stopped, finished]
    training.close()


def test_a_run_read_by_two_readers_at_once_is_not_taken_for_one_training(tmp_path):
    """Two pages list the runs at the same moment: neither may read the other's look at a killed
    run's lock as a writer holding it."""
    from mlpdash.runs.reader import _probe_lock

    killed = RunWriter(tmp_path, CONFIG, "sample")
    killed.write_epoch(ROWS, None)
    os.close(killed._lock_fd)  # what a killed process leaves: the lock file, held by no one
    with _probe_lock(killed.path) as training:
        assert not training
        assert read_info(killed.path).status == "interrupted"
    training = RunWriter(tmp_path, CONFIG, "sample")  # a writer is still seen as one
    with _probe_lock(training.path) as held:
        assert held
    training.close()


def test_damaged_files_name_themselves(tmp_path):
    path = write_run(tmp_path)
    (path / "summary.json").write_text("[1, 2")
    assert read_info(path).status == "damaged"
    with pytest.raises(RunError, match="summary.json"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "metrics.jsonl").write_text('{"epoch": 1}\n')
    with pytest.raises(RunError, match="metrics.jsonl: line 1"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "snapshots" / "kernel-00001.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(RunError, match="kernel-00001.npy"):
        load_run(path)
    path = write_run(tmp_path)
    (path / "config.json").write_text(json.dumps({"config": {"epochs": 0}, "data_source": "x"}))
    info = read_info(path)
    assert info.status == "damaged" and "epochs must be" in info.error


def test_a_run_without_a_model_says_so(tmp_path):
    path = write_run(tmp_path)
    (path / "model.weights.npz").unlink()
    with pytest.raises(RunError, match="no saved model"):
        load_run(path).load_model()


def test_missing_root_lists_nothing(tmp_path):
    assert list_runs(tmp_path / "nope") == []


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("mlpdash.files.os.replace", broken_replace)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# --- hostile and damaged folders -----------------------------------------------------------------


def test_hostile_config_files_are_listed_as_damaged_without_hanging_or_exhausting_memory(tmp_path):
    deep = write_run(tmp_path)
    (deep / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    fifo = write_run(tmp_path)
    (fifo / "config.json").unlink()
    os.mkfifo(fifo / "config.json")
    endless = write_run(tmp_path)
    (endless / "config.json").unlink()
    (endless / "config.json").symlink_to("/dev/zero")
    huge = write_run(tmp_path)
    (huge / "config.json").write_text(" " * (2 << 20) + "{}")
    good = write_run(tmp_path)
    started = time.monotonic()
    runs = {r.path: r for r in list_runs(tmp_path)}
    assert time.monotonic() - started < 5
    assert runs[deep].status == "damaged" and "nested too deeply" in runs[deep].error
    assert runs[fifo].status == "damaged" and "not a regular file" in runs[fifo].error
    assert runs[endless].status == "damaged" and "symbolic link" in runs[endless].error
    assert runs[huge].status == "damaged" and "more than the 1,048,576 allowed" in runs[huge].error
    assert runs[good].status == "finished"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("test_accuracy", "0.99", "test_accuracy must be a number from 0 to 1"),
        ("test_accuracy", 7, "test_accuracy must be a number from 0 to 1"),
        ("epochs_completed", -1, "epochs_completed must be an integer"),
        ("stopped_early", "no", "stopped_early must be true or false"),
        ("confusion_matrix", [[1, 2]], "confusion_matrix must be 10 rows of 10 counts"),
        ("per_class_accuracy", ["a"] * 10, "per_class_accuracy must be 10 numbers"),
        ("outcome", "won", "outcome must be one of"),
    ],
)
def test_a_summary_with_wrong_types_is_damaged_and_names_the_field(tmp_path, field, value, words):
    path = write_run(tmp_path)
    summary = json.loads((path / "summary.json").read_text())
    (path / "summary.json").write_text(json.dumps({**summary, field: value}))
    info = read_info(path)
    assert info.status == "damaged" and words in info.error and "summary.json" in info.error


def test_a_folder_named_for_the_future_never_sorts_first_or_answers(tmp_path):
    real = write_run(tmp_path)
    planted = tmp_path / "20990101-000000-aaaaaa"
    shutil.copytree(real, planted)
    config = json.loads((planted / "config.json").read_text())
    del config["created"]  # as a run of the first release, dated by its name only
    (planted / "config.json").write_text(json.dumps(config))
    future = write_run(tmp_path)
    config = json.loads((future / "config.json").read_text())
    (future / "config.json").write_text(json.dumps({**config, "created": time.time() + 10 * 365 * 86400}))
    runs = list_runs(tmp_path)
    by_path = {r.path: r for r in runs}
    assert by_path[planted].status == "damaged" and "future" in by_path[planted].error
    assert by_path[future].status == "damaged" and "created must be a time in the past" in by_path[future].error
    newest_answering = next(r for r in runs if r.can_answer)
    assert newest_answering.path == real


def test_snapshots_never_overflow_to_infinity(tmp_path):
    writer = RunWriter(tmp_path, CONFIG, "sample")
    kernel = np.full((784, 16), 0.5, np.float32)
    kernel[0, 0] = 3e5  # beyond float16's 65504
    writer.write_snapshot(kernel, 0)
    writer.write_snapshot(np.full((784, 16), 0.25, np.float32), 1)
    writer.close()
    kernels = load_run(writer.path).kernels
    assert np.isfinite(kernels).all() and kernels[0, 0, 0] == 3e5 and kernels[1, 0, 0] == 0.25
    assert compact(kernel).dtype == np.float32
    assert compact(kernel / 1e5).dtype == np.float16


def test_a_run_of_the_first_release_still_loads(tmp_path):
    # Its layout: no creation time or lock, first-layer snapshots in one weights.npz.
    path = tmp_path / "20261101-120000-0a1b2c"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"config": CONFIG.to_dict(), "data_source": "sample"}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    kernels = np.stack([np.full((784, 16), i, np.float16) for i in range(3)])
    np.savez(path / "weights.npz", kernels=kernels, epochs=np.array([0, 1, 2], np.int32))
    (path / "summary.json").write_text(json.dumps({"test_accuracy": 0.9, "stopped_early": False,
                                                   "epochs_completed": 2, "mistakes": 3}))
    [info] = list_runs(tmp_path)
    assert info.status == "finished" and info.summary["test_accuracy"] == 0.9
    assert info.created == time.mktime((2026, 11, 1, 12, 0, 0, 0, 0, -1))
    run = load_run(path)
    assert run.kernels.shape == (3, 784, 16) and list(run.kernel_epochs) == [0, 1, 2]
    assert run.metrics == ROWS


def test_a_huge_integer_or_count_is_damage_not_a_crash(tmp_path):
    giant = "1" + "0" * 5000  # json refuses ints over 4,300 digits with a plain ValueError
    in_summary = write_run(tmp_path)
    (in_summary / "summary.json").write_text('{"epochs_completed": %s}' % giant)
    in_config = write_run(tmp_path)
    (in_config / "config.json").write_text('{"config": {"epochs": %s}}' % giant)
    in_metrics = write_run(tmp_path)
    (in_metrics / "metrics.jsonl").write_text('{"epoch": %s}\n' % giant)
    huge_counts = write_run(tmp_path)
    summary = json.loads((huge_counts / "summary.json").read_text())
    (huge_counts / "summary.json").write_text(json.dumps({**summary, "confusion_matrix": [[10**20] * 10] * 10}))
    runs = {r.path: r for r in list_runs(tmp_path)}
    for path in (in_summary, in_config, huge_counts):
        assert runs[path].status == "damaged", runs[path]
    with pytest.raises(RunError, match="metrics.jsonl: line 1"):
        load_run(in_metrics)


def test_a_snapshot_header_declaring_terabytes_is_refused_before_allocating(tmp_path):
    path = write_run(tmp_path)
    file = path / "snapshots" / "kernel-00001.npy"
    header = file.read_bytes()[:128].replace(b"(784, 16)", b"(%d,)  " % 2**45)
    file.write_bytes(header)
    with pytest.raises(RunError, match="header declares"):
        load_run(path)


def test_snapshots_together_are_capped_by_the_budget(tmp_path, monkeypatch):
    path = write_run(tmp_path)
    for epoch in range(3, 40):
        np.save(path / "snapshots" / f"kernel-{epoch:05d}.npy", np.zeros((784, 16), np.float16))
    monkeypatch.setenv("MLPDASH_SNAPSHOT_MB", str(10 * 784 * 16 * 2 / 2**20))  # read cap: 20 kernels
    with pytest.raises(RunError, match="40 snapshots .* more than the"):
        load_run(path)


# --- names, notes and deletion -----------------------------------------------------------------


def _finished_run(root):
    from mlpdash.runs import RunWriter

    writer = RunWriter(root, TrainConfig(hidden=(4,), epochs=1), "sample")
    writer.write_summary({"test_accuracy": 0.5, "stopped_early": False})
    writer.close()
    return writer.path


def test_a_run_keeps_its_name_and_note_and_bad_ones_are_refused(tmp_path):
    from mlpdash.runs import NOTES_FILE, read_info, set_notes

    path = _finished_run(tmp_path)
    set_notes(path, "  wide net ", "lr too high?\nretry with 1e-4")
    info = read_info(path)
    assert (info.name, info.note, info.title) == ("wide net", "lr too high?\nretry with 1e-4", "wide net")
    for name, note, message in [("a\nb", "", "line breaks"), ("x" * 81, "", "at most 80"), ("", "\x00", "control")]:
        with pytest.raises(ValueError, match=message):
            set_notes(path, name, note)
    assert read_info(path).name == "wide net"  # unchanged by the refused ones
    (path / NOTES_FILE).write_text('{"name": 3}')  # damaged: the run still lists, unnamed
    info = read_info(path)
    assert info.status == "finished" and info.title == path.name


def test_a_deleted_run_waits_in_the_trash_for_a_day_and_can_be_restored(tmp_path):
    from mlpdash.runs import TRASH_KEEP_S, empty_trash, restore_run, trash_run, trashed_runs

    path = _finished_run(tmp_path)
    now = time.time()
    trashed = trash_run(path, now=now)
    assert not path.exists() and list_runs(tmp_path) == []  # listing empties the trash of older ones only
    assert [t.run_id for t in trashed_runs(tmp_path)] == [path.name]
    assert empty_trash(tmp_path, now=now + TRASH_KEEP_S - 1) == 0
    assert restore_run(trashed) == path and [r.run_id for r in list_runs(tmp_path)] == [path.name]
    trash_run(path)  # now: removed by the listing once a day has passed
    assert empty_trash(tmp_path, now=time.time() + TRASH_KEEP_S + 1) == 1
    assert trashed_runs(tmp_path) == [] and list_runs(tmp_path) == []


def test_a_run_being_trained_cannot_be_deleted(tmp_path):
    from mlpdash.runs import RunError, RunWriter, trash_run

    writer = RunWriter(tmp_path, TrainConfig(hidden=(4,), epochs=1), "sample")
    try:
        with pytest.raises(RunError, match="being trained"):
            trash_run(writer.path)
    finally:
        writer.close()
    with pytest.raises(RunError, match="not a run folder"):
        trash_run(tmp_path / "nothing")


def test_a_trash_that_is_a_link_is_neither_read_nor_emptied(tmp_path):
    from mlpdash.runs import TRASH_DIR, empty_trash, trash_run, trashed_runs

    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "x@1000000000").mkdir(parents=True)
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / TRASH_DIR).symlink_to(elsewhere)
    assert trashed_runs(runs) == [] and empty_trash(runs) == 0
    assert (elsewhere / "x@1000000000").is_dir()
    with pytest.raises(RunError, match="is a link"):
        trash_run(_finished_run(runs))


# --- hostile run folders ---------------------------------------------------------------------------


def _run_with_timeline(root):
    from mlpdash.timeline import EpochRecord

    path = write_run(root)
    writer = RunWriter.__new__(RunWriter)  # the folder's own writer has closed: write a record as it did
    writer.path, writer.config, writer._lock_fd = path, CONFIG, None
    writer.write_record(EpochRecord.of(0, model_weights(), np.zeros(50, np.uint8), np.full(50, 0.5)))
    return path


@pytest.mark.parametrize("file", ["model.weights.npz", "test_predictions.npz", "timeline/epoch-00000.npz",
                                  "timeline/confusions.npz"])
def test_a_compressed_bomb_in_any_archive_of_a_run_is_refused_unpacked(tmp_path, file):
    # A few hundred bytes of bzip2 that declare 2,000 bytes and unpack to 64 MB (6 GB took the page
    # to 3.6 GB before): refused by its compression method, before anything is unpacked.
    from hostile import bomb, peak_bytes

    from mlpdash.runs import load_run_model, read_test_predictions, read_timeline

    path = _run_with_timeline(tmp_path)
    name = "w0.npy" if "epoch" in file or "weights" in file else "labels.npy"
    (path / file).write_bytes(bomb(name))
    readers = {"model.weights.npz": load_run_model, "test_predictions.npz": read_test_predictions,
               "timeline/epoch-00000.npz": read_timeline, "timeline/confusions.npz": read_timeline}

    def read():
        with pytest.raises(RunError, match=r"compressed with method 12, not stored or deflate"):
            readers[file](path)

    assert peak_bytes(read) < 16 << 20
    info = read_info(path)
    if file == "model.weights.npz":  # the listing reads a model's weights: the run is damaged
        assert info.status == "damaged" and "model.weights.npz" in info.error
    else:
        assert info.status == "finished"  # its model still answers


def test_a_run_whose_weights_are_not_finite_is_listed_as_damaged_and_never_answers(tmp_path):
    from hostile import nan_weights

    from mlpdash.runs import load_run_model, read_timeline

    good, bad = write_run(tmp_path), write_run(tmp_path)
    nan_weights(bad)
    runs = {r.path: r for r in list_runs(tmp_path)}
    assert runs[good].status == "finished" and runs[good].can_answer
    assert runs[bad].status == "damaged" and not runs[bad].can_answer
    assert "NaN or infinite" in runs[bad].error and "model.weights.npz" in runs[bad].error
    with pytest.raises(RunError, match="NaN or infinite"):
        load_run_model(bad)
    inf = _run_with_timeline(tmp_path)
    record = inf / "timeline" / "epoch-00000.npz"
    with np.load(record) as arrays:
        changed = {key: arrays[key] for key in arrays.files}
    changed["w2"] = np.full_like(changed["w2"], np.inf)
    np.savez(record, **changed)
    with pytest.raises(RunError, match="epoch-00000.npz: 160 weights of w2 are NaN or infinite"):
        read_timeline(inf)


def test_a_weights_file_is_read_once_per_version_by_the_listing(tmp_path, monkeypatch):
    import mlpdash.runs.weights as weights
    from mlpdash.files import write_npz_atomic

    path = write_run(tmp_path)
    reads = []
    real = weights.read_model_weights
    # Patched where the listing's cached check looks it up.
    monkeypatch.setattr(weights, "read_model_weights", lambda *a: reads.append(a) or real(*a))
    for _ in range(3):
        assert list_runs(tmp_path)[0].status == "finished"
    assert len(reads) == 1  # cached by the file's inode, size and time
    write_npz_atomic(path / "model.weights.npz", compress=False,
                     **{f"w{i}": w.astype(np.float32) for i, w in enumerate(model_weights())})
    assert list_runs(tmp_path)[0].status == "finished" and len(reads) == 2  # a new version is read


def test_leftovers_that_cannot_be_removed_never_break_the_listing_or_damage_a_run(tmp_path, monkeypatch):
    # A runs folder copied read-only, holding a crash leftover: an abandoned hidden run folder and a
    # temporary file inside a good run. Root ignores permissions, so the refusal is the file system's
    # answer as a read-only folder gives it.
    import errno

    import mlpdash.runs.reader as reader

    good = write_run(tmp_path)
    (good / ".model.weights.npz.0123abcd.tmp").write_bytes(b"half a write")
    abandoned = tmp_path / ".20260101-000000-abcdef.tmp"
    abandoned.mkdir()
    (abandoned / "training.lock").write_text("")
    os.utime(abandoned, (time.time() - 3600,) * 2)

    def read_only(path):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(reader, "remove_entry", read_only)  # the listing's tidying of leftovers
    [info] = list_runs(tmp_path)
    assert info.path == good and info.status == "finished", info.error
    assert abandoned.exists() and (good / ".model.weights.npz.0123abcd.tmp").exists()
