"""Your drawings as data: the store's round trip, and an import that refuses anything but its own."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from mlpdash.drawings import (
    Drawing,
    DrawingsError,
    Evaluation,
    Prepared,
    by_digit,
    delete,
    drawings_root,
    evaluate,
    export_zip,
    forget_gone,
    gallery_page,
    import_zip,
    listing,
    load,
    misread_grid,
    prepared,
    relabel,
    save,
    tally,
)


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


# --- archives and folders we did not write ------------------------------------------------------------


def _labelled(count: int, prefix: str = "d") -> dict[str, bytes]:
    files = {f"{prefix}{i}.png": _png() for i in range(count)}
    rows = "".join(f"{name},{i % 10},0\n" for i, name in enumerate(files))
    return {"labels.csv": (HEADER + rows).encode(), **files}


def _untouched(folder) -> bool:
    return not folder.exists() or sorted(p.name for p in folder.iterdir()) in ([], ["labels.csv"])


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED], ids=["bzip2-bomb", "deflate-lying-size"])
def test_a_zip_bomb_among_the_drawings_is_refused_within_a_drawings_memory(tmp_path, method):
    from hostile import bomb, peak_bytes

    raw = _beside_labels(bomb("d0.png", 64 << 20, method, declared=2000))  # declares 2,000 bytes, unpacks to 64 MB

    def attempt():
        with pytest.raises(DrawingsError):
            import_zip(tmp_path / "mine", raw)

    assert peak_bytes(attempt) < 16 << 20  # 64 MB before; 2.7 GB for a 4.7 KB archive
    assert _untouched(tmp_path / "mine")


def _beside_labels(member_archive: bytes) -> bytes:
    """An archive of a labels.csv naming the one member of `member_archive`, and that member copied
    byte for byte (zipfile would compress a member written anew, and honestly)."""
    from hostile import zip_of

    with zipfile.ZipFile(io.BytesIO(member_archive)) as source:
        name = source.infolist()[0].filename
    labels = zip_of({"labels.csv": (HEADER + f"{name},1,0\n").encode()}, zipfile.ZIP_STORED)
    return _concatenated([labels, member_archive])


def _one_entry(archive: bytes) -> tuple[bytes, bytes]:
    """(local header and data, central directory entry) of a one-member archive."""
    central = archive.index(b"PK\x01\x02")
    name_length, extra_length, comment_length = struct.unpack_from("<HHH", archive, central + 28)
    return archive[:central], archive[central:central + 46 + name_length + extra_length + comment_length]


def _concatenated(archives: list[bytes]) -> bytes:
    """One archive of the members of one-member archives, each member's bytes kept as they are."""
    body, directory = b"", b""
    for archive in archives:
        local, entry = _one_entry(archive)
        entry = bytearray(entry)
        struct.pack_into("<I", entry, 42, len(body))  # where its local header now starts
        body += local
        directory += bytes(entry)
    count = len(archives)
    return body + directory + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(directory), len(body), 0)


@pytest.mark.parametrize(("archive", "words"), [
    (lambda: __import__("hostile").patched(_zip(_labelled(2)), flags=0x1), "encrypted"),
    (lambda: __import__("hostile").patched(_zip(_labelled(2)), method=99), "method 99"),
    (lambda: __import__("hostile").bad_crc(_zip(_labelled(2))), "damaged archive"),
    (lambda: _zip({"labels.csv": (HEADER + "a.png,1," + "9" * 200_000 + "\n").encode(), "a.png": _png()}),
     "not a labels file"),
    (lambda: _zip({"labels.csv": (HEADER + "a.png,1,0\n" * 3_000_000).encode()}), "more than the 4,194,304"),
    (lambda: __import__("hostile").many_members(20_000, "m{}.png"), "20,000 members, more than the 10,001"),
], ids=["encrypted", "unknown-method", "bad-crc", "200k-csv-field", "3m-row-labels", "20k-members"])
def test_a_broken_or_hostile_archive_is_one_drawings_error_and_writes_nothing(tmp_path, archive, words):
    with pytest.raises(DrawingsError, match=words):
        import_zip(tmp_path / "mine", archive())
    assert _untouched(tmp_path / "mine")


