"""The command line: real training, evaluation and prediction; one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlpdash.cli import main
from mlpdash.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_dir(trained_run):
    """The session's small run (conftest), alone in its parent folder (as `train --out DIR` leaves one)."""
    return trained_run.run_dir


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mlpdash", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


def error_lines(stderr: str) -> list[str]:
    # TensorFlow's own C++ start-up notes are not ours; our errors start with "mlpdash:".
    return [line for line in stderr.splitlines() if line.startswith("mlpdash:")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--epochs", "0"], "epochs must be 1 to"),
        (["train", "--hidden", "abc"], "comma-separated positive integers"),
        (["train", "--lr", "fast"], "invalid float value"),
        (["train", "--data", "idx:/no/such/folder"], "/no/such/folder"),
        (["train", "--data", "floppy"], "tfds, idx:DIR, keras, sample, auto"),
        (["train", "--activation", "gelu"], "relu, tanh, sigmoid"),
        (["evaluate", "--model", "/no/such/run"], "no run folder at /no/such/run"),
        (["predict", "--model", "/no/such/run", "x.png"], "no run folder"),
        (["bench", "--pairs", "0"], "at least 1"),
        (["sweep", "--epochs", "1"], "values for one setting or more"),
        (["sweep", "--lr", "0.1,x"], "'x' is not a number"),
        (["sweep", "--hidden", "16:abc"], "comma-separated positive integers"),
        (["sweep", "--seed", "1,2", "--dropout", "0,.1", "--lr", ".1,.2", "--batch-size", "8,16"], "at most 3"),
        (["sweep", "--lr", "0.1", "--data", "floppy"], "tfds, idx:DIR"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, words, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlpdash: error: ")
    assert words in lines[0]


def test_bad_input_from_a_real_process_has_no_traceback():
    result = run_cli("train", "--epochs", "0", timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == ["mlpdash: error: epochs must be 1 to 1000 (got 0)"]


def test_train_prints_one_line_per_epoch_and_the_run_folder(tmp_path):
    result = run_cli("train", "--data", "sample", "--hidden", "32", "--epochs", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    # TensorFlow's start-up noise (CUDA probing on a machine without a GPU and the like) is kept off
    # stderr without --verbose.
    assert "cuInit" not in result.stderr and "E0000" not in result.stderr and "I0000" not in result.stderr
    out = result.stdout
    assert "bundled" in out and "784-32-10" in out
    assert out.count("val_accuracy") == 2  # Keras' one line per epoch, not a terminal progress bar
    assert "test accuracy 0." in out
    [run] = list(tmp_path.iterdir())
    assert f"run saved to {run}" in out
    assert (run / "summary.json").exists() and (run / "model" / "saved_model.pb").exists()


def test_evaluate_prints_the_summary_as_json(run_dir, capsys):
    assert main(["evaluate", "--model", str(run_dir), "--data", "sample"]) == 0
    summary = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "summary.json").read_text())
    assert summary["data_source"] == "sample"
    assert 0.5 < summary["test_accuracy"] <= 1.0
    assert np.array(summary["confusion_matrix"]).shape == (10, 10)
    assert len(summary["per_class_accuracy"]) == 10
    # The run was tested on a 500-digit slice; `evaluate` uses the whole sample test split.
    assert np.sum(summary["confusion_matrix"]) > np.sum(saved["confusion_matrix"])


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size (as a decompression bomb would) with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_predict_answers_good_files_and_explains_bad_ones(run_dir, sample_data, tmp_path, capsys):
    digits = sample_data.x_test[:8]
    good = []
    for i, digit in enumerate(digits):
        # Dark ink on white, bigger than 28x28, as a scanned or drawn digit would be.
        big = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR)
        good.append(tmp_path / f"digit{i}.png")
        big.save(good[-1])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_claiming(30000, 30000))
    large = tmp_path / "large.png"  # under PIL's own bomb limit, over ours
    large.write_bytes(png_claiming(8000, 8000))
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    files = [*good, text, truncated, huge, large, blank, tmp_path / "missing.png"]
    code = main(["predict", "--model", str(run_dir), "--json", *map(str, files)])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1
    # Each failure is also one line on stderr, naming the file.
    problems = captured.err.splitlines()
    assert len(problems) == len(files) - len(good)
    assert all(line.startswith("mlpdash: ") for line in problems) and str(blank) in captured.err
    assert [line["file"] for line in lines] == list(map(str, files))
    answered = lines[: len(good)]
    assert all(line["error"] is None and len(line["probabilities"]) == 10 for line in answered)
    assert all(abs(sum(line["probabilities"]) - 1) < 1e-4 for line in answered)
    assert sum(line["digit"] == int(y) for line, y in zip(answered, sample_data.y_test)) >= 6
    errors = {Path(line["file"]).name: line["error"] for line in lines[len(good):]}
    assert "not a readable image" in errors["notes.png"]
    assert "not a readable image" in errors["truncated.png"]
    assert "image too large" in errors["huge.png"] and "at most 40,000,000 pixels" in errors["huge.png"]
    assert "image too large (8000x8000 px" in errors["large.png"]
    assert "no digit" in errors["blank.png"]
    assert "no such file" in errors["missing.png"]
    assert all(line["digit"] is None and line["probabilities"] is None for line in lines[len(good):])


