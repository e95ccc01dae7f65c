"""A photo or scan of a digit, as the 28x28 light-on-dark image the models were trained on.

MNIST's digits are white on black, scaled to fit a 20x20 box and centred by their mass in
28x28. A 28x28 file is taken as it is; any other size is put through the same steps. Paper is
light and ink dark, so an image whose border (background) is light is inverted first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_sweep.errors import UserError

SIZE, BOX = 28, 20


def read_digit(path: Path) -> np.ndarray:
    """The image at `path` as uint8 (28, 28), light digit on a dark ground."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as err:
        raise UserError(f"{path}: not a readable image ({type(err).__name__}); give PNG or JPEG files") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127:  # dark on light, as on paper
        gray = 255 - gray
    if gray.shape != (SIZE, SIZE):
        gray = _like_mnist(gray)
    return np.clip(gray, 0, 255).astype(np.uint8)


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