def test_an_import_is_capped_in_total_as_well_as_per_drawing(tmp_path, monkeypatch):
    import mlpdash.drawings as drawings

    monkeypatch.setattr(drawings, "MAX_IMPORT_BYTES", 10 * len(_png()))
    with pytest.raises(DrawingsError, match="unpacks to more than"):
        import_zip(tmp_path / "mine", _zip(_labelled(20)))
    assert _untouched(tmp_path / "mine")
    assert import_zip(tmp_path / "mine", _zip(_labelled(9))) == 9


def test_the_folder_holds_at_most_its_cap_of_drawings_however_they_come(tmp_path, monkeypatch):
    import mlpdash.drawings as drawings

    monkeypatch.setattr(drawings, "MAX_DRAWINGS", 5)
    folder = tmp_path / "mine"
    for label in range(3):
        save(folder, _digit(), label)
    with pytest.raises(DrawingsError, match="holds 3 drawings; 3 more would pass the 5"):
        import_zip(folder, _zip(_labelled(3)))
    assert len(listing(folder)) == 3 and len(list(folder.glob("*.png"))) == 3
    assert import_zip(folder, _zip(_labelled(2))) == 2
    with pytest.raises(DrawingsError, match="holds 5 drawings; 1 more would pass the 5"):
        save(folder, _digit(), 1)
    assert len(list(folder.glob("*.png"))) == 5


def test_saves_from_many_sessions_at_once_are_all_kept(tmp_path):
    import threading

    folder = tmp_path / "mine"
    errors = []

    def saves(label: int) -> None:
        try:
            for _ in range(50):
                save(folder, _digit(), label)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=saves, args=(label,)) for label in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    kept = listing(folder)
    assert len(kept) == 200 and len(list(folder.glob("*.png"))) == 200  # 54 of 200 before
    assert {d.file for d in kept} == {p.name for p in folder.glob("*.png")}


def test_two_imports_at_once_keep_every_drawing_listed(tmp_path):
    import threading

    folder = tmp_path / "mine"
    archives = [_zip(_labelled(300, prefix)) for prefix in ("d", "e")]
    threads = [threading.Thread(target=import_zip, args=(folder, archive)) for archive in archives]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(listing(folder)) == 600 == len(list(folder.glob("*.png")))


SAVES = """
import sys
import numpy as np
from pathlib import Path
from mlpdash.drawings import save
for _ in range(40):
    save(Path(sys.argv[1]), np.full((28, 28), 255, np.uint8), 7)
"""


def test_a_process_saving_into_the_same_folder_loses_nothing(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "mine"
    other = subprocess.Popen([sys.executable, "-c", SAVES, str(folder)], cwd=Path(__file__).resolve().parents[1])
    for _ in range(40):
        save(folder, _digit(), 1)
    assert other.wait(120) == 0
    assert len(listing(folder)) == 80 == len(list(folder.glob("*.png")))


@pytest.mark.parametrize("fails", ["staging", "moving", "labels"])
def test_an_import_that_runs_out_of_disk_leaves_the_folder_as_it_was(tmp_path, monkeypatch, fails):
    import errno
    import os
    import pathlib

    import mlpdash.drawings as drawings

    folder = tmp_path / "mine"
    before = save(folder, _digit(), 1)
    full = OSError(errno.ENOSPC, "No space left on device")
    calls = {"n": 0}

    def after_some(real):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] > 100:
                raise full
            return real(*args, **kwargs)
        return wrapped

    if fails == "staging":
        monkeypatch.setattr(pathlib.Path, "write_bytes", after_some(pathlib.Path.write_bytes))
    elif fails == "moving":
        monkeypatch.setattr(drawings.os, "replace", after_some(os.replace))
    else:
        def no_room(*args):
            raise full
        monkeypatch.setattr(drawings, "_write_labels", no_room)
    with pytest.raises(DrawingsError, match="nothing was added: No space left on device"):
        import_zip(folder, _zip(_labelled(256)))
    monkeypatch.undo()
    assert [d.file for d in listing(folder)] == [before.file]
    assert sorted(p.name for p in folder.iterdir()) == sorted([before.file, "labels.csv"])  # no orphan PNGs


