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
