"""The command line's promise under hostile input: an unwritable or misnamed target, a damaged zip or
CSV file, a full disk end with one line on stderr and exit code 2; Ctrl-C before training is one line
and exit code 130; JSON output is strict JSON; a bug is never passed off as bad input."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hostile import bad_crc, patched, zip_of

from mlpdash.cli import compare as compare_command
from mlpdash.cli import main
from mlpdash.cli.common import bad_input, json_line
from mlpdash.config import TrainConfig
from mlpdash.drawings import save
from mlpdash.runs import RunWriter

REPO = Path(__file__).resolve().parents[1]
CONFIG = TrainConfig(hidden=(16,), epochs=1)
# Folders that not even root can write in (permission bits do not stop root, who runs CI).
READ_ONLY = Path("/sys/kernel")
NO_FILES = Path("/proc")


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mlpdash: error: ") and "Traceback" not in captured.err
    return lines[0]


def saved_run(root: Path, weights: list[np.ndarray] | None = None, summary: dict | None = None) -> Path:
    """A run folder with a model (glorot-random weights unless given), written without training."""
    from mlpdash.model import build_network, network_weights

    writer = RunWriter(root, CONFIG, "sample")
    writer.write_model_weights(weights if weights is not None else network_weights(build_network(CONFIG)))
    if summary is not None:
        writer.write_summary(summary)
    writer.close()
    return writer.path


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return saved_run(tmp_path / "runs")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "seven.png"
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:8, 6:22] = 255
    pixels[8:24, 17:20] = 255
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def drawings(tmp_path) -> Path:
    """Four drawn ones: enough to fine-tune on (three at least)."""
    folder = tmp_path / "drawings"
    for left in (60, 100, 140, 180):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[60:220, left:left + 20] = 255
        save(folder, canvas, 1)
    return folder


@pytest.fixture
def archive(tmp_path, drawings) -> Path:
    path = tmp_path / "drawings.zip"
    assert main(["drawings", "export", str(path), "--folder", str(drawings)]) == 0
    return path


# --- targets that cannot be written, or are not what they are said to be --------------------------


def test_explain_out_that_cannot_be_written_is_named(run_dir, image, tmp_path, capsys):
    if not READ_ONLY.is_dir():
        pytest.skip(f"no {READ_ONLY} here")
    for out, words in [(READ_ONLY, f"--out {READ_ONLY}: cannot make files in it"),
                       (READ_ONLY / "attacks", f"--out {READ_ONLY / 'attacks'}: cannot make files in {READ_ONLY}"),
                       (image / "attacks", f"--out {image / 'attacks'} cannot be made: {image} is a file"),
                       (image, f"--out {image} is a file, not a folder")]:
        assert main(["explain", "--model", str(run_dir), "--attack", "3", "--out", str(out), str(image)]) == 2
        assert words in one_error_line(capsys)


def test_drawings_import_into_a_file_or_proc_is_named(archive, tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    assert main(["drawings", "import", str(archive), "--folder", str(file)]) == 2
    assert f"--folder {file} is a file, not a folder" in one_error_line(capsys)
    if NO_FILES.is_dir():
        assert main(["drawings", "import", str(archive), "--folder", str(NO_FILES)]) == 2
        assert f"--folder {NO_FILES}: cannot make files in it" in one_error_line(capsys)
    assert main(["drawings", "import", str(tmp_path), "--folder", str(tmp_path / "new")]) == 2
    assert f"needs a zip file: {tmp_path} is a folder" in one_error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_drawings_export_to_a_folder_or_a_missing_folder_is_named(drawings, tmp_path, capsys):
    assert main(["drawings", "export", str(tmp_path), "--folder", str(drawings)]) == 2
    assert f"{tmp_path} is a folder; name the zip file to write in it" in one_error_line(capsys)
    missing = tmp_path / "no-such" / "drawings.zip"
    assert main(["drawings", "export", str(missing), "--folder", str(drawings)]) == 2
    assert f"no folder {missing.parent} to write drawings.zip in" in one_error_line(capsys)
    assert not missing.parent.exists()


def test_drawings_export_of_a_folder_that_is_not_there_is_an_error(tmp_path, capsys):
    typo = tmp_path / "drawngs"
    target = tmp_path / "out.zip"
    assert main(["drawings", "export", str(target), "--folder", str(typo)]) == 2
    assert f"--folder {typo}: no such folder" in one_error_line(capsys)
    assert not target.exists()
    assert capsys.readouterr().out == ""


def test_drawings_evaluate_of_a_folder_that_is_not_there_is_an_error(run_dir, tmp_path, capsys):
    typo = tmp_path / "drawngs"
    assert main(["drawings", "evaluate", "--model", str(run_dir), "--folder", str(typo)]) == 2
    assert f"--folder {typo}: no such folder" in one_error_line(capsys)


@pytest.mark.parametrize("command", [["drawings", "finetune", "--model", "RUN", "--folder", "DRAWINGS"],
                                     ["train", "--data", "sample"], ["sweep", "--lr", "0.1", "--data", "sample"]],
                         ids=["finetune", "train", "sweep"])
def test_a_runs_folder_that_is_a_file_is_named(command, run_dir, drawings, tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    args = [{"RUN": str(run_dir), "DRAWINGS": str(drawings)}.get(a, a) for a in command]
    assert main([*args, "--out", str(file)]) == 2
    assert f"{file} is a file, not a folder" in one_error_line(capsys)
    assert file.read_text() == "not a folder"


def test_import_into_a_full_disk_is_one_line(archive, tmp_path, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # Every file we write is synced before it is renamed into place: a full disk can answer there.
    monkeypatch.setattr(os, "fsync", full)
    assert main(["drawings", "import", str(archive), "--folder", str(tmp_path / "new")]) == 2
    assert "No space left on device" in one_error_line(capsys)


# --- damaged zip and CSV files --------------------------------------------------------------------


def good_members(drawings: Path) -> dict[str, bytes]:
    from mlpdash.drawings import export_zip

    with zipfile.ZipFile(io.BytesIO(export_zip(drawings))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def hostile_zips(drawings: Path) -> dict[str, bytes]:
    members = good_members(drawings)
    stored = zip_of(members, zipfile.ZIP_STORED)
    deflated = bytearray(zip_of({"labels.csv": members["labels.csv"] * 50}))
    with zipfile.ZipFile(io.BytesIO(bytes(deflated))) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    deflated[start:start + info.compress_size] = b"\xff" * info.compress_size  # reserved block type
    huge_field = "file,label,created\n" + "a" * 200_000 + ".png,1,1.0\n"
    return {
        "encrypted": patched(stored, flags=0x1),  # flag bit 0: needs a password
        "unknown-compression": patched(stored, method=99),
        "bad-crc": bad_crc(stored),
        "corrupt-deflate": bytes(deflated),
        "csv-field-200kb": zip_of({"labels.csv": huge_field.encode()}),
    }


@pytest.mark.parametrize("kind", ["encrypted", "unknown-compression", "bad-crc", "corrupt-deflate",
                                  "csv-field-200kb"])
def test_a_hostile_zip_is_one_line_and_exit_2(kind, drawings, tmp_path, capsys):
    path = tmp_path / f"{kind}.zip"
    path.write_bytes(hostile_zips(drawings)[kind])
    target = tmp_path / "target"
    assert main(["drawings", "import", str(path), "--folder", str(target)]) == 2
    one_error_line(capsys)
    assert not list(target.glob("*.png"))


def test_a_drawings_folder_with_a_200kb_csv_field_is_one_line(tmp_path, capsys):
    folder = tmp_path / "drawings"
    folder.mkdir()
    (folder / "labels.csv").write_text("file,label,created\n" + "a" * 200_000 + ".png,1,1.0\n")
    assert main(["drawings", "export", str(tmp_path / "out.zip"), "--folder", str(folder)]) == 2
    one_error_line(capsys)


def test_the_safety_net_takes_input_errors_and_leaves_bugs(tmp_path, monkeypatch):
    def raised(err: BaseException) -> BaseException:
        try:
            raise err
        except BaseException as caught:
            return caught

    assert "zip archive" in bad_input(zipfile.BadZipFile("Bad CRC-32 for file 'a.png'"))
    assert "zip archive" in bad_input(zipfile.LargeZipFile("Zipfile size would require ZIP64 extensions"))
    assert "damaged CSV" in bad_input(csv.Error("field larger than field limit (131072)"))
    assert bad_input(PermissionError(13, "Permission denied", "/x/y")) == "/x/y: Permission denied"
    assert bad_input(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    # The same types raised by our own code, and the usual bugs, are not bad input.
    for bug in (RuntimeError("a bug"), NotImplementedError(), TypeError("a bug"), KeyError("a bug"),
                AttributeError("a bug"), AssertionError("a bug")):
        assert bad_input(raised(bug)) is None, bug
    # main lets a bug through, traceback and all.
    def broken(args):
        raise RuntimeError("a bug in a command")

    monkeypatch.setattr(compare_command, "cmd_compare", broken)
    with pytest.raises(RuntimeError, match="a bug in a command"):
        main(["compare", str(tmp_path)])


# --- strict JSON ---------------------------------------------------------------------------------


def strict_json(line: str):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON: {line[:200]}")

    return json.loads(line, parse_constant=refuse)


def test_json_output_never_holds_nan():
    assert json_line({"a": float("nan"), "b": [np.float32("inf"), 1.5, -float("inf")], "c": np.int64(3),
                      "d": (True, None, "x")}) == '{"a": null, "b": [null, 1.5, null], "c": 3, "d": [true, null, "x"]}'


def test_compare_json_of_a_summary_holding_nan_is_strict(tmp_path, capsys):
    # A summary may hold NaN (a diverged model's training time or loss): `compare --json` prints null.
    run = saved_run(tmp_path, summary={"test_accuracy": 0.1, "test_loss": float("nan"), "train_seconds": float("nan"),
                                       "epochs_completed": 1, "stopped_early": False, "outcome": "finished"})
    assert main(["compare", "--json", str(run)]) == 0
    row = strict_json(capsys.readouterr().out)
    assert row["train_seconds"] is None and row["test_accuracy"] == 0.1


def test_evaluate_of_a_model_whose_loss_is_nan_prints_strict_json(tmp_path, capsys):
    from mlpdash.model import build_network, network_weights

    # Finite weights so large that the logits overflow: the test loss is NaN.
    huge = [w * np.float32(1e30) + np.float32(1e30) for w in network_weights(build_network(CONFIG))]
    run = saved_run(tmp_path, weights=huge)
    code = main(["evaluate", "--model", str(run), "--data", "sample"])
    captured = capsys.readouterr()
    if code == 2:  # refused as a broken model, in one line: right too
        assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
        return
    assert code == 0, captured.err
    summary = strict_json(captured.out)
    assert summary["test_loss"] is None and 0 <= summary["test_accuracy"] <= 1


# --- Ctrl-C before training ----------------------------------------------------------------------


def mapped(pid: int, marker: str) -> bool:
    """Whether the process has a shared library whose path holds `marker` loaded (its import began)."""
    try:
        return marker in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(("command", "marker"), [
    (["evaluate", "--model", "RUN"], "_multiarray_umath"),  # NumPy importing, as soon as `main` runs
    (["evaluate", "--model", "RUN"], "tensorflow"),  # TensorFlow importing
    (["train", "--data", "sample", "--hidden", "8", "--epochs", "1", "--out", "OUT"], "tensorflow"),
], ids=["evaluate-numpy", "evaluate-tensorflow", "train-tensorflow"])
def test_ctrl_c_before_training_is_one_line_and_exit_130(command, marker, run_dir, tmp_path):
    if not Path(f"/proc/{os.getpid()}/maps").exists():
        pytest.skip("needs /proc to see what the process is loading")
    args = [{"RUN": str(run_dir), "OUT": str(tmp_path / "out")}.get(a, a) for a in command]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mlpdash", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not mapped(proc.pid, marker):
            assert proc.poll() is None, f"ended before loading {marker}: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{marker} never loaded"
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines() == ["mlpdash: interrupted"] and out == ""
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_ctrl_c_that_comes_out_as_an_import_error_is_still_an_interruption(monkeypatch, capsys):
    def importing(args):
        try:  # what a C extension's import does with a Ctrl-C that lands inside it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            raise ImportError('PyCapsule_Import could not import module "datetime"') from None

    monkeypatch.setattr(compare_command, "cmd_compare", importing)
    assert main(["compare", "x"]) == 130
    assert capsys.readouterr().err == "mlpdash: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def broken(args):
        raise ImportError("a missing module is a bug, not an interruption")

    monkeypatch.setattr(compare_command, "cmd_compare", broken)
    with pytest.raises(ImportError, match="a missing module"):
        main(["compare", "x"])


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain", "drawings"])
def test_a_run_whose_weights_are_nan_is_refused_by_every_command(command, tmp_path, image, drawings, capsys):
    # Before: `predict` answered "0 (nan%)", `evaluate` printed NaN, fine-tuning saved a NaN "finished" run.
    from hostile import nan_weights

    run = saved_run(tmp_path / "runs")
    nan_weights(run)
    argv = {"predict": ["predict", "--model", str(run), str(image)],
            "evaluate": ["evaluate", "--model", str(run), "--data", "sample"],
            "explain": ["explain", "--model", str(run), str(image), "--data", "sample"],
            "drawings": ["drawings", "finetune", "--model", str(run), "--folder", str(drawings)]}[command]
    assert main(argv) == 2
    assert "NaN or infinite" in one_error_line(capsys)
    assert len(list((tmp_path / "runs").iterdir())) == 1  # no fine-tuned run made of it
