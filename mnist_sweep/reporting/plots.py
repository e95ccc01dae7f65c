"""The report's matplotlib figures, each written to a PNG file: matplotlib is imported here only."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mnist_sweep.outcomes import Outcome

GRID = (4, 8)  # rows and columns of the misclassified-digit grid


@contextmanager
def pyplot() -> Iterator[Any]:
    """matplotlib drawing to files only (no display here), every figure closed afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        yield plt
    finally:
        plt.close("all")


def history(plt: Any, scored: list[Any], path: Path) -> Path:
    """Each trial's validation accuracy in trial order, pruned ones grey, and the best so far."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    colours = {Outcome.COMPLETED: "tab:blue", Outcome.PRUNED: "tab:gray"}
    for outcome, colour in colours.items():
        chosen = [t for t in scored if t.outcome == outcome]
        axis.scatter([t.number for t in chosen], [t.value for t in chosen], c=colour, s=18, label=outcome.value)
    best, so_far = [], -1.0
    for t in scored:
        so_far = max(so_far, t.value) if t.outcome == Outcome.COMPLETED else so_far
        best.append(so_far if so_far >= 0 else None)
    axis.plot([t.number for t in scored], best, c="tab:red", label="best completed so far")
    axis.set(xlabel="trial", ylabel="validation accuracy", title="Optimization history")
    axis.legend(loc="lower right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def parameters(plt: Any, scored: list[Any], path: Path) -> Path:
    """One small scatter per parameter: its value against validation accuracy."""
    names = sorted({k for t in scored for k in t.params})
    cols = 4
    rows = max(1, math.ceil(len(names) / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        pairs = [(t.params[name], t.value) for t in scored if name in t.params]
        xs = [str(x) if isinstance(x, (bool, str)) else x for x, _ in pairs]
        axis.scatter(xs, [v for _, v in pairs], s=12)
        axis.set_title(name, fontsize=9)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.suptitle("Each parameter against validation accuracy")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def curves(plt: Any, histories: dict[int, list[float]], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for number, values in histories.items():
        axis.plot(range(1, len(values) + 1), values, marker=".", label=f"trial {number}")
    axis.set(xlabel="epoch", ylabel="validation accuracy",
             title=f"Learning curves of the top {len(histories)} trials")
    if histories:
        axis.legend(loc="lower right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def importances(plt: Any, values: dict[str, float], path: Path) -> Path:
    """Horizontal bars, most important parameter on top."""
    names = list(values)[::-1]
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    axis.barh(names, [values[n] for n in names], color="tab:blue")
    axis.set(xlabel="importance for validation accuracy (fANOVA, sums to 1)", title="Parameter importances")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def confusion(plt: Any, matrix: np.ndarray, path: Path) -> Path:
    """Counts of true digit (rows) against predicted digit (columns) on the test set."""
    figure, axis = plt.subplots(figsize=(6.5, 6))
    axis.imshow(np.log1p(matrix), cmap="Blues")  # log colours, so the few errors show beside the diagonal
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            axis.text(col, row, str(count), ha="center", va="center", fontsize=7,
                      color="white" if row == col else "black")
    axis.set(xticks=range(10), yticks=range(10), xlabel="predicted digit", ylabel="true digit",
             title=f"Final model on the test set: {int(matrix.trace())} of {int(matrix.sum())} right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def misclassified(plt: Any, test: Any, path: Path) -> Path:
    """The first wrongly classified test digits, each titled with the true and predicted digit."""
    figure, axes = plt.subplots(*GRID, figsize=(1.4 * GRID[1], 1.6 * GRID[0]), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, index, image in zip(axes.flat, test.wrong, test.wrong_images):
        axis.imshow(image, cmap="gray_r")
        axis.set_title(f"#{index}: {test.truth[index]} as {test.predicted[index]}", fontsize=8)
    errors = int((test.truth != test.predicted).sum())
    figure.suptitle(f"{errors} misclassified test digits (the first {len(test.wrong)}: true digit as predicted)")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (truth.astype(int), predicted.astype(int)), 1)
    return matrix
