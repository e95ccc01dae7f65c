"""TensorFlow loaded without its start-up noise on standard error, and with it where loading fails (quiet.py).

A stand-in `tensorflow` module writes to file descriptor 2 as TensorFlow's C++ logging does, so
the window is tested in a fraction of a second, in this process."""

from __future__ import annotations

import os
import sys

import pytest

from mnist_sweep import quiet
from mnist_sweep.runtime import devices


@pytest.fixture
def fake_tensorflow(tmp_path, monkeypatch):
    """`import tensorflow` finds a stand-in that says `noise` on fd 2; the real module is put back after."""
    real = sys.modules.pop("tensorflow", None)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # load_tensorflow sets it where it is not set
    monkeypatch.setattr(devices, "configure", lambda tf: os.write(2, b"failed call to cuInit\n"))

    def write(source: str) -> None:
        (tmp_path / "tensorflow.py").write_text("import os\nos.write(2, b'absl::InitializeLog noise\\n')\n" + source)

    yield write
    sys.modules.pop("tensorflow", None)
    if real is not None:
        sys.modules["tensorflow"] = real


def test_tensorflows_start_up_lines_are_hidden_and_standard_error_works_after(fake_tensorflow, capfd):
    fake_tensorflow("LOADED = True\n")
    tf = quiet.load_tensorflow()
    assert tf.LOADED and quiet.load_tensorflow() is tf  # loaded once
    os.write(2, b"a line of the sweep\n")
    assert capfd.readouterr().err == "a line of the sweep\n"


def test_where_loading_fails_what_tensorflow_said_is_shown_with_the_error(fake_tensorflow, capfd):
    fake_tensorflow("raise ImportError('libcudart.so.12: cannot open shared object file')\n")
    with pytest.raises(ImportError, match="libcudart"):
        quiet.load_tensorflow()
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "absl::InitializeLog noise\nafter\n"
