import hashlib

import numpy as np
import pytest

from conftest import synthetic_arrays
from mnist_sweep.data import load_mnist, search_data
from mnist_sweep.errors import UserError

# Digests of the real arrays, as ../shared/data/README.md gives them.
REAL_DIGESTS = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


def full_size(**changes) -> dict[str, np.ndarray]:
    x_train = np.zeros((60000, 28, 28), np.uint8)
    x_train[:, 14, 14] = np.arange(60000) % 256  # images, if dull ones: all of one value is refused
    arrays = {"x_train": x_train, "y_train": np.arange(60000, dtype=np.uint8) % 10,
              "x_test": np.zeros((10000, 28, 28), np.uint8), "y_test": np.arange(10000, dtype=np.uint8) % 10}
    return {**arrays, **changes}


def test_search_data_never_contains_test_images(tiny_mnist):
    data = search_data(tiny_mnist, val_size=50, seed=0, train_limit=100)
    assert len(data.x_train) == 100 and len(data.x_val) == 50
    assert data.x_train.dtype == np.float32 and data.x_train.max() <= 1.0
    assert not hasattr(data, "x_test")


def test_a_valid_file_loads_and_its_digest_identifies_the_arrays(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **full_size())
    first = load_mnist(str(path))
    changed = full_size()
    changed["x_test"][0, 0, 0] = 1
    np.savez(path, **changed)
    assert load_mnist(str(path)).digest != first.digest


@pytest.mark.parametrize("arrays, expected", [
    (full_size(y_train=np.full(60000, 10, np.uint8)), "label 10"),
    (full_size(x_train=np.zeros((60000, 28, 28), np.float32)), "dtype float32"),
    (full_size(x_test=np.zeros((9000, 28, 28), np.uint8)), "shape (9000, 28, 28)"),
    ({k: v for k, v in full_size().items() if k != "y_test"}, "array 'y_test' is missing"),
])
def test_wrong_arrays_are_refused(tmp_path, arrays, expected):
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_mnist(str(path))


def test_truncated_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **synthetic_arrays())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(UserError, match="not a readable .npz"):
        load_mnist(str(path))
    with pytest.raises(UserError, match="no such data file"):
        load_mnist(str(tmp_path / "absent.npz"))


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere.npz"
    np.savez(path, **full_size())
    monkeypatch.setenv("MNIST_SWEEP_DATA", str(path))
    assert load_mnist(None).source == str(path)


@pytest.mark.slow
def test_the_real_file_matches_the_published_digests(real_data):
    mnist = load_mnist(str(real_data))
    for name, expected in REAL_DIGESTS.items():
        assert hashlib.sha256(getattr(mnist, name).tobytes()).hexdigest() == expected
    assert list(mnist.y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_without_a_file_or_network_the_error_says_how_to_fix_it(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure")

    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(UserError, match="cannot download MNIST .*pass --data PATH or set MNIST_SWEEP_DATA"):
        load_mnist(None)
