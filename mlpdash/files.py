"""Files written so that a crash never leaves half of one, and read so that a hostile one costs nothing.

Writing: every file goes to a temporary name beside its target, is flushed to disk, and is renamed over
the target; the folder is then synced too, so that after a power loss the rename itself is there.
A crash leaves the old file or the new one, never half of one, plus at most a `.NAME.XXXX.tmp` that
the run listing cleans up.

Reading: run folders may come from anywhere (copied from another machine, edited by hand, planted).
`read_regular` reads only a regular file, never through a symbolic link, never more than a cap, and
never blocks on a FIFO or a device; `read_json` adds JSON that is too deep to parse.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MAX_JSON_BYTES = 1 << 20


class UnsafeFileError(ValueError):
    """A file that is missing, not a plain file, too large or not what it claims; names the file."""


# --- writing -------------------------------------------------------------------------------------


def temp_beside(path: Path) -> Path:
    """A hidden temporary name in the same folder (so the final rename cannot cross file systems)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


# What temp_beside makes: ".NAME.<8 hex>.tmp", plus a suffix a library insisted on (".keras").
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[a-z0-9]+)?$")


def is_temporary(name: str) -> bool:
    return bool(_TEMPORARY.match(name))


def fsync_dir(path: Path) -> None:
    """Make the entries of a folder (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Sync every file and folder under `path` (a folder another library wrote without syncing)."""
    for folder, _, names in os.walk(path):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def write_npz_atomic(path: Path, compress: bool = True, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def write_npy_atomic(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())


def write_file_atomic(path: Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call `write(tmp)` for a library that writes its own file (Keras wants `.keras`), then rename."""
    tmp = temp_beside(path)
    tmp = tmp.with_name(tmp.name + suffix)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_dir_atomic(path: Path, fill: Callable[[Path], None]) -> None:
    """Call `fill(tmp_dir)` to write a folder beside `path`, then rename it into place. An old
    folder is renamed aside first and removed last, so a crash leaves one whole copy or the other."""
    tmp, old = temp_beside(path), temp_beside(path)
    try:
        fill(tmp)
        fsync_tree(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def remove_entry(path: Path) -> None:
    """Delete a file, a link (never what it points to) or a whole folder; gone already is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


# --- reading -------------------------------------------------------------------------------------


def open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file, refusing links, FIFOs, devices and folders."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UnsafeFileError(f"{path}: missing") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path}: a symbolic link (not followed)") from None
        raise UnsafeFileError(f"{path}: unreadable ({err.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise UnsafeFileError(f"{path}: {kind}")
    return fd


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (UnsafeFileError otherwise)."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFileError(f"{path}: {size:,} bytes, more than the {limit:,} allowed")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as err:
        raise UnsafeFileError(f"{path}: unreadable ({err.strerror})") from None
    finally:
        os.close(fd)
    if total > limit:  # it grew while we read it
        raise UnsafeFileError(f"{path}: more than the {limit:,} bytes allowed")
    return b"".join(chunks)


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """Parsed JSON of a regular file of at most `limit` bytes."""
    raw = read_regular(path, limit)
    try:
        return json.loads(raw)
    except RecursionError:
        raise UnsafeFileError(f"{path}: JSON nested too deeply") from None
    except ValueError as err:  # bad JSON, bad UTF-8, an integer of more than 4,300 digits...
        raise UnsafeFileError(f"{path}: not valid JSON ({str(err)[:200]})") from None


def load_npy_bytes(raw: bytes, name: str) -> np.ndarray:
    """A plain `.npy` array from bytes, its header checked first: NumPy allocates whatever shape a
    header declares, so a 100-byte file could otherwise ask for terabytes."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
        if dtype.hasobject:
            raise ValueError("it holds Python objects")
        declared = math.prod(shape) * dtype.itemsize
        if declared > len(raw) - stream.tell():
            raise ValueError(f"its header declares {declared:,} bytes of data, the file holds fewer")
        stream.seek(0)
        return np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as err:
        raise UnsafeFileError(f"{name}: not a plain NumPy array ({err})") from None


def read_npy(path: Path, limit: int) -> np.ndarray:
    """A plain `.npy` array (no pickled objects) from a regular file of at most `limit` bytes."""
    return load_npy_bytes(read_regular(path, limit), str(path))


def read_npz(path: Path, limit: int) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file whose file and whose unpacked arrays are each at most `limit`
    bytes (a compressed member could otherwise unpack to gigabytes); no pickled objects."""
    raw = read_regular(path, limit)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            if unpacked > limit:
                raise UnsafeFileError(f"{path}: unpacks to {unpacked:,} bytes, more than the {limit:,} allowed")
            return {info.filename.removesuffix(".npy"): load_npy_bytes(archive.read(info), f"{path}[{info.filename}]")
                    for info in members}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, NotImplementedError) as err:
        if isinstance(err, UnsafeFileError):
            raise
        raise UnsafeFileError(f"{path}: not a plain NumPy archive ({err})") from None
