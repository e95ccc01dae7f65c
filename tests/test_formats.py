"""The MNIST files people have: Keras's .npz, LeCun's IDX files, Kaggle's train.csv."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mnist_sweep.data import load_mnist
from mnist_sweep.errors import UserError
from mnist_sweep.formats import IDX_FILES, IDX_MAGIC


def write_idx(path: Path, array: np.ndarray) -> None:
    header = IDX_MAGIC[array.ndim].to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if path.suffix == ".gz" else raw)


def idx_folder(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    for name, stem in IDX_FILES.items():  # training files gzipped, test files not: both are read
        write_idx(folder / (f"{stem}.gz" if "train" in name else stem), arrays[name])
    return folder


def kaggle_csv(path: Path, n: int = 600) -> Path:
    """n rows; image i carries its own number in its first two pixels, to follow it through the split."""
    labels = np.arange(n) % 10
    images = np.zeros((n, 784), np.int64)
    images[:, 0], images[:, 1] = np.arange(n) % 256, np.arange(n) // 256
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = np.column_stack([labels, images])
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")
    return path


@pytest.mark.slow
def test_lecun_idx_files_give_the_same_arrays_as_the_npz(real_data, tmp_path):
    npz = load_mnist(str(real_data))
    arrays = {k: getattr(npz, k) for k in IDX_FILES}
    from_idx = load_mnist(str(idx_folder(tmp_path, arrays)))
    assert from_idx.digest == npz.digest  # bit for bit
    assert "IDX" in from_idx.test_set


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated or damaged"),
    (lambda p: p.write_bytes(b"\x00\x00\x08\x01" + p.read_bytes()[4:]), "wrong magic number"),
    (lambda p: p.unlink(), "no t10k-images-idx3-ubyte"),
], ids=["truncated", "wrong-magic", "missing"])
def test_a_damaged_idx_folder_is_refused_in_one_line(tmp_path, damage, message):
    arrays = {"x_train": np.zeros((60000, 28, 28), np.uint8), "y_train": np.arange(60000, dtype=np.uint8) % 10,
              "x_test": np.zeros((10000, 28, 28), np.uint8), "y_test": np.arange(10000, dtype=np.uint8) % 10}
    idx_folder(tmp_path, arrays)
    damage(tmp_path / IDX_FILES["x_test"])
    with pytest.raises(UserError, match=message) as err:
        load_mnist(str(tmp_path))
    assert "\n" not in str(err.value)


def test_kaggle_csv_holds_out_a_fixed_stratified_sixth_as_its_test_set(tmp_path):
    path = kaggle_csv(tmp_path / "train.csv")
    mnist = load_mnist(str(path))
    assert mnist.x_train.shape == (500, 28, 28) and mnist.x_test.shape == (100, 28, 28)
    assert np.bincount(mnist.y_test, minlength=10).tolist() == [10] * 10  # each digit its share
    def ids(x):
        return set((x[:, 0, 0].astype(int) + 256 * x[:, 0, 1].astype(int)).tolist())
    assert not ids(mnist.x_train) & ids(mnist.x_test) and len(ids(mnist.x_train) | ids(mnist.x_test)) == 600
    assert load_mnist(str(path)).digest == mnist.digest  # the same test set every time, whatever --seed
    assert "100 images held out of train.csv" in mnist.test_set


@pytest.mark.parametrize("text, message", [
    ("label,a,b\n1,2,3\n", "784 pixel columns"),
    ("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "1," + ",".join(["300"] * 784) + "\n",
     "pixels 0 to 255"),
    ("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n" + "12," + ",".join(["0"] * 784) + "\n",
     "labels must be 0 to 9"),
], ids=["columns", "pixel-range", "label-range"])
def test_a_wrong_kaggle_csv_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "train.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_mnist(str(path))


def test_an_unknown_format_is_named_with_the_ones_that_work(tmp_path):
    path = tmp_path / "mnist.txt"
    path.write_text("not mnist")
    with pytest.raises(UserError, match="unknown data format '.txt'; pass a Keras .npz, a folder of IDX"):
        load_mnist(str(path))
