"""MNIST from a local file (see formats.py) or Keras's download: checked, digested, split.

No TensorFlow at import."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_sweep import seeds
from mnist_sweep.config import ENVIRONMENT
from mnist_sweep.errors import UserError
from mnist_sweep.formats import read
from mnist_sweep.splits import stratified_split

ENV_VAR = ENVIRONMENT["data"]
ARRAYS = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}


@dataclass(frozen=True)
class MNIST:
    """The four arrays as loaded (uint8), with a digest that identifies them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    digest: str
    source: str
    test_set: str = "MNIST's 10,000 test images"  # where the test images come from, for the record


@dataclass(frozen=True)
class DataSlice:
    """Which images a run saw, as MLflow's dataset inputs record them: named, digested, sourced."""

    name: str
    digest: str
    source: str
    rows: int
    context: str  # MLflow's input context: training, validation or testing


@dataclass(frozen=True)
class SearchData:
    """What a search may see: training and validation images, never the test set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    slices: tuple[DataSlice, ...] = ()  # the two above, as the trial runs log them


def load_mnist(path: str | None = None) -> MNIST:
    """Read `path`, else $MNIST_SWEEP_DATA, else Keras's cached download."""
    path = path or os.environ.get(ENV_VAR)
    if not path:
        arrays = _download()
        check_arrays(arrays, "keras.datasets.mnist")
        return MNIST(**arrays, digest=digest(arrays), source="keras.datasets.mnist")
    arrays, test_set = read(Path(path))
    check_arrays(arrays, str(path), sized=not str(path).endswith(".csv"))  # Kaggle's set has its own size
    return MNIST(**arrays, digest=digest(arrays), source=str(path), test_set=test_set)


def _download() -> dict[str, np.ndarray]:
    import keras  # heavy: only when no local file was given

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:  # any network or cache failure means the same fix
        raise UserError(
            f"cannot download MNIST ({type(err).__name__}); pass --data PATH or set {ENV_VAR} "
            "to a local mnist.npz"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def check_arrays(arrays: dict[str, np.ndarray], source: str, sized: bool = True) -> None:
    """Refuse wrong shapes, dtypes or labels before any trial starts; `sized`: MNIST's own counts."""
    for name, shape in ARRAYS.items():
        array = arrays[name]
        if array.dtype != np.uint8:
            raise UserError(f"{source}: '{name}' has dtype {array.dtype}, expected uint8 (MNIST's raw bytes)")
        if not sized:
            shape = (len(array), *shape[1:])
        if array.shape != shape:
            raise UserError(f"{source}: '{name}' has shape {array.shape}, expected {shape}")
    for name in ("y_train", "y_test"):
        if arrays[name].size and arrays[name].max() > 9:
            raise UserError(f"{source}: '{name}' holds label {arrays[name].max()}, expected 0 to 9")
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_test"]) != len(arrays["y_test"]):
        raise UserError(f"{source}: images and labels differ in number")
    x, y = arrays["x_train"], arrays["y_train"]
    if x.size and x.min() == x.max():  # a model would only learn the class counts, and be registered
        raise UserError(f"{source}: every pixel of every training image is {x.min()}; these are not images "
                        "of digits")
    if y.size and len(np.unique(y)) < 2:
        raise UserError(f"{source}: every training label is {y[0]}; there is nothing to classify")


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the raw bytes of the four arrays, so any correct copy gives the same value."""
    h = hashlib.sha256()
    for name in ARRAYS:
        h.update(hashlib.sha256(np.ascontiguousarray(arrays[name]).tobytes()).digest())
    return h.hexdigest()


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], the input every model expects."""
    return images.astype(np.float32) / 255.0


def search_data(mnist: MNIST, val_size: int, seed: int, train_limit: int | None = None) -> SearchData:
    """Training and validation arrays for the search, cut from the 60k training images only."""
    train_idx, val_idx = stratified_split(mnist.y_train, val_size, seeds.split(seed))
    if train_limit is not None:
        train_idx = train_idx[:train_limit]
    split = f"validation {val_size}, seed {seed}, training images {train_limit or 'all'}"
    return SearchData(
        x_train=scale(mnist.x_train[train_idx]), y_train=mnist.y_train[train_idx],
        x_val=scale(mnist.x_train[val_idx]), y_val=mnist.y_train[val_idx],
        slices=(data_slice(mnist, "mnist-search-training", split, len(train_idx), "training"),
                data_slice(mnist, "mnist-search-validation", split, len(val_idx), "validation")),
    )


def final_slices(mnist: MNIST, train_limit: int | None) -> tuple[DataSlice, DataSlice]:
    """The final step's training images (all, or the first `train_limit`) and the test set."""
    train = len(mnist.y_train[:train_limit])
    return (data_slice(mnist, "mnist-training", f"first {train} training images", train, "training"),
            data_slice(mnist, "mnist-test", mnist.test_set, len(mnist.y_test), "testing"))


def data_slice(mnist: MNIST, name: str, how: str, rows: int, context: str) -> DataSlice:
    """A part of `mnist`, digested from the data's own digest and how the part was cut."""
    digest = hashlib.sha256(f"{mnist.digest}|{name}|{how}".encode()).hexdigest()[:20]
    return DataSlice(name, digest, f"{mnist.source} ({how})", rows, context)
