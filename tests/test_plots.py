"""The report's matplotlib figures (reporting/plots.py), drawn from tiny made-up trials and predictions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mnist_sweep.reporting.plots import confusion, confusion_matrix, history, misclassified, pyplot
from mnist_sweep.studies import TrialOutcome


def test_the_best_so_far_line_follows_completed_trials_only_and_no_figure_stays_open(tmp_path):
    scored = [TrialOutcome(0, "completed", {}, 0.90), TrialOutcome(1, "pruned", {}, 0.99),
              TrialOutcome(2, "completed", {}, 0.80), TrialOutcome(3, "completed", {}, 0.95)]
    with pyplot() as plt:
        history(plt, scored, tmp_path / "history.png")
        (best,) = plt.gcf().axes[0].lines
        assert list(best.get_ydata()) == [0.90, 0.90, 0.90, 0.95]  # a pruned trial's 0.99 is not comparable
    assert plt.get_fignums() == [] and (tmp_path / "history.png").stat().st_size > 1000


def test_the_test_set_figures_count_the_right_digits_and_name_each_mistake(tmp_path):
    truth = np.arange(100) % 10
    predicted = truth.copy()
    predicted[[3, 17]] = [5, 1]  # a 3 read as 5 and a 7 read as 1
    matrix = confusion_matrix(truth, predicted)
    assert matrix[3, 5] == matrix[7, 1] == 1 and matrix[3, 3] == 9  # rows: true digit, columns: predicted
    test = SimpleNamespace(truth=truth, predicted=predicted, wrong=np.array([3, 17]),
                           wrong_images=np.zeros((2, 28, 28), np.uint8))
    with pyplot() as plt:
        confusion(plt, matrix, tmp_path / "confusion.png")
        assert plt.gcf().axes[0].get_title() == "Final model on the test set: 98 of 100 right"
        misclassified(plt, test, tmp_path / "misclassified.png")
        figure = plt.gcf()
        titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
        assert titles == ["#3: 3 as 5", "#17: 7 as 1"]
        assert figure.texts[0].get_text().startswith("2 misclassified test digits")
