"""stratified_split: the validation images every trial of a study is judged on."""

import numpy as np

from mnist_sweep.splits import stratified_split


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(10, dtype=np.uint8), [500, 700, 520, 560, 480, 450, 500, 540, 490, 510])
    train, val = stratified_split(labels, 1000, seed=3)
    assert len(val) == 1000 and len(train) == len(labels) - 1000
    assert not set(train) & set(val)
    share = np.bincount(labels[val], minlength=10) / 1000
    assert np.allclose(share, np.bincount(labels) / len(labels), atol=0.002)
    again, _ = stratified_split(labels, 1000, seed=3)
    other, _ = stratified_split(labels, 1000, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
