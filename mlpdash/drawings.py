"""Your drawings as data: a folder of PNG files and a `labels.csv`, never pickled.

Each drawing is kept raw (the canvas as drawn, grey, ink white on black), so a later change to the
preprocessing applies to old drawings too. The folder is `MLPDASH_DRAWINGS`, by default `drawings`
beside the runs folder. It can be exported and imported as a zip, which is validated on import: only
PNG files of a sane size and a well-formed CSV whose rows name them.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlpdash.files import UnsafeFileError, read_regular, remove_entry, write_bytes_atomic
from mlpdash.runs import runs_root

DRAWINGS_ENV = "MLPDASH_DRAWINGS"
LABELS = "labels.csv"
FIELDS = ("file", "label", "created")
MAX_SIDE = 1024  # px: a canvas is 280; anything larger is no drawing of ours
MAX_PNG_BYTES = 2 << 20
MAX_DRAWINGS = 10_000
MAX_ZIP_BYTES = 256 << 20


class DrawingsError(ValueError):
    """A drawings folder or archive that cannot be used, with the reason."""


@dataclass(frozen=True)
class Drawing:
    file: str  # the PNG's name in the folder
    label: int
    created: float


def drawings_root(root: str | Path | None = None) -> Path:
    """`root`, else $MLPDASH_DRAWINGS, else `drawings` beside the runs folder."""
    if root or os.environ.get(DRAWINGS_ENV):
        return Path(root or os.environ[DRAWINGS_ENV])
    return runs_root().resolve().parent / "drawings"


def listing(root: Path) -> list[Drawing]:
    """The drawings of a folder, oldest first (none for a folder not made yet)."""
    path = root / LABELS
    if not path.exists():
        return []
    try:
        text = read_regular(path, 64 << 20).decode("utf-8", errors="strict")
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
    kept = listing(root)  # first: a folder whose labels cannot be read gets no orphan PNG
    root.mkdir(parents=True, exist_ok=True)
    drawing = Drawing(f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}.png", int(label), time.time())
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    write_bytes_atomic(root / drawing.file, buffer.getvalue())
    _write_labels(root, [*kept, drawing])  # the PNG first: a label never names a missing file
    return drawing


def as_grey(canvas: np.ndarray) -> np.ndarray:
    """A canvas image in any colour scheme (RGBA from the page's canvas) as the store keeps drawings:
    grey uint8, ink white on black, nothing else changed (no crop, no resize)."""
    from mlpdash.preprocess import ink_map

    return np.round(ink_map(canvas) * 255).astype(np.uint8)


def load(root: Path, drawing: Drawing) -> np.ndarray:
    """A kept drawing's pixels (uint8 grey)."""
    return _png_pixels(read_regular(root / drawing.file, MAX_PNG_BYTES), drawing.file)


def relabel(root: Path, file: str, label: int) -> None:
    _check_label(label)
    kept = listing(root)
    if file not in {d.file for d in kept}:
        raise DrawingsError(f"no drawing {file}")
    _write_labels(root, [Drawing(d.file, label, d.created) if d.file == file else d for d in kept])


def delete(root: Path, file: str) -> None:
    kept = listing(root)
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
    """Add the drawings of an exported archive (checked whole before anything is written); returns
    how many were added. Raises DrawingsError naming what is wrong."""
    if len(data) > MAX_ZIP_BYTES:
        raise DrawingsError(f"the archive is {len(data):,} bytes, more than the {MAX_ZIP_BYTES:,} allowed")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise DrawingsError(f"not a zip archive ({err})") from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        if LABELS not in members:
            raise DrawingsError(f"the archive has no {LABELS}")
        if members[LABELS].file_size > 64 << 20:
            raise DrawingsError(f"its {LABELS} is too large")
        incoming = _parse_labels(archive.read(LABELS).decode("utf-8", errors="replace"), LABELS)
        if len(incoming) > MAX_DRAWINGS:
            raise DrawingsError(f"{len(incoming):,} drawings: more than the {MAX_DRAWINGS:,} allowed")
        extra = set(members) - {LABELS} - {d.file for d in incoming}
        if extra:
            raise DrawingsError(f"files no label names: {', '.join(sorted(extra)[:3])}")
        pngs = {}
        for drawing in incoming:
            info = members.get(drawing.file)
            if info is None:
                raise DrawingsError(f"{LABELS} names {drawing.file}, which the archive lacks")
            if info.file_size > MAX_PNG_BYTES:
                raise DrawingsError(f"{drawing.file}: {info.file_size:,} bytes, more than a drawing's {MAX_PNG_BYTES:,}")
            raw = archive.read(info)
            _png_pixels(raw, drawing.file)  # a PNG of sane size, or the whole import is refused
            pngs[drawing.file] = raw
    kept = listing(root)
    have = {d.file for d in kept}
    new = [d for d in incoming if d.file not in have]
    root.mkdir(parents=True, exist_ok=True)
    for drawing in new:
        write_bytes_atomic(root / drawing.file, pngs[drawing.file])
    _write_labels(root, [*kept, *new])
    return len(new)


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
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != FIELDS:
        raise DrawingsError(f"{where}: the first row must be {','.join(FIELDS)}")
    drawings, seen = [], set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(FIELDS):
            raise DrawingsError(f"{where}, row {number}: {len(row)} fields, not {len(FIELDS)}")
        file, label, created = row
        if not _safe_name(file) or file in seen:
            raise DrawingsError(f"{where}, row {number}: {file!r} is not a fresh file name of ours (NAME.png)")
        try:
            drawing = Drawing(file, int(label), float(created))
        except ValueError:
            raise DrawingsError(f"{where}, row {number}: the label is a digit 0-9 and created a time") from None
        if not 0 <= drawing.label <= 9 or not np.isfinite(drawing.created):
            raise DrawingsError(f"{where}, row {number}: the label is a digit 0-9 and created a time")
        seen.add(file)
        drawings.append(drawing)
    return drawings


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
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DrawingsError(f"{name}: not a readable PNG ({err})") from None


def _check_label(label: int) -> None:
    if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise DrawingsError(f"a label is a digit 0-9, got {label!r}")


# --- evaluating a model on them -------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """A model's answers on the kept drawings: accuracy, confusion [true, answer], the misread ones
    (file, label, answer) and the blank ones (no ink: no answer)."""

    accuracy: float | None
    confusion: np.ndarray
    misread: list[tuple[str, int, int]]
    blank: list[str]


def evaluate(root: Path, logits: Callable[[np.ndarray], np.ndarray]) -> Evaluation:
    """Each drawing prepared as the canvas's are (`preprocess.canvas_to_mnist`) and answered by
    `logits` ([N, 28, 28] in [0, 1] -> [N, 10])."""
    from mlpdash.evaluate import confusion_matrix
    from mlpdash.preprocess import canvas_to_mnist

    kept, inputs, blank = [], [], []
    for drawing in listing(root):
        digit = canvas_to_mnist(load(root, drawing))
        if digit is None:
            blank.append(drawing.file)
        else:
            kept.append(drawing)
            inputs.append(digit)
    if not kept:
        return Evaluation(None, np.zeros((10, 10), np.int64), [], blank)
    answers = np.asarray(logits(np.stack(inputs))).argmax(axis=1)
    labels = np.array([d.label for d in kept])
    misread = [(d.file, d.label, int(a)) for d, a in zip(kept, answers) if a != d.label]
    return Evaluation(float(np.mean(answers == labels)), confusion_matrix(labels, answers), misread, blank)
