"""The final step's time budget: the best trial whose retrain is estimated to fit, for as many epochs as fit."""

from __future__ import annotations

from mnist_sweep.budget import choose, epoch_seconds
from mnist_sweep.studies import TrialOutcome


def trial(number: int, value: float, seconds: float, epochs: int, threads: int = 1, planned: int | None = None,
          ) -> TrialOutcome:
    return TrialOutcome(number, "completed", {"epochs": planned or epochs}, value, epochs, seconds, threads=threads)


def test_a_retrain_epoch_is_estimated_from_the_trials_own_epochs():
    # 30 epochs in 600 s on 10,000 images with 1 thread: an epoch on 60,000 with 2 threads, 20 * 6 / 1.6.
    assert epoch_seconds(trial(0, 0.99, 600, 30), 10000, 60000, 2) == 20 * 6 / 1.6
    assert epoch_seconds(trial(0, 0.99, 600, 30, threads=2), 10000, 60000, 2) == 120


def test_the_best_that_fits_is_retrained_and_the_better_ones_passed_over_are_named():
    slow, quick, worse = trial(3, 0.995, 1200, 30), trial(8, 0.993, 60, 10), trial(9, 0.99, 30, 5)
    chosen = choose([worse, slow, quick], 9, 10000, 60000, 2)
    assert chosen.trial is quick and chosen.epochs == 10 and [t.number for t, _ in chosen.passed_over] == [3]
    assert "trial 3 (75 min)" in chosen.note()
    assert choose([worse, slow, quick], None, 10000, 60000, 2).trial is slow  # no budget: the best
    assert choose([slow], 9, 10000, 60000, 2).trial is slow  # none fits: still the best, not nothing


def test_a_configuration_cut_short_in_the_search_retrains_for_as_many_of_its_epochs_as_fit():
    # Judged on 9 of its 30 epochs, 20 s each on 10,000 images: 75 s per epoch on 60,000 with 2 threads.
    cut = trial(0, 0.995, 180, 9, planned=30)
    assert choose([cut], None, 10000, 60000, 2, trial_epochs=9).epochs == 30  # no budget: all its own
    chosen = choose([cut], 10, 10000, 60000, 2, trial_epochs=9)
    assert chosen.trial is cut and chosen.epochs == 8  # 600 s / 75 s
    assert "for 8 of its 30 epochs" in chosen.note()
    alone = choose([cut], 10, 10000, 60000, 2, members=2, trial_epochs=9)  # a second model would halve its epochs
    assert (alone.epochs, alone.members) == (8, 1) and "trains 1 of the 2 models" in alone.note()
    # Fewer gradient steps than the trial took (9 epochs on 10,000 = 2 on 60,000) would not be a retrain.
    other = trial(1, 0.99, 10, 5)
    assert choose([cut, other], 2, 10000, 60000, 2, trial_epochs=9).trial is other
    # Without trial_epochs, a trial that stopped early (9 of 30) retrains for the 9 it ran.
    assert choose([cut], None, 10000, 60000, 2).epochs == 9


def test_an_ensemble_gets_as_many_whole_retrains_as_fit_and_never_shortens_them():
    # 10 epochs in 60 s on 10,000 images with 1 thread: 22.5 s an epoch on 60,000 with 2, 225 s a retrain.
    quick = trial(8, 0.993, 60, 10)
    assert (choose([quick], 9, 10000, 60000, 2, members=3).members, choose([quick], 9, 10000, 60000, 2).members) == (2, 1)
    two = choose([quick], 9, 10000, 60000, 2, members=3)
    assert two.epochs == 10 and "trains 2 of the 3 models final_models asks for" in two.note()
    three = choose([quick], 12, 10000, 60000, 2, members=3)
    assert (three.members, three.epochs, three.note()) == (3, 10, None)
    one = choose([quick], 4, 10000, 60000, 2, members=3)  # 240 s: one whole retrain, not three of 3 epochs
    assert (one.members, one.epochs) == (1, 10)
    assert choose([quick], None, 10000, 60000, 2, members=3).members == 3  # no budget: as many as asked