def test_a_folder_that_is_a_file_is_refused_with_its_name(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(DrawingsError, match="is not a folder"):
        import_zip(not_a_folder, _zip(_labelled(1)))
    with pytest.raises(DrawingsError, match="is not a folder"):
        save(not_a_folder, _digit(), 1)


# --- the drawings as the model sees them, kept -----------------------------------------------------------


def test_drawings_are_prepared_once_and_kept_beside_them(tmp_path, monkeypatch):
    import mlpdash.preprocess as preprocess
    from mlpdash.drawings import PREPARED, prepared

    kept = [save(tmp_path, _digit(v), d) for v, d in ((255, 1), (200, 4))]
    blank = save(tmp_path, np.zeros((280, 280), np.uint8), 3)
    listed = listing(tmp_path)
    ready = prepared(tmp_path, listed)
    for i, drawing in enumerate(kept):
        np.testing.assert_array_equal(ready.digits[i], preprocess.canvas_to_mnist(load(tmp_path, drawing)))
    assert list(ready.inked) == [True, True, False] and not ready.digits[2].any()
    assert (tmp_path / PREPARED).is_file() and blank.file in {d.file for d in listed}
    calls = []
    real = preprocess.canvas_to_mnist
    monkeypatch.setattr(preprocess, "canvas_to_mnist", lambda image: calls.append(1) or real(image))
    again = prepared(tmp_path, listing(tmp_path))
    assert calls == [] and np.array_equal(again.digits, ready.digits)  # read back, not redone
    save(tmp_path, _digit(90), 7)
    assert prepared(tmp_path, listing(tmp_path)).inked.tolist() == [True, True, False, True] and len(calls) == 1


@pytest.mark.parametrize("damage", ["bomb", "wrong-arrays", "old-version", "not-a-file"])
def test_a_damaged_or_outdated_preparation_is_redone(tmp_path, damage):
    from hostile import bomb

    import mlpdash.drawings as drawings
    from mlpdash.drawings import PREPARED, prepared

    save(tmp_path, _digit(), 2)
    expected = prepared(tmp_path, listing(tmp_path)).digits
    path = tmp_path / PREPARED
    if damage == "bomb":
        path.write_bytes(bomb("digits.npy"))
    elif damage == "wrong-arrays":
        np.savez(path, version=np.array(drawings.PREPARED_VERSION), files=np.array(["x.png"]))
    elif damage == "old-version":
        with np.load(path) as arrays:
            np.savez(path, **{**{k: arrays[k] for k in arrays.files}, "version": np.array(0)})
    else:
        path.unlink()
        path.mkdir()
    ready = prepared(tmp_path, listing(tmp_path))
    np.testing.assert_array_equal(ready.digits, expected)


def test_a_callers_memory_spares_reading_the_folders_copy_for_a_new_drawing(tmp_path, monkeypatch):
    import mlpdash.drawings as drawings
    import mlpdash.preprocess as preprocess
    from mlpdash.drawings import prepared

    for label in range(3):
        save(tmp_path, _digit(200 + label), label)
    known = {}
    first = prepared(tmp_path, listing(tmp_path), known)
    assert len(known) == 3

    def never(root):
        raise AssertionError("the folder's copy was read")

    calls = []
    real = preprocess.canvas_to_mnist
    monkeypatch.setattr(drawings, "_read_prepared", never)
    monkeypatch.setattr(preprocess, "canvas_to_mnist", lambda image: calls.append(1) or real(image))
    save(tmp_path, _digit(90), 7)
    again = prepared(tmp_path, listing(tmp_path), known)
    assert calls == [1] and np.array_equal(again.digits[:3], first.digits)  # only the new one prepared
    monkeypatch.undo()
    monkeypatch.setattr(preprocess, "canvas_to_mnist", lambda image: calls.append(2) or real(image))
    assert np.array_equal(prepared(tmp_path, listing(tmp_path)).digits, again.digits)
    assert calls == [1]  # the folder's copy holds all four: a new server prepares none


def test_a_png_replaced_under_the_same_name_and_time_is_prepared_again(tmp_path):
    # Export, delete, change the drawing in the zip, import it back: same name, same time saved.
    from mlpdash.drawings import prepared

    folder, known = tmp_path / "mine", {}
    kept = save(folder, _digit(255), 1)
    archive = export_zip(folder)
    before = prepared(folder, listing(folder), known).digits[0]
    delete(folder, kept.file)
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        changed = {name: source.read(name) for name in source.namelist()}
    other = io.BytesIO()
    Image.fromarray(_digit(255).T.copy()).save(other, format="PNG")  # a bar across, not down
    changed[kept.file] = other.getvalue()
    import_zip(folder, _zip(changed))
    after = prepared(folder, listing(folder), known).digits[0]
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, prepared(folder, listing(folder)).digits[0])  # the folder's copy too


