"""Shared fixtures: a fixed seed, tiny synthetic MNIST, a temporary tracking store, the real file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_sweep.engines  # noqa: F401  registers the engines' declarations with the settings, as the CLI does
from mnist_sweep.data import MNIST, digest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("MNIST_SWEEP_DATA", REPO.parent / "shared" / "data" / "mnist.npz"))


def synthetic_arrays(n_train: int = 300, n_test: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """Digit-like data a model can learn: each class lights its own block of pixels."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for digit in range(10):
            x[y == digit, 2 * digit: 2 * digit + 6, 4:24] = 250
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def tiny_mnist() -> MNIST:
    arrays = synthetic_arrays()
    return MNIST(**arrays, digest=digest(arrays), source="synthetic")


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real MNIST file; missing is a skip on a laptop but a failure in CI."""
    if not REAL_DATA.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"real MNIST file missing at {REAL_DATA}; set MNIST_SWEEP_DATA")
        pytest.skip(f"real MNIST file not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True)
def no_mlflow_environment(monkeypatch):
    """MLflow's own variables name the store a command uses (as users expect), and MLflow sets
    MLFLOW_TRACKING_URI itself whenever a store is opened: each test starts without them."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)


@pytest.fixture(autouse=True)
def no_sweep_start(monkeypatch):
    """A sweep run in this process hands its start to its workers in the environment (cli._started):
    each test starts without one, and what a test's sweep set is undone after it."""
    from mnist_sweep.runtime.workers import STARTED_ENV

    monkeypatch.setenv(STARTED_ENV, "0")
    monkeypatch.delenv(STARTED_ENV)


@pytest.fixture(autouse=True)
def float32_unless_asked(monkeypatch):
    """A command run in this process chooses the number format for all it trains after
    (runtime/precision.py): each test starts in float32, and Keras's policy with it."""
    monkeypatch.setenv("MNIST_SWEEP_COMPUTE", "float32")  # set, not deleted: a test's own choice is undone after it
    yield
    if "keras" in sys.modules:
        import keras

        keras.mixed_precision.set_global_policy("float32")
