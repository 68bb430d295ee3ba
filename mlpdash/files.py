"""Files written so that a crash never leaves half of one, and read so that a hostile one costs nothing.

Writing: every file goes to a temporary name beside its target, is flushed to disk, and is renamed over
the target; the folder is then synced too, so that after a power loss the rename itself is there.
A crash leaves the old file or the new one, never half of one, plus at most a `.NAME.XXXX.tmp` that
the run listing cleans up.

Reading: run folders and drawings may come from anywhere (copied from another machine, edited by
hand, planted, imported). `read_regular` reads only a regular file, never through a symbolic link,
never more than a cap, and never blocks on a FIFO or a device; `read_json` adds JSON that is too deep
to parse; `iter_archive` is the one way an archive (`.npz`, `.zip`, `.keras`) we did not write is
unpacked: few members, stored or deflate only, each unpacked in chunks against its own cap and all
against a total, whatever sizes the archive declares.

Sharing: `locked` serialises the read-modify-writes of files in a folder that several sessions
(threads of one server) and processes change (drawings' labels, a run's notes, the sweep queue).
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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


def write_bytes_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `path` whole or not at all; `durable` also syncs it (a cache that can be made again need
    not wait for the disk)."""
    tmp = temp_beside(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, allow_nan=True) + "\n").encode())


def write_npz_atomic(path: Path, compress: bool = True, durable: bool = True, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buffer, **arrays)
    write_bytes_atomic(path, buffer.getbuffer(), durable)


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


def write_dir_atomic(path: Path, fill: Callable[[Path], None], check: Callable[[Path], None] | None = None) -> None:
    """Call `fill(tmp_dir)` to write a folder beside `path`, then rename it into place. An old
    folder is renamed aside first and removed last, so a crash leaves one whole copy or the other.
    `check(tmp_dir)`, when given, may refuse the new folder by raising: the old one then stays."""
    tmp, old = temp_beside(path), temp_beside(path)
    try:
        fill(tmp)
        if check is not None:
            check(tmp)
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


# --- sharing -------------------------------------------------------------------------------------

LOCK_TIMEOUT_S = 10.0
_LOCK_POLL_S = 0.01
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


