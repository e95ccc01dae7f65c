"""The final step's time budget: the best trial whose retrain is estimated to fit."""

from __future__ import annotations

from mnist_sweep.budget import choose, retrain_seconds
from mnist_sweep.studies import TrialOutcome


def trial(number: int, value: float, seconds: float, epochs: int, threads: int = 1) -> TrialOutcome:
    return TrialOutcome(number, "completed", {}, value, epochs, seconds, threads=threads)


def test_the_retrain_is_estimated_from_the_trials_own_epochs():
    # 30 epochs in 600 s on 10,000 images with 1 thread: on 60,000 with 2 threads, 600 * 6 / 1.6.
    assert retrain_seconds(trial(0, 0.99, 600, 30), 10000, 60000, 2) == 600 * 6 / 1.6
    assert retrain_seconds(trial(0, 0.99, 600, 30, threads=2), 10000, 60000, 2) == 3600


def test_the_best_that_fits_is_retrained_and_the_better_ones_passed_over_are_named():
    slow, quick, worse = trial(3, 0.995, 1200, 30), trial(8, 0.993, 60, 10), trial(9, 0.99, 30, 5)
    chosen = choose([worse, slow, quick], 9, 10000, 60000, 2)
    assert chosen.trial is quick and [t.number for t, _ in chosen.passed_over] == [3]
    assert "trial 3 (75 min)" in chosen.note()
    assert choose([worse, slow, quick], None, 10000, 60000, 2).trial is slow  # no budget: the best
    assert choose([slow], 9, 10000, 60000, 2).trial is slow  # none fits: still the best, not nothing
