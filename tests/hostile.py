"""Hostile archives and run folders, built as an attacker would, for the tests of untrusted input.

Each builder returns bytes (or writes a folder) that exercises one way an archive can lie: a member
compressed with bzip2 that declares a few bytes and unpacks to many, a deflate member whose declared
size is smaller than its data, an encrypted member, an unknown compression method, a changed byte
(bad CRC), thousands of members. The zip fields are patched in place (central directory and local
header), as a hand-made archive would carry them.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np

MB = 1 << 20
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _entries(raw: bytes) -> list[tuple[int, int]]:
    """(central directory offset, local header offset) of every member."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        infos = archive.infolist()
    found, start = [], 0
    for info in infos:
        central = raw.index(_CENTRAL, start)
        found.append((central, info.header_offset))
        start = central + 4
    return found


def peak_bytes(action) -> int:
    """Bytes allocated at the peak while `action` runs (NumPy's buffers included)."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def patched(raw: bytes, *, declared: int | None = None, method: int | None = None, flags: int | None = None) -> bytes:
    """The archive with every member's declared unpacked size, compression method or flag bits
    rewritten, in the central directory and in the local headers alike."""
    data = bytearray(raw)
    for central, local in _entries(raw):
        if declared is not None:
            struct.pack_into("<I", data, central + 24, declared)
            struct.pack_into("<I", data, local + 22, declared)
        if method is not None:
            struct.pack_into("<H", data, central + 10, method)
            struct.pack_into("<H", data, local + 8, method)
        if flags is not None:
            struct.pack_into("<H", data, central + 8, flags)
            struct.pack_into("<H", data, local + 6, flags)
    return bytes(data)


def bomb(name: str, unpacked: int = 64 * MB, method: int = zipfile.ZIP_BZIP2, declared: int = 2000) -> bytes:
    """One member holding a plain .npy of `unpacked` zero bytes, compressed with `method` to a few
    hundred bytes (bzip2, lzma; deflate to a thousandth), that declares `declared` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive, archive.open(name, "w") as member:
        member.write(npy_header(unpacked))
        for _ in range(unpacked // MB):
            member.write(bytes(MB))
    return patched(buffer.getvalue(), declared=declared)


def npy_header(length: int) -> bytes:
    """A version 1.0 .npy header for `length` uint8 values, padded to 64 bytes as NumPy pads it."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % length
    text += " " * ((-(10 + len(text) + 1)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def bad_crc(raw: bytes) -> bytes:
    """The archive with one byte of its first member's stored data changed."""
    data = bytearray(raw)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        info = archive.infolist()[0]
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    first_data_byte = info.header_offset + 30 + name_length + extra_length
    data[first_data_byte + info.compress_size // 2] ^= 0xFF
    return bytes(data)


def many_members(count: int, name: str = "m{}.npy") -> bytes:
    return zip_of({name.format(i): b"" for i in range(count)}, zipfile.ZIP_STORED)


# --- hostile run folders ---------------------------------------------------------------------------

WEIGHTS = "model.weights.npz"


def plant_in_run(run: Path, file: str, raw: bytes) -> Path:
    """Replace one file of a run folder (model.weights.npz, test_predictions.npz, timeline/...)."""
    target = run / file
    target.write_bytes(raw)
    return target


def nan_weights(run: Path) -> None:
    """Rewrite a run's saved model with every weight NaN, as a diverged model would be."""
    with np.load(run / WEIGHTS) as arrays:
        nan = {key: np.full_like(arrays[key], np.nan) for key in arrays.files}
    np.savez(run / WEIGHTS, **nan)


def markup_notes(run: Path, payload: str) -> None:
    (run / "notes.json").write_text(json.dumps({"name": payload[:80], "note": payload}))


# --- a runs folder holding every hostile run at once ---------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# 1,549 bytes of bzip2 that declare 2,000 bytes and unpack to 1,792 MB (a .npy of zeros): made by
# `bomb("w0.npy", 1792 << 20)` (18 s), kept so that a test need not make it again.
BIG_BOMB = FIXTURES / "bzip2-bomb-1792mb.npz"
EVIL = "evil.example"
MARKUP = (f"![pixel](http://{EVIL}/pixel.png) [log in again](http://{EVIL}/login) "
          f"<img src=http://{EVIL}/i.png> http://{EVIL}/bare www.{EVIL} :red[alarm] $\\pi$")


def _written_run(root: Path, hidden: tuple[int, ...], created: float, seed: int) -> Path:
    from mlpdash.config import TrainConfig
    from mlpdash.runs import RunWriter, layer_shapes
    from mlpdash.timeline import EpochRecord

    config, rng = TrainConfig(hidden=hidden, epochs=2), np.random.default_rng(seed)
    weights = [rng.normal(0, 0.05, shape).astype(np.float32) for shape in layer_shapes(config)]
    writer = RunWriter(root, config, "sample")
    rows = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.5, "val_loss": 1.0 / e, "val_accuracy": 0.5, "seconds": 1.0}
            for e in (1, 2)]
    for epoch in range(3):
        writer.write_record(EpochRecord.of(epoch, weights, rng.integers(0, 10, 2000), rng.random(2000)))
        writer.write_snapshot(weights[0], epoch)
    writer.write_confusions([0, 1, 2], [np.diag(np.full(10, 200)) for _ in range(3)])
    writer.write_epoch(rows, weights)
    labels = rng.integers(0, 10, 2000).astype(np.uint8)
    writer.write_test_results({"labels": labels, "predictions": labels, "confidences": np.full(2000, 0.9, np.float32)},
                              {"index": [], "label": [], "prediction": [], "confidence": []})
    writer.write_summary({"test_accuracy": 1.0, "test_loss": 0.1, "stopped_early": False, "epochs_completed": 2,
                          "outcome": "finished", "data_source": "sample"})
    writer.close()
    head = json.loads((writer.path / "config.json").read_text())
    (writer.path / "config.json").write_text(json.dumps({**head, "created": created}))
    return writer.path


