"""The common MNIST files, read into the four uint8 arrays of Keras's layout.

- a Keras `.npz` (x_train, y_train, x_test, y_test);
- a folder of LeCun's four IDX files, gzipped or not (train-images-idx3-ubyte[.gz], ...);
- Kaggle's Digit Recognizer `train.csv` (a `label` column and 784 pixel columns). It has no
  labelled test set, so a stratified sixth of it is held out as one, always with the same
  seed: the test images must not change with a sweep's --seed.

The format is told by the path; a damaged file is refused with what is wrong, in one line.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

from mnist_sweep.errors import UserError
from mnist_sweep.files import usable
from mnist_sweep.splits import stratified_split  # the same split the search uses for validation

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
IDX_MAGIC = {3: 0x0803, 1: 0x0801}  # unsigned bytes, then the number of dimensions
KAGGLE_TEST_SHARE = 6  # one in six held out, as MNIST's 10,000 of 70,000
KAGGLE_TEST_SEED = 0


def check_path(path: Path) -> None:
    """Refuse, without reading any data, a path no reader here takes: a missing file or folder, an
    unknown suffix, a folder without the four IDX files. Cheap, so it runs before TensorFlow loads."""
    usable(path, "--data")
    if path.is_dir():
        idx_paths(path)
        return
    if not path.is_file():
        raise UserError(f"{path}: no such data file or folder; pass --data (or set MNIST_SWEEP_DATA) with an "
                        "MNIST .npz, a folder of IDX files or Kaggle's train.csv")
    if path.suffix not in (".csv", ".npz"):
        raise UserError(f"{path}: unknown data format '{path.suffix}'; pass a Keras .npz, a folder of IDX "
                        "files or Kaggle's train.csv")


def read(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """The arrays at `path` and where its test images come from."""
    check_path(path)
    if path.is_dir():
        return read_idx_folder(path), "the IDX files' 10,000 test images"
    if path.suffix == ".csv":
        arrays = read_kaggle_csv(path)
        return arrays, (f"{len(arrays['y_test'])} images held out of {path.name} (stratified, seed "
                        f"{KAGGLE_TEST_SEED}); Kaggle's set has no labelled test images")
    return read_npz(path), "the .npz's 10,000 test images"


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_ARRAYS if k not in npz.files]
            if missing:
                raise UserError(f"{path}: array '{missing[0]}' is missing; expected {', '.join(NPZ_ARRAYS)}")
            return {k: npz[k] for k in NPZ_ARRAYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path}: not a readable .npz ({err}); download MNIST again") from None


def read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    return {name: read_idx(path, dims=3 if name.startswith("x") else 1) for name, path in idx_paths(folder).items()}


def idx_paths(folder: Path) -> dict[str, Path]:
    """The four IDX files in `folder`, each plain or gzipped, by the array each holds."""
    paths = {}
    for name, stem in IDX_FILES.items():
        found = [folder / f"{stem}{ext}" for ext in ("", ".gz") if (folder / f"{stem}{ext}").is_file()]
        if not found:
            raise UserError(f"{folder}: no {stem} (or {stem}.gz); a folder needs LeCun's four MNIST IDX files")
        paths[name] = found[0]
    return paths


def read_idx(path: Path, dims: int) -> np.ndarray:
    """One IDX file: a big-endian header (magic, then each dimension's size) and raw bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(f"{path}: cannot read it ({err}); download the IDX files again") from None
    header = 4 * (1 + dims)
    if len(raw) < header or int.from_bytes(raw[:4], "big") != IDX_MAGIC[dims]:
        raise UserError(f"{path}: not an IDX file of {dims}-dimensional unsigned bytes (wrong magic number)")
    shape = tuple(int.from_bytes(raw[4 * (i + 1):4 * (i + 2)], "big") for i in range(dims))
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path}: holds {data.size} bytes of data, its header says {int(np.prod(shape))}; "
                        "the file is truncated or damaged")
    return data.reshape(shape)


def read_kaggle_csv(path: Path) -> dict[str, np.ndarray]:
    import pandas as pd  # only for this format

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a readable CSV ({type(err).__name__}); expected Kaggle's train.csv") from None
    pixels = [c for c in frame.columns if c != "label"]
    if "label" not in frame.columns or len(pixels) != 784:
        raise UserError(f"{path}: expected a 'label' column and 784 pixel columns (Kaggle's train.csv), "
                        f"found {len(frame.columns)} columns")
    values = frame[["label", *pixels]].to_numpy()
    if not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values[:, 1:].max() > 255:
        raise UserError(f"{path}: labels and pixels must be whole numbers, pixels 0 to 255")
    labels, images = values[:, 0], values[:, 1:].astype(np.uint8).reshape(-1, 28, 28)
    if labels.max() > 9 or len(labels) < 2 * KAGGLE_TEST_SHARE:
        raise UserError(f"{path}: labels must be 0 to 9, and there must be at least {2 * KAGGLE_TEST_SHARE} rows")
    train, test = stratified_split(labels, len(labels) // KAGGLE_TEST_SHARE, KAGGLE_TEST_SEED)
    labels = labels.astype(np.uint8)
    return {"x_train": images[train], "y_train": labels[train], "x_test": images[test], "y_test": labels[test]}