def test_predict_plain_output(run_dir, sample_data, tmp_path, capsys):
    path = tmp_path / "seven.png"
    Image.fromarray(sample_data.x_test[0]).save(path)
    assert main(["predict", "--model", str(run_dir), str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and line.endswith("%)")


def test_predict_errors_go_to_stderr_and_a_folder_is_read_for_its_images(run_dir, sample_data, tmp_path,
                                                                          capsys):
    folder = tmp_path / "drawings"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(sample_data.x_test[i]).save(folder / f"d{i}.png")
    (folder / "notes.txt").write_text("not an image, and not read: only image files are")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["predict", "--model", str(run_dir), str(folder), str(bad)]) == 1
    captured = capsys.readouterr()
    answered = captured.out.splitlines()
    assert [line.split(":")[0] for line in answered] == [str(folder / f"d{i}.png") for i in range(3)]
    (problem,) = captured.err.splitlines()
    assert problem.startswith(f"mlpdash: {bad}: ") and "not a readable image" in problem
    assert "bad.png" not in captured.out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--model", str(run_dir), str(empty)]) == 2
    assert "no image files" in capsys.readouterr().err


def test_predict_on_a_folder_it_cannot_list_says_so(run_dir, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    # chmod 000 does not stop root, who runs CI: refuse the listing itself.
    monkeypatch.setattr(Path, "iterdir", refuse)
    assert main(["predict", "--model", str(run_dir), str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: cannot read the folder (Permission denied)" in err and "Traceback" not in err


def test_evaluate_accepts_the_folder_train_out_made_when_it_holds_one_run(run_dir, capsys):
    # `train --out DIR` makes DIR/<timestamp>-<id>/; `evaluate --model DIR` finds that one run.
    assert main(["evaluate", "--model", str(run_dir.parent), "--data", "sample"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run"] == str(run_dir)
    assert f"using the run in {run_dir.parent}: {run_dir}" in captured.err


def test_a_folder_of_several_runs_must_be_named_precisely(tmp_path, capsys):
    from mlpdash.runs import RunWriter

    for _ in range(2):
        RunWriter(tmp_path, TrainConfig(hidden=(8,)), "sample").close()
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "holds 2 runs: name one run folder" in capsys.readouterr().err


def test_train_help_says_out_is_the_parent_of_the_run_folder(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the folder in which the run's own timestamped folder is made" in text


def test_a_long_run_is_estimated_before_it_starts(tmp_path):
    from test_interrupts import start_training

    proc = start_training(tmp_path, ["--hidden", "4096,4096", "--epochs", "1000", "--batch-size", "1"])
    try:
        lines = []
        while not any(line.startswith("note:") for line in lines):
            line = proc.stdout.readline()
            assert line, f"no estimate before training: {lines}"
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    note = next(line for line in lines if line.startswith("note:"))
    assert "may take about" in note and "hours" in note


def test_explain_gives_the_exact_form_units_neighbours_and_an_attack(run_dir, sample_data, tmp_path, capsys):
    from mlpdash.predict import Predictor
    from mlpdash.runs import load_run_model

    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(sample_data.x_test[i]).save(path)
        paths.append(path)
    blank = tmp_path / "blank.png"
    Image.new("L", (40, 40), 0).save(blank)
    out = tmp_path / "attacked"
    target = (int(sample_data.y_test[0]) + 1) % 10
    code = main(["explain", "--model", str(run_dir), "--data", "sample", "--json", "--attack", str(target),
                 "--out", str(out), *map(str, paths), str(blank)])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1 and len(lines) == 4  # the blank image is an error, on stderr too
    assert lines[3]["error"].startswith("no digit") and f"{blank}: no digit" in captured.err
    predictor = Predictor(load_run_model(run_dir))
    for line, path in zip(lines, paths):
        assert line["exact"] is True and line["error"] is None
        # The reported logits are the model's own, and the exact form adds up to them.
        from mlpdash.predict import read_image
        from mlpdash.preprocess import canvas_to_mnist

        keras_logits = predictor.logits(canvas_to_mnist(read_image(path))[None])[0]
        np.testing.assert_allclose(line["logits"], keras_logits, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(line["contributions_plus_bias"], line["logits"], rtol=1e-4, atol=1e-3)
        assert line["digit"] == int(np.argmax(keras_logits))
        assert len(line["top_units"]) == 5 and all(0 <= u["unit"] < 64 for u in line["top_units"])
        nearest = line["nearest"]
        assert len(nearest) == 5 and [n["distance"] for n in nearest] == sorted(n["distance"] for n in nearest)
        assert all(n["label"] == int(sample_data.y_test[n["index"]]) for n in nearest)
    found = lines[0]["attack"]
    assert found["target"] == target
    if found["epsilon"] is not None:
        changed = np.asarray(Image.open(found["png"]), np.float32) / 255
        assert int(np.argmax(predictor.logits(changed[None])[0])) == found["png_digit"]
        assert found["png"].endswith(f"001-digit0-to-{target}.png")


def test_explain_refuses_bad_requests(run_dir, tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.new("L", (28, 28), 0).save(image)
    assert main(["explain", "--model", str(run_dir), "--attack", "12", str(image)]) == 2
    assert "--attack takes a digit 0-9" in capsys.readouterr().err
    assert main(["explain", "--model", str(run_dir), "--out", str(tmp_path), str(image)]) == 2
    assert "give --attack DIGIT too" in capsys.readouterr().err


def test_ablate_prints_intact_and_ablated_accuracy_overall_and_per_digit(run_dir, sample_data, capsys):
    from mlpdash.explain import Network
    from mlpdash.model import network_weights, to_model_input
    from mlpdash.runs import load_run_model

    assert main(["ablate", "--model", str(run_dir), "--layer", "1", "--units", "0,1,2,3", "--json",
                 "--data", "sample"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["switched_off"] == [0, 1, 2, 3] and result["test_digits"] == len(sample_data.y_test)
    # Against a direct computation: the model with those units' outgoing weights zeroed.
    weights = network_weights(load_run_model(run_dir))
    weights[2][[0, 1, 2, 3], :] = 0
    answers = Network.from_weights(weights).logits(to_model_input(sample_data.x_test)).argmax(axis=1)
    assert result["ablated"]["accuracy"] == pytest.approx(np.mean(answers == sample_data.y_test), abs=1e-5)
    assert len(result["intact"]["per_class"]) == 10
    assert main(["ablate", "--model", str(run_dir), "--layer", "1", "--units", "random:25%"]) == 0
    out = capsys.readouterr().out
    assert "units switched off (random:25%)" in out and "accuracy: intact 0." in out and "digit 9:" in out


@pytest.mark.parametrize(("args", "words"), [
    (["--layer", "4", "--units", "1"], "--layer: layer 4 does not exist"),
    (["--layer", "1", "--units", "top:x"], "--units: 'x' is no number of units"),
    (["--layer", "1", "--units", "5000"], "--units: units must be 0 to"),
    (["--layer", "1", "--units", "top:inf%"], "--units: 'inf%' is no number of units"),
])
def test_ablate_refuses_bad_requests(run_dir, capsys, args, words):
    assert main(["ablate", "--model", str(run_dir), *args]) == 2
    assert words in capsys.readouterr().err


def test_drawings_evaluate_answers_as_the_model_does(run_dir, sample_data, tmp_path, capsys):
    from mlpdash.drawings import save
    from mlpdash.predict import Predictor, predict_drawing
    from mlpdash.runs import load_run_model

    folder = tmp_path / "drawings"
    canvases = []
    for i in range(4):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[70:210, 70:210] = np.kron(sample_data.x_test[i], np.ones((5, 5), np.uint8))
        save(folder, canvas, int(sample_data.y_test[i]))
        canvases.append(canvas)
    assert main(["drawings", "evaluate", "--model", str(run_dir), "--folder", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    predictor = Predictor(load_run_model(run_dir))
    answers = [predict_drawing(predictor, c).digit for c in canvases]
    expected = np.mean([a == int(sample_data.y_test[i]) for i, a in enumerate(answers)])
    assert result["accuracy"] == pytest.approx(expected)
    assert len(result["misread"]) == sum(a != int(sample_data.y_test[i]) for i, a in enumerate(answers))


def test_sweep_trains_the_grid_in_order_and_ends_with_the_comparison(tmp_path):
    done = run_cli("sweep", "--lr", "0.003,0.03", "--hidden", "16:0", "--epochs", "1", "--train-digits", "500",
                   "--data", "sample", "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "sweep: 4 runs of learning_rate, hidden"
    ended = [line for line in lines if line.startswith("run ")]
    assert [line.split(":")[0] for line in ended] == [
        "run 1/4 (learning_rate 0.003, hidden 16)",
        "run 2/4 (learning_rate 0.003, hidden none)",
        "run 3/4 (learning_rate 0.03, hidden 16)",
        "run 4/4 (learning_rate 0.03, hidden none)"]
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(r["settings"]["learning_rate"], r["settings"]["hidden"]) for r in rows] == [
        (0.003, [16]), (0.003, []), (0.03, [16]), (0.03, [])]
    assert all(r["state"] == "finished" and 0 <= r["test_accuracy"] <= 1 for r in rows)
    assert {r["parameters"] for r in rows} == {TrainConfig(hidden=(16,)).parameters, TrainConfig(hidden=()).parameters}
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 4 and not (tmp_path / "queue.json").exists()
