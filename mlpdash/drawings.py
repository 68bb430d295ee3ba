"""Your drawings as data: a folder of PNG files and a `labels.csv`, never pickled.

Each drawing is kept raw (the canvas as drawn, grey, ink white on black), so a later change to the
preprocessing applies to old drawings too. The folder is `MLPDASH_DRAWINGS`, by default `drawings`
beside the runs folder, and holds at most MAX_DRAWINGS. It can be exported and imported as a zip,
which is untrusted: read through `files.iter_archive` (bounded, one member at a time), validated whole
(only PNG files of a sane size and a well-formed CSV whose rows name them), staged beside the folder
and only then moved in, so that a refused or failed import leaves nothing behind.

Every change of `labels.csv` (save, relabel, delete, import) is a read-modify-write under
`files.locked`: the page's sessions and a CLI import may change one folder at once without losing
each other's drawings.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlpdash import mnist
from mlpdash.files import (
    UnsafeFileError,
    fsync_dir,
    is_temporary,
    iter_archive,
    locked,
    read_archive,
    read_npz,
    read_regular,
    remove_entry,
    temp_beside,
    write_bytes_atomic,
    write_npz_atomic,
)
from mlpdash.runs import runs_root

DRAWINGS_ENV = "MLPDASH_DRAWINGS"
LABELS = "labels.csv"
FIELDS = ("file", "label", "created")
MAX_SIDE = 1024  # px: a canvas is 280; anything larger is no drawing of ours
# A kept drawing is a grey PNG of at most MAX_SIDE a side: its pixels raw, plus the PNG's own bytes.
MAX_PNG_BYTES = MAX_SIDE * MAX_SIDE + (64 << 10)
MAX_DRAWINGS = 10_000  # in a folder, all imports and saves together
# A row is a 28-character name, a digit and a time: 10,000 rows take about 500 KB.
MAX_LABELS_BYTES = 4 << 20
MAX_ZIP_BYTES = 256 << 20
# What one import may unpack to in all: a drawing saved from the canvas is a few KB.
MAX_IMPORT_BYTES = 512 << 20
STAGING = "import"  # an import's drawings wait in a hidden ".import.XXXXXXXX.tmp" beside the folder's
STALE_STAGING_S = 3600  # older than this, no import is writing there any more


LOG = logging.getLogger("mlpdash")


class DrawingsError(ValueError):
    """A drawings folder or archive that cannot be used, with the reason."""


@dataclass(frozen=True)
class Drawing:
    file: str  # the PNG's name in the folder
    label: int
    created: float

    @property
    def key(self) -> tuple[str, float]:
        """What the drawing is, whatever its label: a drawing deleted and another saved under its name
        is another drawing. The time as labels.csv keeps it."""
        return self.file, round(self.created, 3)


def drawings_root(root: str | Path | None = None) -> Path:
    """`root`, else $MLPDASH_DRAWINGS, else `drawings` beside the runs folder."""
    if root or os.environ.get(DRAWINGS_ENV):
        return Path(root or os.environ[DRAWINGS_ENV])
    return runs_root().resolve().parent / "drawings"


def listing(root: Path) -> list[Drawing]:
    """The drawings of a folder, oldest first (none for a folder not made yet)."""
    path = root / LABELS
    if not os.path.lexists(path):
        return []
    try:
        text = read_regular(path, MAX_LABELS_BYTES).decode("utf-8", errors="strict")
    except (UnsafeFileError, UnicodeDecodeError) as err:
        raise DrawingsError(f"{path} cannot be read: {err}") from None
    return _parse_labels(text, str(path))


def save(root: Path, image: np.ndarray, label: int) -> Drawing:
    """Keep a drawing (uint8 grey [H, W], ink white on black) with its true label."""
    _check_label(label)
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or not (0 < max(pixels.shape) <= MAX_SIDE):
        raise DrawingsError(f"a drawing is a grey uint8 image of at most {MAX_SIDE} px a side, got "
                            f"{pixels.dtype} {pixels.shape}")
    drawing = Drawing(f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}.png", int(label), time.time())
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    with _changing(root) as kept:  # first: a folder whose labels cannot be read gets no orphan PNG
        _check_room(root, len(kept), 1)
        write_bytes_atomic(root / drawing.file, buffer.getvalue())
        try:
            _write_labels(root, [*kept, drawing])  # the PNG first: a label never names a missing file
        except BaseException:
            remove_entry(root / drawing.file)
            raise
    return drawing


def as_grey(canvas: np.ndarray) -> np.ndarray:
    """A canvas image in any colour scheme (RGBA from the page's canvas) as the store keeps drawings:
    grey uint8, ink white on black, nothing else changed (no crop, no resize)."""
    from mlpdash.preprocess import ink_map

    return mnist.pixels(ink_map(canvas))


def load(root: Path, drawing: Drawing) -> np.ndarray:
    """A kept drawing's pixels (uint8 grey)."""
    return _png_pixels(read_regular(root / drawing.file, MAX_PNG_BYTES), drawing.file)


def relabel(root: Path, file: str, label: int) -> None:
    _check_label(label)
    with _changing(root) as kept:
        if file not in {d.file for d in kept}:
            raise DrawingsError(f"no drawing {file}")
        _write_labels(root, [Drawing(d.file, label, d.created) if d.file == file else d for d in kept])


def delete(root: Path, file: str) -> None:
    with _changing(root) as kept:
        if file not in {d.file for d in kept}:
            raise DrawingsError(f"no drawing {file}")
        _write_labels(root, [d for d in kept if d.file != file])  # the label first: never one for a missing file
        remove_entry(root / file)


def export_zip(root: Path) -> bytes:
    """The drawings and their labels as a zip archive."""
    kept = listing(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for drawing in kept:
            archive.writestr(drawing.file, read_regular(root / drawing.file, MAX_PNG_BYTES))
        archive.writestr(LABELS, _labels_csv(kept))
    return buffer.getvalue()


def import_zip(root: Path, data: bytes) -> int:
    """Add the drawings of an exported archive (checked whole before anything is added to the
    folder); returns how many were added. Raises DrawingsError naming what is wrong; an import that
    fails at any point (a full disk included) leaves the folder as it was."""
    if len(data) > MAX_ZIP_BYTES:
        raise DrawingsError(f"the archive is {len(data):,} bytes, more than the {MAX_ZIP_BYTES:,} allowed")
    incoming = _archive_labels(data)
    _ensure_folder(root)
    _clean_stale_staging(root)
    staging = temp_beside(root / STAGING)
    try:
        staging.mkdir()
        _stage_pngs(data, incoming, staging)
        os.sync()  # the drawings reach the disk before labels.csv names them (one sync, not one a file)
        with _changing(root) as kept:
            have = {d.file for d in kept}
            new = [d for d in incoming if d.file not in have]
            _check_room(root, len(kept), len(new))
            moved: list[Path] = []
            try:
                for drawing in new:
                    os.replace(staging / drawing.file, root / drawing.file)
                    moved.append(root / drawing.file)
                fsync_dir(root)
                _write_labels(root, [*kept, *new])
            except BaseException:
                for path in moved:
                    remove_entry(path)
                raise
    except OSError as err:
        raise DrawingsError(f"not imported, nothing was added: {err.strerror or err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(new)


def _clean_stale_staging(root: Path) -> None:
    """Staging folders of imports that a crash or a kill interrupted (one running now is younger)."""
    try:
        entries = [entry for entry in root.iterdir() if entry.name.startswith(f".{STAGING}.")
                   and is_temporary(entry.name) and time.time() - entry.lstat().st_mtime > STALE_STAGING_S]
        for entry in entries:
            remove_entry(entry)
    except OSError as err:  # tidying only
        LOG.warning("could not remove an interrupted import's files in %s: %s", root, err)


def _archive_labels(data: bytes) -> list[Drawing]:
    """The archive's labels, read and checked before any drawing in it is."""
    try:
        found = read_archive(data, "the archive", MAX_LABELS_BYTES, MAX_LABELS_BYTES, MAX_DRAWINGS + 1,
                             wanted=lambda name: name == LABELS)
    except UnsafeFileError as err:
        raise DrawingsError(str(err)) from None
    if LABELS not in found:
        raise DrawingsError(f"the archive has no {LABELS}")
    incoming = _parse_labels(found[LABELS].decode("utf-8", errors="replace"), LABELS)
    if len(incoming) > MAX_DRAWINGS:
        raise DrawingsError(f"{len(incoming):,} drawings: more than the {MAX_DRAWINGS:,} allowed")
    return incoming


def _stage_pngs(data: bytes, incoming: list[Drawing], staging: Path) -> None:
    """Every drawing of the archive checked (a PNG of sane size) and written to `staging`, one at a
    time, so that memory holds one drawing whatever the archive's size."""
    named = {d.file for d in incoming}
    seen: set[str] = set()
    limit = lambda name: MAX_LABELS_BYTES if name == LABELS else MAX_PNG_BYTES  # noqa: E731
    try:
        for name, raw in iter_archive(data, "the archive", limit, MAX_IMPORT_BYTES, MAX_DRAWINGS + 1,
                                      wanted=lambda name: name != LABELS):
            if name not in named:
                raise DrawingsError(f"files no label names: {name[:80]}")
            _png_pixels(raw, name)  # a PNG of sane size, or the whole import is refused
            (staging / name).write_bytes(raw)
            seen.add(name)
    except UnsafeFileError as err:
        raise DrawingsError(str(err)) from None
    missing = sorted(named - seen)
    if missing:
        raise DrawingsError(f"{LABELS} names {missing[0]}, which the archive lacks")


@contextmanager
def _changing(root: Path) -> Iterator[list[Drawing]]:
    """The folder's drawings, read under its labels' lock, which is held until the caller has written
    them back: two sessions saving at once both keep their drawing."""
    _ensure_folder(root)
    with locked(root):
        yield listing(root)


def _ensure_folder(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DrawingsError(f"{root} is not a folder") from None
    except OSError as err:
        raise DrawingsError(f"the drawings folder {root} cannot be made: {err.strerror or err}") from None
    if not root.is_dir():
        raise DrawingsError(f"{root} is not a folder")


def _check_room(root: Path, kept: int, adding: int) -> None:
    if kept + adding > MAX_DRAWINGS:
        raise DrawingsError(f"{root} holds {kept:,} drawings; {adding:,} more would pass the {MAX_DRAWINGS:,} a "
                            "folder keeps: delete some (or export them and start a new folder) first")


# --- the labels file ------------------------------------------------------------------------------


def _labels_csv(drawings: list[Drawing]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for d in drawings:
        writer.writerow([d.file, d.label, f"{d.created:.3f}"])
    return out.getvalue()


def _write_labels(root: Path, drawings: list[Drawing]) -> None:
    write_bytes_atomic(root / LABELS, _labels_csv(drawings).encode("utf-8"))


def _parse_labels(text: str, where: str) -> list[Drawing]:
    try:
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header is None or tuple(header) != FIELDS:
            raise DrawingsError(f"{where}: the first row must be {','.join(FIELDS)}")
        # No cap on the rows here (the file's bytes bound them): a folder past MAX_DRAWINGS, made before
        # the cap was a folder's, must still list, so that drawings can be deleted or exported.
        drawings, seen = [], set()
        for number, row in enumerate(rows, start=2):
            drawings.append(_parse_row(row, number, where, seen))
    except csv.Error as err:  # a field over csv's 128 KB limit, a NUL byte...
        raise DrawingsError(f"{where}: not a labels file ({err})") from None
    return drawings


def _parse_row(row: list[str], number: int, where: str, seen: set[str]) -> Drawing:
    if len(row) != len(FIELDS):
        raise DrawingsError(f"{where}, row {number}: {len(row)} fields, not {len(FIELDS)}")
    file, label, created = row
    if not _safe_name(file) or file in seen:
        raise DrawingsError(f"{where}, row {number}: {file[:80]!r} is not a fresh file name of ours (NAME.png)")
    try:
        drawing = Drawing(file, int(label), float(created))
    except ValueError:
        raise DrawingsError(f"{where}, row {number}: the label is a digit 0-9 and created a time") from None
    if not 0 <= drawing.label <= 9 or not np.isfinite(drawing.created):
        raise DrawingsError(f"{where}, row {number}: the label is a digit 0-9 and created a time")
    seen.add(file)
    return drawing


def _safe_name(name: str) -> bool:
    """A plain file name: no folder, no hidden file, letters, digits, - and _ only, ending .png."""
    stem = name.removesuffix(".png")
    return name.endswith(".png") and 0 < len(stem) <= 64 and all(c.isalnum() or c in "-_" for c in stem) \
        and stem.isascii()


def _png_pixels(raw: bytes, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG":
                raise DrawingsError(f"{name}: not a PNG ({image.format})")
            if max(image.size) > MAX_SIDE or min(image.size) < 1:
                raise DrawingsError(f"{name}: {image.size[0]}x{image.size[1]} px, not a drawing (at most {MAX_SIDE})")
            return np.asarray(image.convert("L"))
    except DrawingsError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DrawingsError(f"{name}: not a readable PNG ({err})") from None


def _check_label(label: int) -> None:
    if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise DrawingsError(f"a label is a digit 0-9, got {label!r}")


# --- the drawings as the model sees them --------------------------------------------------------------

PREPARED = ".prepared.npz"
# Bumped whenever `preprocess.canvas_to_mnist` changes what a drawing becomes: older copies are redone.
PREPARED_VERSION = 2
_NAME_CHARS = 68  # the longest name `_safe_name` allows
_PREPARED_ROW_BYTES = 4 * 28 * 28 + 4 * _NAME_CHARS + 8 + 8 + 8 + 1
# New drawings beyond which the folder's prepared copy is read back rather than each prepared (5 ms).
READ_BACK_MIN = 32

# What a prepared drawing was made from: its name, the time it was saved (as labels.csv keeps it),
# and its PNG's size and modification time, so that a PNG replaced under the same name (deleted, then
# imported again, changed) is prepared again.
Identity = tuple[str, float, int, int]


@dataclass(frozen=True)
class Prepared:
    """The kept drawings prepared as the canvas's are (`preprocess.canvas_to_mnist`), in their order:
    float32 [N, 28, 28] in [0, 1], zeros for one without ink or that cannot be read, `inked` [N]
    saying which have ink, and `identities` what each was prepared from (see `identities`)."""

    digits: np.ndarray
    inked: np.ndarray
    identities: tuple[Identity, ...]


def identities(root: Path, kept: list[Drawing]) -> tuple[Identity, ...]:
    """What each kept drawing is, PNG and all: one listing of the folder (about 20 ms for 10,000)."""
    stamps = {}
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.endswith(".png"):
                    stat = entry.stat(follow_symlinks=False)
                    stamps[entry.name] = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        pass  # each drawing then reads as missing: blank, and not kept as prepared
    return tuple((*d.key, *stamps.get(d.file, (-1, -1))) for d in kept)


def prepared(root: Path, kept: list[Drawing], known: dict | None = None,
             made_of: tuple[Identity, ...] | None = None) -> Prepared:
    """The drawings `kept` (a listing of `root`) as the model sees them. Preparing one costs a few
    milliseconds (half a minute for a full folder), so each is prepared once and kept in the folder's
    hidden `.prepared.npz`, by its identity (`identities`, or `made_of` when the caller has them). That
    file is read like any file we did not write (bounded, validated): a damaged one is prepared
    afresh. `known` is a caller's memory of prepared drawings (identity -> (digit, inked); the page
    keeps one a folder for every session), filled here: with it, the file is read only when many
    drawings are new to it (a start, an import), and a drawing saved meanwhile costs its own
    preparation and the file's rewrite, no read. A drawing that cannot be read is shown blank and
    tried again next time."""
    known = {} if known is None else known
    made_of = identities(root, kept) if made_of is None else made_of
    missing = [i for i, identity in enumerate(made_of) if identity not in known]
    if missing and (not known or len(missing) > READ_BACK_MIN):
        known.update(_read_prepared(root, len(kept)))
        missing = [i for i, identity in enumerate(made_of) if identity not in known]
    digits = np.zeros((len(kept), 28, 28), np.float32)
    inked = np.zeros(len(kept), bool)
    fresh = False
    for i, identity in enumerate(made_of):
        found = known.get(identity)
        if found is None:
            found = _prepare_one(root, kept[i])
            if found is not None:
                known[identity], fresh = found, True
        if found is not None:
            digits[i], inked[i] = found
    ready = Prepared(digits, inked, made_of)
    if fresh:
        _write_prepared(root, ready, [i for i, identity in enumerate(made_of) if identity in known])
    return ready


def forget_gone(known: dict, made_of: tuple[Identity, ...], slack: int) -> None:
    """A caller's memory of prepared drawings (see `prepared`) rid of the drawings no longer in the
    folder (`made_of`, its identities now), once it holds more than `slack` of those: a deleted
    drawing costs nothing until many have gone."""
    if len(known) > len(made_of) + slack:
        alive = set(made_of)
        for identity in [identity for identity in known if identity not in alive]:
            del known[identity]


def _prepare_one(root: Path, drawing: Drawing) -> tuple[np.ndarray, bool] | None:
    """The drawing prepared (a zero digit and False for one without ink); None when it cannot be
    read now (a missing or damaged PNG): never kept, so that it is tried again."""
    from mlpdash.preprocess import canvas_to_mnist

    try:
        digit = canvas_to_mnist(load(root, drawing))
    except (DrawingsError, UnsafeFileError, ValueError):
        return None
    return (np.zeros((28, 28), np.float32), False) if digit is None else (digit.astype(np.float32), True)


def _read_prepared(root: Path, count: int) -> dict[Identity, tuple[np.ndarray, bool]]:
    path = root / PREPARED
    if not os.path.lexists(path):
        return {}
    limit = max(count, MAX_DRAWINGS) * _PREPARED_ROW_BYTES + (1 << 20)
    try:
        arrays = read_npz(path, limit, max_members=7)
        version, files, created = arrays["version"], arrays["files"], arrays["created"]
        sizes, times, digits, inked = arrays["sizes"], arrays["times"], arrays["digits"], arrays["inked"]
        rows = len(files)
        if (version.shape != () or int(version) != PREPARED_VERSION or files.dtype.kind != "U"
                or any(a.shape != (rows,) for a in (files, created, sizes, times, inked))
                or created.dtype != np.float64 or sizes.dtype != np.int64 or times.dtype != np.int64
                or digits.shape != (rows, 28, 28) or digits.dtype != np.float32 or inked.dtype != bool
                or not np.isfinite(digits).all() or (rows and (digits.min() < 0 or digits.max() > 1))):
            raise ValueError("not the arrays it keeps")
    except (UnsafeFileError, KeyError, ValueError, TypeError) as err:
        LOG.warning("the prepared drawings %s are redone: %s", path, err)
        return {}
    return {(str(f), round(float(c), 3), int(n), int(t)): (d, bool(i))
            for f, c, n, t, d, i in zip(files, created, sizes, times, digits, inked)}


def _write_prepared(root: Path, ready: Prepared, rows: list[int]) -> None:
    made_of = [ready.identities[i] for i in rows]
    try:  # uncompressed and unsynced: a cache rewritten at every save (10,000 compress in 0.4 s)
        write_npz_atomic(root / PREPARED, compress=False, durable=False, version=np.array(PREPARED_VERSION),
                         files=np.array([m[0] for m in made_of], dtype=f"<U{_NAME_CHARS}"),
                         created=np.array([m[1] for m in made_of], np.float64),
                         sizes=np.array([m[2] for m in made_of], np.int64),
                         times=np.array([m[3] for m in made_of], np.int64),
                         digits=ready.digits[rows], inked=ready.inked[rows])
    except OSError as err:  # a read-only folder: prepared again next time, nothing lost
        LOG.warning("could not keep the prepared drawings in %s: %s", root, err)


# --- evaluating a model on them -------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A model's answers on the kept drawings: accuracy, confusion [true, answer], the misread ones
    (file, label, answer) and the blank ones (no ink: no answer)."""

    accuracy: float | None
    confusion: np.ndarray
    misread: list[tuple[str, int, int]]
    blank: list[str]


def evaluate(root: Path, logits: Callable[[np.ndarray], np.ndarray], kept: list[Drawing] | None = None,
             ready: Prepared | None = None, known: dict[Identity, int] | None = None) -> Evaluation:
    """Each drawing prepared as the canvas's are (`prepared`) and answered by `logits` ([N, 28, 28]
    in [0, 1] -> [N, 10]). A caller that has them passes the folder's listing `kept` and its
    `ready` drawings, and `known`, its memory of this model's answers by drawing (see
    `remembered_answers`)."""
    kept = listing(root) if kept is None else kept
    ready = prepared(root, kept) if ready is None else ready
    if known is None:
        answers = answer(ready.digits, ready.inked, logits)
    else:
        answers = remembered_answers(ready, logits, known)
    return score(kept, ready.inked, answers)


def remembered_answers(ready: Prepared, logits: Callable[[np.ndarray], np.ndarray],
                       known: dict[Identity, int]) -> np.ndarray:
    """`answer` for the drawings `ready`, with `known` a memory of one model's answers by drawing
    (identity -> digit), filled here: only the drawings new to it are answered (none for a relabel,
    one for a drawing saved). Only drawings with ink are answered, and so remembered: one unreadable
    now may read later."""
    new = [i for i, identity in enumerate(ready.identities) if ready.inked[i] and identity not in known]
    if new:
        found = answer(ready.digits[new], ready.inked[new], logits)
        known.update((ready.identities[i], int(a)) for i, a in zip(new, found))
    return np.array([known[identity] if ink else -1 for identity, ink in zip(ready.identities, ready.inked)],
                    np.int64)


def answer(digits: np.ndarray, inked: np.ndarray, logits: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The digit `logits` reads in each prepared drawing (`Prepared.digits`), -1 for one without ink.
    The answers depend on the model and the drawings, not on their labels: a relabel keeps them."""
    answers = np.full(len(inked), -1, np.int64)
    if inked.any():
        answers[inked] = np.asarray(logits(digits[inked])).argmax(axis=1)
    return answers


def score(kept: list[Drawing], inked: np.ndarray, answers: np.ndarray) -> Evaluation:
    """The answers (`answer`) set against the drawings' labels."""
    from mlpdash.evaluate import confusion_matrix

    blank = [d.file for d, ink in zip(kept, inked) if not ink]
    read = [(d, int(a)) for d, a, ink in zip(kept, answers, inked) if ink]
    if not read:
        return Evaluation(None, np.zeros((10, 10), np.int64), [], blank)
    labels = np.array([d.label for d, _ in read])
    given = np.array([a for _, a in read])
    misread = [(d.file, d.label, a) for d, a in read if a != d.label]
    return Evaluation(float(np.mean(given == labels)), confusion_matrix(labels, given), misread, blank)


# --- the drawings as the page lays them out ------------------------------------------------------------


def tally(kept: list[Drawing]) -> str:
    """How many of each digit are kept: '3 × 1, 2 × 4' (digits with none left out)."""
    counts = np.bincount([d.label for d in kept], minlength=10)
    return ", ".join(f"{n} × {d}" for d, n in enumerate(counts) if n)


def by_digit(kept: list[Drawing], digit: int | None = None) -> list[Drawing]:
    """The drawings saved as `digit` (every one for None), by digit, then oldest first."""
    return sorted((d for d in kept if digit is None or d.label == digit), key=lambda d: (d.label, d.created))


@dataclass(frozen=True)
class Grid:
    """Drawings as one grid of tiles: their pixels (uint8 [n, 28, 28], as the model sees them), their
    positions in the folder's listing (what a click hands back), a hover text and a short label over
    each, and the grid's title."""

    images: np.ndarray
    ids: list[int]
    hover: list[str]
    short: list[str]
    title: str


def _tiles(ready: Prepared, ids: list[int]) -> np.ndarray:
    return (ready.digits[ids] * 255).astype(np.uint8)


def gallery_page(kept: list[Drawing], ready: Prepared, shown: list[Drawing], page: int, per_page: int) -> Grid:
    """Page `page` (from 1) of the drawings `shown` (`by_digit`), each with the digit it was saved as."""
    position = {d.file: i for i, d in enumerate(kept)}
    on_page = shown[(page - 1) * per_page: page * per_page]
    ids = [position[d.file] for d in on_page]
    title = f"{len(shown)} drawings, by digit" + (f" (page {page}: {len(on_page)} of them)"
                                                    if len(shown) > len(on_page) else "")
    return Grid(_tiles(ready, ids), ids, [f"a {d.label} · {d.file}" for d in on_page],
                [str(d.label) for d in on_page], title)


def misread_grid(kept: list[Drawing], ready: Prepared, result: Evaluation, limit: int) -> Grid:
    """The first `limit` drawings the model misread, each with the digit it was saved as → the answer."""
    position = {d.file: i for i, d in enumerate(kept)}
    misread = result.misread[:limit]
    ids = [position[file] for file, _, _ in misread]
    title = f"The {len(result.misread)} misread" + (f" (the first {len(misread)})"
                                                    if len(misread) < len(result.misread) else "")
    return Grid(_tiles(ready, ids), ids, [f"a {label} read as {read} · {file}" for file, label, read in misread],
                [f"{label}→{read}" for _, label, read in misread], title)