@contextmanager
def locked(folder: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold `folder`'s lock while the caller reads, changes and rewrites a file in it: a lock of this
    process (the sessions of one server are its threads) and an flock on the folder itself (other
    processes: a CLI import while the page saves), which leaves no lock file behind. The folder may
    be a link (a drawings folder kept elsewhere): the lock is on the folder it names. Where the file
    system has no flock for folders (some NFS mounts), the process lock alone serialises. TimeoutError,
    an OSError, when another holder keeps it past `timeout` seconds: a stuck or hostile holder must
    not hang the page."""
    guard = _process_lock(folder)
    if not guard.acquire(timeout=timeout):
        raise TimeoutError(f"{folder} is being changed by another session; try again")
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _flock(fd, folder, timeout)
            yield
        finally:
            os.close(fd)  # releases the flock
    finally:
        guard.release()


def _flock(fd: int, folder: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{folder} is being changed by another process; try again") from None
            time.sleep(_LOCK_POLL_S)
        except OSError as err:
            if err.errno in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
                return  # no flock here: other processes are not kept out, this one's sessions are
            raise


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


def read_npz(path: Path, limit: int, member_limits: Mapping[str, int] | None = None,
             max_members: int = 64) -> dict[str, np.ndarray]:
    """The arrays of an `.npz` file whose file and whose unpacked arrays are each at most `limit`
    bytes, read through `read_archive` (a compressed member could otherwise unpack to gigabytes);
    `member_limits` caps named arrays more tightly (`w0` -> bytes); no pickled objects."""
    raw = read_regular(path, limit)
    caps = {f"{name}.npy": cap for name, cap in (member_limits or {}).items()}
    members = read_archive(raw, str(path), lambda name: caps.get(name, limit), limit, max_members)
    odd = [name for name in members if not name.endswith(".npy")]
    if odd:  # NumPy names every array NAME.npy; another name would pass under NAME's cap
        raise UnsafeFileError(f"{path}[{odd[0][:80]}]: not an array of an .npz (NAME.npy)")
    return {name.removesuffix(".npy"): load_npy_bytes(data, f"{path}[{name}]") for name, data in members.items()}


# --- archives we did not write ---------------------------------------------------------------------

# Stored and deflate are all that NumPy and our exports write; deflate decompresses in bounded steps.
# bzip2 and lzma members are unpacked whole by zipfile whatever size they declare (a 4.7 KB member
# unpacked to 6 GB here), so they are refused, as are methods zipfile cannot read at all.
SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"  # 20 bytes before the end record, when there is one
_END_RECORD = 22  # bytes of the end-of-central-directory record, before its comment
# The most a central directory entry of ours can take (46 fixed bytes, a short name, zip64 extras):
# bounds the directory's size by the member count before zipfile parses it.
_DIRECTORY_ENTRY_BYTES = 1024
CHUNK_BYTES = 1 << 20


def iter_archive(raw: bytes, name: str, limit: int | Callable[[str], int], total: int, max_members: int,
                 wanted: Callable[[str], bool] | None = None) -> Iterator[tuple[str, bytes]]:
    """The members of a zip archive (already read, capped, into `raw`) that we did not write: (name,
    bytes) one member at a time, in the archive's order. Before anything is unpacked: at most
    `max_members` members (counted from the archive's end record, before its directory is parsed),
    each stored or deflated, unencrypted, with a unique name, declaring at most its limit. Each is then
    unpacked in chunks against its own limit (`limit`, or `limit(name)`) and all of them against
    `total`, whatever sizes the archive declares. `wanted` skips members unread. Raises
    UnsafeFileError naming `name` and the problem, also for a damaged archive (bad CRC, truncated)."""
    cap = limit if callable(limit) else (lambda _: limit)
    try:
        _declared_count(raw, name, max_members)
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = 0
            for info in _checked_members(archive, name, cap, max_members):
                if wanted is not None and not wanted(info.filename):
                    continue
                data = _read_member(archive, info, name, min(cap(info.filename), total - unpacked))
                unpacked += len(data)
                yield info.filename, data
    except UnsafeFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as err:  # RuntimeError: zipfile's "encrypted" and the like
        raise UnsafeFileError(f"{name}: a damaged archive ({type(err).__name__}: {str(err)[:200]})") from None


def read_archive(raw: bytes, name: str, limit: int | Callable[[str], int], total: int, max_members: int,
                 wanted: Callable[[str], bool] | None = None) -> dict[str, bytes]:
    """`iter_archive`'s members as a dict (name -> bytes): for archives whose total fits in memory."""
    return dict(iter_archive(raw, name, limit, total, max_members, wanted))


def _checked_members(archive: zipfile.ZipFile, name: str, cap: Callable[[str], int],
                     max_members: int) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    if len(members) > max_members:
        raise UnsafeFileError(f"{name}: {len(members):,} members, more than the {max_members:,} allowed")
    seen: set[str] = set()
    for info in members:
        member = f"{name}[{info.filename[:80]}]"
        if info.filename in seen:
            raise UnsafeFileError(f"{member}: named twice in the archive")
        seen.add(info.filename)
        if info.flag_bits & 0x1:
            raise UnsafeFileError(f"{member}: encrypted")
        if info.compress_type not in SAFE_METHODS:
            raise UnsafeFileError(f"{member}: compressed with method {info.compress_type}, not stored or deflate")
        if info.file_size > cap(info.filename):
            raise UnsafeFileError(f"{member}: declares {info.file_size:,} bytes, more than the "
                                  f"{cap(info.filename):,} allowed")
    return members


def _declared_count(raw: bytes, name: str, max_members: int) -> None:
    """Refuse an archive whose end record declares more members than allowed, or a directory larger
    than that many of ours take, before zipfile parses the directory (a small file can hold a
    directory of a million entries)."""
    end = raw.rfind(_END_OF_DIRECTORY, max(0, len(raw) - _END_RECORD - 0xFFFF))
    if end < 0 or len(raw) - end < _END_RECORD:
        raise UnsafeFileError(f"{name}: not a zip archive (no end record)")
    if end >= 20 and raw[end - 20:end - 16] == _ZIP64_LOCATOR:
        # zipfile then takes the directory from the zip64 record, whatever the end record says: a way
        # round the count below. Nothing we read needs one (NumPy writes it past 65,535 members only).
        raise UnsafeFileError(f"{name}: a zip64 archive (a directory beyond what the end record declares)")
    count = int.from_bytes(raw[end + 10:end + 12], "little")
    directory = int.from_bytes(raw[end + 12:end + 16], "little")
    if count > max_members:  # 0xFFFF (zip64's "see elsewhere") included: we allow far fewer
        raise UnsafeFileError(f"{name}: {count:,} members, more than the {max_members:,} allowed")
    if directory > max(count, 1) * _DIRECTORY_ENTRY_BYTES:
        raise UnsafeFileError(f"{name}: a directory of {directory:,} bytes for {count:,} members")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> bytes:
    """A member unpacked chunk by chunk, refused as soon as it passes `limit` (zipfile checks the
    CRC at the member's end, so a changed byte is a BadZipFile)."""
    chunks, size = [], 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise UnsafeFileError(f"{name}[{info.filename[:80]}]: unpacks to more than the {limit:,} bytes allowed")
            chunks.append(chunk)
    return b"".join(chunks)
