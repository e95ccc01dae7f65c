"""read_digit: an image file of a digit as MNIST draws one (28x28, light ink on dark, centred by mass)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_sweep.errors import UserError
from mnist_sweep.images import read_digit


def save(path, pixels: np.ndarray):
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_a_28x28_image_is_read_exactly_as_it_is(tmp_path):
    digit = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    digit[0], digit[-1], digit[:, 0], digit[:, -1] = 0, 0, 0, 0  # MNIST's dark border
    assert np.array_equal(read_digit(save(tmp_path / "d.png", digit)), digit)


def test_dark_ink_on_light_paper_is_inverted_and_any_size_is_fitted_and_centred(tmp_path):
    paper = np.full((120, 90), 255, np.uint8)
    paper[10:70, 20:40] = 0  # a dark bar in the top-left part of a large light page
    digit = read_digit(save(tmp_path / "scan.jpg", paper))
    assert digit.shape == (28, 28) and digit[0].max() == 0  # light on dark now, border empty
    rows, cols = np.nonzero(digit > 128)
    assert rows.max() - rows.min() + 1 == 20  # the longer side fills MNIST's 20-pixel box
    assert abs(rows.mean() - 13.5) < 1.5 and abs(cols.mean() - 13.5) < 1.5  # centred by mass


def test_a_file_that_is_not_an_image_is_refused_in_one_line(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(UserError, match="x.png: not a readable image"):
        read_digit(tmp_path / "x.png")


def test_a_16_bit_or_float_scan_is_read_as_its_8_bit_self(tmp_path):
    """Pillow's convert("L") clipped a 16-bit image at 255, nearly all white, and a 0-1 float one to black."""
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "d16.png")
    Image.fromarray(digit.astype(np.float32) / 255, mode="F").save(tmp_path / "dfloat.tif")
    assert Image.open(tmp_path / "d16.png").mode.startswith("I")
    assert np.array_equal(read_digit(tmp_path / "d16.png"), digit)
    assert np.array_equal(read_digit(tmp_path / "dfloat.tif"), digit)