def test_a_drawing_that_cannot_be_read_is_shown_blank_and_tried_again(tmp_path):
    from mlpdash.drawings import prepared

    kept = save(tmp_path, _digit(), 5)
    good = (tmp_path / kept.file).read_bytes()
    (tmp_path / kept.file).write_bytes(b"not a png")
    known = {}
    assert not prepared(tmp_path, listing(tmp_path), known).inked[0] and known == {}
    (tmp_path / kept.file).write_bytes(good)
    assert prepared(tmp_path, listing(tmp_path), known).inked[0]


def test_a_folder_past_the_cap_still_lists_deletes_and_exports_but_takes_no_more(tmp_path, monkeypatch):
    # Folders made when the cap was an archive's: their drawings must not be held hostage.
    import mlpdash.drawings as drawings

    kept = [save(tmp_path, _digit(), d) for d in range(4)]
    monkeypatch.setattr(drawings, "MAX_DRAWINGS", 2)
    assert len(listing(tmp_path)) == 4
    with pytest.raises(DrawingsError, match="holds 4 drawings; 1 more would pass the 2"):
        save(tmp_path, _digit(), 1)
    delete(tmp_path, kept[0].file)
    assert len(listing(tmp_path)) == 3 and zipfile.ZipFile(io.BytesIO(export_zip(tmp_path))).namelist()


def test_an_import_interrupted_long_ago_leaves_no_staging_behind_the_next(tmp_path):
    import os
    import time

    from mlpdash.drawings import STALE_STAGING_S

    folder = tmp_path / "mine"
    folder.mkdir()
    old, recent = folder / ".import.0123abcd.tmp", folder / ".import.4567cdef.tmp"
    for staging in (old, recent):
        staging.mkdir()
        (staging / "a.png").write_bytes(_png())
    os.utime(old, (time.time() - STALE_STAGING_S - 60,) * 2)
    assert import_zip(folder, _zip(_labelled(2))) == 2
    assert not old.exists() and recent.exists()  # one that may still be importing is left alone


# --- what the page shows, computed headless


def _made_up(labels: list[int]) -> tuple[list[Drawing], Prepared]:
    """Drawings `d0.png`, `d1.png`... saved in that order with these labels, prepared as a digit whose
    first pixel is its number / 100 (every one inked)."""
    kept = [Drawing(f"d{i}.png", label, 1000.0 + i) for i, label in enumerate(labels)]
    digits = np.zeros((len(kept), 28, 28), np.float32)
    digits[:, 0, 0] = np.arange(len(kept)) / 100
    return kept, Prepared(digits, np.ones(len(kept), bool), tuple((*d.key, 1, 1) for d in kept))


def test_the_folders_count_by_digit_names_only_the_digits_kept():
    kept, _ = _made_up([1, 4, 1, 1, 4, 9])
    assert tally(kept) == "3 × 1, 2 × 4, 1 × 9"
    assert tally([]) == ""


