"""Seeded, stratified splits: validation out of the training images, a test set out of Kaggle's."""

from __future__ import annotations

import numpy as np

from mnist_sweep.errors import UserError


def stratified_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices with each digit's share kept in the validation set."""
    if not 0 < val_size < len(labels):
        raise UserError(f"validation size {val_size} must be between 1 and {len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * val_size / len(labels)
    take = np.floor(quota).astype(int)
    # Hand the rounding remainder to the classes with the largest fractional parts.
    take[np.argsort(quota - take)[::-1][: val_size - take.sum()]] += 1
    val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    val = rng.permutation(val)
    mask = np.ones(len(labels), bool)
    mask[val] = False
    return np.flatnonzero(mask), val