def hostile_runs(root: Path) -> dict[str, Path]:
    """A runs folder as a colleague's copy might hold it, oldest first: a good run; one whose model is
    good but whose test answers and timeline are bzip2 bombs; one whose model is a bomb; one of
    20,000 members; one whose weights are NaN; one with Markup (links, an image, HTML, colour, LaTeX)
    in its data source, its name and note, and its folder's name; and a queue naming it in Markup."""
    import time

    root.mkdir(parents=True, exist_ok=True)
    now = time.time() - 3600
    runs = {"good": _written_run(root, (16,), now, 0)}
    runs["answers-bomb"] = _written_run(root, (16,), now + 60, 1)  # the newest that answers: the views show it
    for file in ("test_predictions.npz", "timeline/epoch-00002.npz", "timeline/confusions.npz"):
        plant_in_run(runs["answers-bomb"], file, BIG_BOMB.read_bytes())
    runs["weights-bomb"] = _written_run(root, (16,), now + 20, 2)
    plant_in_run(runs["weights-bomb"], WEIGHTS, BIG_BOMB.read_bytes())
    runs["many-members"] = _written_run(root, (16,), now + 30, 3)
    plant_in_run(runs["many-members"], WEIGHTS, many_members(20_000))
    runs["nan"] = _written_run(root, (16,), now + 40, 4)
    nan_weights(runs["nan"])
    markup = _written_run(root, (16,), now + 50, 5)
    head = json.loads((markup / "config.json").read_text())
    (markup / "config.json").write_text(json.dumps({**head, "data_source": MARKUP}))
    markup_notes(markup, MARKUP)
    runs["markup"] = markup.rename(markup.with_name(markup.name + f" [x](javascript:alert(1)) <img src=x onerror=alert(1)> {EVIL}"))
    _markup_queue(root, runs["markup"].name)
    return runs


def _markup_queue(root: Path, run: str) -> None:
    from mlpdash.config import TrainConfig
    from mlpdash.sweep import QUEUE_FILE, QueueItem

    item = QueueItem("a-0", "a", MARKUP, TrainConfig(hidden=(16,), epochs=2), "sample", ("seed",), state="failed",
                     run=None, error=MARKUP, queued_at=1.0)
    (root / QUEUE_FILE).write_text(json.dumps({"items": [item.to_dict()]}))