def test_the_gallery_shows_one_digit_or_all_by_digit_then_oldest_first_a_page_at_a_time():
    kept, ready = _made_up([7, 2, 7, 2, 0])
    assert [d.file for d in by_digit(kept)] == ["d4.png", "d1.png", "d3.png", "d0.png", "d2.png"]
    assert [d.file for d in by_digit(kept, 7)] == ["d0.png", "d2.png"] and by_digit(kept, 5) == []
    shown = by_digit(kept)
    page = gallery_page(kept, ready, shown, 2, 2)
    assert page.ids == [3, 0]  # positions in the listing: what a click hands back
    assert page.title == "5 drawings, by digit (page 2: 2 of them)"
    assert page.hover == ["a 2 · d3.png", "a 7 · d0.png"] and page.short == ["2", "7"]
    assert page.images.dtype == np.uint8 and page.images[0, 0, 0] == 7  # 0.03 of 255, as drawn
    whole = gallery_page(kept, ready, by_digit(kept, 7), 1, 200)
    assert whole.title == "2 drawings, by digit" and whole.ids == [0, 2]


def test_the_misread_drawings_are_shown_saved_digit_to_answer_the_first_few():
    kept, ready = _made_up([1, 7, 7, 3])
    result = Evaluation(0.25, np.zeros((10, 10), np.int64), [("d1.png", 7, 1), ("d2.png", 7, 1), ("d3.png", 3, 8)], [])
    grid = misread_grid(kept, ready, result, 2)
    assert grid.ids == [1, 2] and grid.title == "The 3 misread (the first 2)"
    assert grid.hover == ["a 7 read as 1 · d1.png", "a 7 read as 1 · d2.png"] and grid.short == ["7→1", "7→1"]
    np.testing.assert_array_equal(grid.images, (ready.digits[[1, 2]] * 255).astype(np.uint8))
    assert misread_grid(kept, ready, result, 200).title == "The 3 misread"


def test_the_memory_of_prepared_drawings_forgets_the_deleted_ones_once_many_are_gone():
    alive = (("a.png", 1.0, 1, 1), ("b.png", 2.0, 1, 1))
    known = {identity: "kept" for identity in alive}
    known.update({(f"gone{i}.png", 0.0, 1, 1): "deleted" for i in range(3)})
    forget_gone(known, alive, slack=3)
    assert len(known) == 5  # 3 gone: not yet more than the slack
    forget_gone(known, alive, slack=2)
    assert set(known) == set(alive)


def test_a_models_answers_are_remembered_by_drawing_and_only_new_drawings_are_answered(tmp_path):
    for label in (1, 7):
        save(tmp_path, _digit(), label)
    save(tmp_path, np.zeros((280, 280), np.uint8), 3)  # blank: never answered, never remembered
    asked = []

    def reads_one(images):
        asked.append(len(images))
        logits = np.zeros((len(images), 10))
        logits[:, 1] = 1.0
        return logits

    known: dict = {}
    first = evaluate(tmp_path, reads_one, known=known)
    assert asked == [2] and len(known) == 2
    plain = evaluate(tmp_path, reads_one)  # the same answers as without a memory
    assert (first.accuracy, first.misread, first.blank) == (plain.accuracy, plain.misread, plain.blank) == (
        0.5, [(listing(tmp_path)[1].file, 7, 1)], [listing(tmp_path)[2].file])
    np.testing.assert_array_equal(first.confusion, plain.confusion)
    asked.clear()
    relabel(tmp_path, listing(tmp_path)[1].file, 1)  # a relabel changes no answer: nothing asked
    again = evaluate(tmp_path, reads_one, known=known)
    assert asked == [] and again.accuracy == 1.0 and again.misread == []
    save(tmp_path, _digit(200), 4)
    kept = listing(tmp_path)
    latest = evaluate(tmp_path, reads_one, kept, prepared(tmp_path, kept), known)
    assert asked == [1] and latest.misread == [(kept[3].file, 4, 1)] and len(latest.blank) == 1

