"""Build mlpdash's bundled MNIST sample from the original IDX files.

The sample is class-balanced and deterministic, no random numbers involved:
for each digit 0-9 it keeps the first 600 of the training split
(train[10000:]), the first 200 of the validation split (train[:10000]) and
the first 200 of the test split, in their original order — 10,000 digits.
Alongside the six split arrays it stores `train_index`, `val_index` and
`test_index`, each digit's position in the full split it came from
(train_index counts from train[10000]), so the sample can be checked.

The .npz is a zip of deflated entries (1.6 MB; LZMA would make it 1.4 MB, but mlpdash reads every
archive through one bounded reader that takes only stored and deflate members, see mlpdash.files)
and fixed timestamps, so every run writes identical bytes.

    python scripts/make_sample.py [--idx DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a plain script, mlpdash need not be installed

from mlpdash.data import SAMPLE_PATH, load_mnist  # noqa: E402

DEFAULT_IDX = REPO_ROOT.parent / "shared" / "data" / "mnist"
PER_CLASS = {"train": 600, "val": 200, "test": 200}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # earliest zip date; a fixed one keeps output reproducible


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` digits of each class, in original order."""
    picks = [np.flatnonzero(labels == digit)[:per_class] for digit in range(10)]
    if any(len(pick) < per_class for pick in picks):
        raise SystemExit(f"fewer than {per_class} digits of some class")
    return np.sort(np.concatenate(picks)).astype(np.uint16)


def build_sample(idx_dir: Path) -> dict[str, np.ndarray]:
    full = load_mnist(f"idx:{idx_dir}")
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in PER_CLASS.items():
        x, y = getattr(full, f"x_{split}"), getattr(full, f"y_{split}")
        index = first_per_class(y, per_class)
        arrays |= {f"x_{split}": x[index], f"y_{split}": y[index], f"{split}_index": index}
    return arrays


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Like np.savez_compressed, but byte-reproducible."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, buffer.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idx", type=Path, default=DEFAULT_IDX, help="folder of the 4 MNIST IDX files")
    parser.add_argument("--out", type=Path, default=SAMPLE_PATH, help="where to write the .npz")
    args = parser.parse_args(argv)
    arrays = build_sample(args.idx)
    write_npz(arrays, args.out)
    sizes = ", ".join(f"{split} {len(arrays[f'y_{split}']):,}" for split in PER_CLASS)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {sizes}")


if __name__ == "__main__":
    main()
