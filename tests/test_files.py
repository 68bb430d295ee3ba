"""The one bounded reader of archives we did not write, and the lock that serialises shared writes."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile import MB, bad_crc, bomb, many_members, npy_bytes, patched, peak_bytes, zip_of

from mlpdash.files import UnsafeFileError, iter_archive, locked, read_archive, read_npz

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_a_member_that_declares_little_and_unpacks_to_much_is_refused_unread(tmp_path, method):
    path = tmp_path / "model.weights.npz"
    path.write_bytes(bomb("w0.npy", 64 * MB, method))  # a few hundred bytes, 64 MB unpacked

    def read():
        with pytest.raises(UnsafeFileError, match="not stored or deflate"):
            read_npz(path, 4 * MB)

    assert peak_bytes(read) < 8 * MB


def test_a_deflate_member_is_unpacked_in_chunks_against_its_cap_whatever_it_declares(tmp_path):
    path = tmp_path / "a.npz"
    path.write_bytes(bomb("w0.npy", 64 * MB, zipfile.ZIP_DEFLATED, declared=2000))

    def read():
        with pytest.raises(UnsafeFileError):  # past the cap, or its size disagrees: never 64 MB
            read_npz(path, 4 * MB)

    assert peak_bytes(read) < 12 * MB
    honest = tmp_path / "honest.npz"
    honest.write_bytes(bomb("w0.npy", 8 * MB, zipfile.ZIP_DEFLATED, declared=8 * MB + 128))
    with pytest.raises(UnsafeFileError, match="declares 8,388,736 bytes, more than the"):
        read_npz(honest, 4 * MB)


def test_each_member_has_its_own_cap_and_all_of_them_a_total():
    raw = zip_of({"a": bytes(600), "b": bytes(600), "c": bytes(600)})
    assert read_archive(raw, "x", 1000, 10_000, 3).keys() == {"a", "b", "c"}
    with pytest.raises(UnsafeFileError, match=r"x\[b\]: declares 600 bytes, more than the 500"):
        read_archive(raw, "x", lambda name: 500 if name == "b" else 1000, 10_000, 3)
    with pytest.raises(UnsafeFileError, match=r"x\[b\]: unpacks to more than the 400 bytes"):
        read_archive(raw, "x", 1000, 1000, 3)  # a: 600, then only 400 are left for b


def test_members_are_counted_before_the_directory_is_parsed(monkeypatch):
    import mlpdash.files

    def never(*args, **kwargs):
        raise AssertionError("the directory was parsed")

    raw = many_members(20_000)
    monkeypatch.setattr(mlpdash.files.zipfile, "ZipFile", never)  # 20,000 ZipInfo objects, never made
    with pytest.raises(UnsafeFileError, match="20,000 members, more than the 9 allowed"):
        read_archive(raw, "x", 1000, 1000, 9)


@pytest.mark.parametrize(("archive", "words"), [
    (lambda: patched(zip_of({"a.npy": npy_bytes(np.arange(4))}), flags=0x1), "encrypted"),
    (lambda: patched(zip_of({"a.npy": npy_bytes(np.arange(4))}), method=99), "method 99"),
    (lambda: bad_crc(zip_of({"a.npy": npy_bytes(np.arange(400))})), "damaged archive"),
    (lambda: zip_of({"a.npy": b"1"}) + b"", "not a plain NumPy array"),
    (lambda: b"PK\x05\x06 truncated", "not a zip archive"),
    (lambda: b"hello", "not a zip archive"),
], ids=["encrypted", "unknown-method", "bad-crc", "not-npy", "truncated", "not-zip"])
def test_every_damaged_or_foreign_archive_is_one_unsafe_file_error(tmp_path, archive, words):
    path = tmp_path / "x.npz"
    path.write_bytes(archive())
    with pytest.raises(UnsafeFileError, match=words):
        read_npz(path, MB)


def test_a_name_used_twice_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("a", b"1")
        archive.writestr("a", b"2")
    with pytest.raises(UnsafeFileError, match="named twice"):
        read_archive(buffer.getvalue(), "x", 10, 10, 4)


def test_members_come_one_at_a_time_and_can_be_skipped_unread():
    raw = zip_of({"labels.csv": b"x", "big": bytes(MB)})
    assert list(iter_archive(raw, "x", MB, 2 * MB, 2, wanted=lambda name: name == "labels.csv")) == [
        ("labels.csv", b"x")]
    assert [name for name, _ in iter_archive(raw, "x", MB, 2 * MB, 2)] == ["labels.csv", "big"]


# --- the lock ---------------------------------------------------------------------------------------


def test_the_lock_serialises_threads_and_leaves_no_file(tmp_path):
    counter = tmp_path / "count"
    counter.write_text("0")

    def add() -> None:
        for _ in range(50):
            with locked(tmp_path):
                value = int(counter.read_text())
                time.sleep(0.0005)  # a read-modify-write that another thread would interleave
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.read_text() == "200"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["count"]


HOLD = """
import sys, time
from pathlib import Path
from mlpdash.files import locked
with locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(30)
"""


def test_another_process_holding_the_lock_makes_a_writer_wait_then_give_up(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TimeoutError, match="being changed by another process"):
            with locked(tmp_path, timeout=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path, timeout=5):  # released with its holder
        pass


def test_a_zip64_directory_that_the_end_record_hides_is_refused():
    # With a zip64 locator before the end record, zipfile takes the directory's size and place from
    # the zip64 record: a directory of 300,000 entries behind an end record that declares one.
    raw = zip_of({"a.npy": npy_bytes(np.arange(3))})
    end = raw.rindex(b"PK\x05\x06")
    locator = b"PK\x06\x07" + (0).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(4, "little")
    with pytest.raises(UnsafeFileError, match="a zip64 archive"):
        read_archive(raw[:end] + locator + raw[end:], "x", 100, 100, 4)


def test_an_npz_member_not_named_as_an_array_is_refused(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(zip_of({"w0": npy_bytes(np.zeros(10))}))  # past w0.npy's cap, were it looked up
    with pytest.raises(UnsafeFileError, match=r"x.npz\[w0\]: not an array of an .npz"):
        read_npz(path, MB, {"w0": 100})


def test_the_lock_of_a_folder_reached_through_a_link_works(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with locked(tmp_path / "link", timeout=1):
        pass
    from mlpdash.drawings import listing, save

    save(tmp_path / "link", np.zeros((28, 28), np.uint8), 4)  # a drawings folder kept elsewhere
    assert [d.label for d in listing(tmp_path / "real")] == [4]
