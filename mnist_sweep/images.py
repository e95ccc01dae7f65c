"""A photo or scan of a digit, as the 28x28 light-on-dark image the models were trained on.

MNIST's digits are white on black, scaled to fit a 20x20 box and centred by their mass in
28x28. A 28x28 file is taken as it is; any other size is put through the same steps. Paper is
light and ink dark, so an image whose border (background) is light is inverted first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mnist_sweep.errors import UserError

SIZE, BOX = 28, 20


def check_image(path: Path) -> None:
    """Refuse, from its header alone (before TensorFlow loads), a file that is no image of one digit:
    not an image, over the pixels Pillow opens safely (a decompression bomb), or animated."""
    with _opened(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:  # which frame holds the digit? Only the first would be read
            raise UserError(f"{path}: an animation of {frames} frames; give one still image of one digit")


def _opened(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # between Pillow's limit and twice it, only a warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{path}: over the {Image.MAX_IMAGE_PIXELS} pixels Pillow opens safely; give a smaller "
                        "image of the digit") from None
    except (OSError, UnidentifiedImageError) as err:
        raise UserError(f"{path}: not a readable image ({type(err).__name__}); give PNG or JPEG files") from None


def read_digit(path: Path) -> np.ndarray:
    """The image at `path` as uint8 (28, 28), light digit on a dark ground."""
    with _opened(path) as image:
        try:
            gray = _gray(image)
        except OSError as err:  # a truncated file fails only when its pixels are read
            raise UserError(f"{path}: not a readable image ({type(err).__name__}); give PNG or JPEG files") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127:  # dark on light, as on paper
        gray = 255 - gray
    if gray.shape != (SIZE, SIZE):
        gray = _like_mnist(gray)
    return np.clip(gray, 0, 255).astype(np.uint8)


def _gray(image: Any) -> np.ndarray:
    """0-255 gray levels. Pillow's convert("L") clips a 16-bit scan at 255 (nearly all white) and
    a float image's 0-1 to black: those are scaled instead."""
    if image.mode.startswith("I"):  # I;16 (16-bit PNG, TIFF) or I (32-bit)
        return np.asarray(image, dtype=np.float32) / 257
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float32)
        return gray * 255 if gray.max() <= 1 else gray
    return np.asarray(image.convert("L"), dtype=np.float32)


def _like_mnist(gray: np.ndarray) -> np.ndarray:
    from PIL import Image

    rows, cols = np.nonzero(gray > 0.2 * gray.max()) if gray.max() > 0 else ([0], [0])
    crop = gray[min(rows):max(rows) + 1, min(cols):max(cols) + 1]
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    out = np.zeros((SIZE, SIZE), np.float32)
    mass = digit.sum() or 1.0
    centre = [(np.arange(n) * digit.sum(axis=1 - axis)).sum() / mass for axis, n in enumerate(digit.shape)]
    top = int(np.clip(round(SIZE / 2 - centre[0]), 0, SIZE - digit.shape[0]))
    left = int(np.clip(round(SIZE / 2 - centre[1]), 0, SIZE - digit.shape[1]))
    out[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    return out
