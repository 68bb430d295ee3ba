"""Your drawings as data: the store's round trip, and an import that refuses anything but its own."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from mlpdash.drawings import DrawingsError, delete, drawings_root, export_zip, import_zip, listing, load, relabel, save


def _digit(value: int = 255) -> np.ndarray:
    image = np.zeros((280, 280), np.uint8)
    image[60:220, 130:150] = value
    return image


def test_drawings_are_kept_as_png_and_csv_and_read_back(tmp_path):
    first = save(tmp_path, _digit(), 1)
    second = save(tmp_path, _digit(200), 7)
    assert [(d.file, d.label) for d in listing(tmp_path)] == [(first.file, 1), (second.file, 7)]
    np.testing.assert_array_equal(load(tmp_path, second), _digit(200))
    assert (tmp_path / first.file).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "labels.csv").read_text().splitlines()[0] == "file,label,created"
    relabel(tmp_path, first.file, 4)
    assert listing(tmp_path)[0].label == 4
    delete(tmp_path, second.file)
    assert [d.file for d in listing(tmp_path)] == [first.file] and not (tmp_path / second.file).exists()
    with pytest.raises(DrawingsError, match="a label is a digit 0-9"):
        save(tmp_path, _digit(), 10)
    with pytest.raises(DrawingsError, match="grey uint8 image"):
        save(tmp_path, np.zeros((2000, 10), np.uint8), 1)
    with pytest.raises(DrawingsError, match="no drawing"):
        delete(tmp_path, "nothing.png")


def test_the_folder_defaults_beside_the_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("MLPDASH_DRAWINGS", raising=False)
    monkeypatch.setenv("MLPDASH_RUNS", str(tmp_path / "runs"))
    assert drawings_root() == tmp_path / "drawings"
    monkeypatch.setenv("MLPDASH_DRAWINGS", str(tmp_path / "mine"))
    assert drawings_root() == tmp_path / "mine"


def test_export_and_import_round_trip_and_skip_what_is_there(tmp_path):
    source, target = tmp_path / "a", tmp_path / "b"
    kept = [save(source, _digit(v), d) for v, d in ((255, 1), (180, 3))]
    archive = export_zip(source)
    assert import_zip(target, archive) == 2
    assert [(d.file, d.label) for d in listing(target)] == [(d.file, d.label) for d in kept]
    np.testing.assert_array_equal(load(target, kept[1]), _digit(180))
    assert import_zip(target, archive) == 0  # already there: nothing twice


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _png(width: int = 28, height: int = 28) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


HEADER = "file,label,created\n"


@pytest.mark.parametrize(("files", "words"), [
    ({"x.png": _png()}, "no labels.csv"),
    ({"labels.csv": b"name,digit\n"}, "the first row must be"),
    ({"labels.csv": (HEADER + "../evil.png,1,0\n").encode(), "../evil.png": _png()}, "not a fresh file name"),
    ({"labels.csv": (HEADER + "a.png,1,0\n").encode()}, "which the archive lacks"),
    ({"labels.csv": (HEADER + "a.png,1,0\n").encode(), "a.png": _png(), "b.sh": b"rm -rf /"}, "files no label names"),
    ({"labels.csv": (HEADER + "a.png,1,0\n").encode(), "a.png": b"GIF89a not a png"}, "not a readable PNG"),
    ({"labels.csv": (HEADER + "a.png,1,0\n").encode(), "a.png": _png(5000, 20)}, "not a drawing"),
    ({"labels.csv": (HEADER + "a.png,12,0\n").encode(), "a.png": _png()}, "a digit 0-9"),
    ({"labels.csv": (HEADER + "a.png,1,0\na.png,2,0\n").encode(), "a.png": _png()}, "not a fresh file name"),
])
def test_an_import_refuses_anything_but_drawings_and_writes_nothing(tmp_path, files, words):
    with pytest.raises(DrawingsError, match=words):
        import_zip(tmp_path, _zip(files))
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_an_import_refuses_what_is_not_a_zip(tmp_path):
    with pytest.raises(DrawingsError, match="not a zip archive"):
        import_zip(tmp_path, b"hello")


def test_a_model_is_evaluated_on_the_drawings_against_a_direct_computation(tmp_path):
    from mlpdash.drawings import evaluate
    from mlpdash.preprocess import canvas_to_mnist

    ones = [save(tmp_path, _digit(), 1) for _ in range(2)]
    seven = save(tmp_path, _digit(), 7)  # the same stroke labelled 7: a model reading 1 misreads it
    save(tmp_path, np.zeros((280, 280), np.uint8), 3)  # blank: no answer

    def reads_one(images):
        assert images.shape == (3, 28, 28)
        np.testing.assert_array_equal(images[0], canvas_to_mnist(_digit()))
        logits = np.zeros((len(images), 10))
        logits[:, 1] = 1.0
        return logits

    result = evaluate(tmp_path, reads_one)
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.misread == [(seven.file, 7, 1)] and len(result.blank) == 1
    assert result.confusion[1, 1] == 2 and result.confusion[7, 1] == 1 and result.confusion.sum() == 3
    assert ones[0].file not in {m[0] for m in result.misread}


def test_the_drawings_command(tmp_path, capsys):
    from mlpdash.cli import main

    folder = tmp_path / "mine"
    save(folder, _digit(), 1)
    archive = tmp_path / "mine.zip"
    assert main(["drawings", "export", str(archive), "--folder", str(folder)]) == 0
    assert "1 drawings written" in capsys.readouterr().out
    assert main(["drawings", "import", str(archive), "--folder", str(tmp_path / "other")]) == 0
    assert "1 drawings added" in capsys.readouterr().out
    (tmp_path / "bad.zip").write_bytes(b"nope")
    assert main(["drawings", "import", str(tmp_path / "bad.zip"), "--folder", str(folder)]) == 2
    assert "not a zip archive" in capsys.readouterr().err
    assert main(["drawings", "evaluate", "--folder", str(folder)]) == 2
    assert "needs --model RUN_DIR" in capsys.readouterr().err


def test_a_folder_whose_labels_cannot_be_read_refuses_a_save_and_keeps_no_orphan(tmp_path):
    (tmp_path / "labels.csv").write_bytes(b"file,label,created\n\xff\xfe,3,1.0\n")
    with pytest.raises(DrawingsError, match="cannot be read"):
        save(tmp_path, np.zeros((28, 28), np.uint8), 3)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.csv"]
