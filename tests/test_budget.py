"""The final step's choice: the best distinct configurations that fit final_minutes, side by side or alone,
and their epochs."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from mnist_sweep.budget import (MIN_MEMBER_EPOCHS, MOST_FILLED_EPOCHS, RESERVE_SHARE, RETRAIN_SLOWDOWN, Images,
                                Rate, choose, epoch_seconds, final_minutes, wall_seconds)
from mnist_sweep import seeds
from mnist_sweep.config import Settings
from mnist_sweep.studies import TrialOutcome


def trial(number: int, value: float, seconds: float, epochs: int, threads: int = 1, planned: int | None = None,
          ) -> TrialOutcome:
    return TrialOutcome(number, "completed", {"epochs": planned or epochs}, value, epochs, seconds, threads=threads)


def test_a_retrain_epoch_is_estimated_from_the_trials_own_epochs():
    # 30 epochs in 600 s on 10,000 images with 1 thread: an epoch on 60,000 with 2 threads, 20 * 6 / 1.6.
    assert epoch_seconds(trial(0, 0.99, 600, 30), Images(10000, 60000), 2) == 20 * 6 / 1.6
    assert epoch_seconds(trial(0, 0.99, 600, 30, threads=2), Images(10000, 60000), 2) == 120


def test_the_best_that_fits_is_retrained_and_the_better_ones_passed_over_are_named():
    slow, quick, worse = trial(3, 0.995, 1200, 30), trial(8, 0.993, 60, 10), trial(9, 0.99, 30, 5)
    chosen = choose([worse, slow, quick], 9, Images(10000, 60000), 2)
    assert chosen.trial is quick and chosen.epochs == 10 and [t.number for t, _ in chosen.passed_over] == [3]
    assert "trial 3 (75 min)" in chosen.note()
    assert choose([worse, slow, quick], None, Images(10000, 60000), 2).trial is slow  # no budget: the best
    assert choose([slow], 9, Images(10000, 60000), 2).trial is slow  # none fits: still the best, not nothing


def test_a_configuration_cut_short_in_the_search_retrains_for_as_many_of_its_epochs_as_fit():
    # Judged on 9 of its 30 epochs, 20 s each on 10,000 images: 75 s per epoch on 60,000 with 2 threads.
    cut = trial(0, 0.995, 180, 9, planned=30)
    assert choose([cut], None, Images(10000, 60000), 2, trial_epochs=9).epochs == 30  # no budget: all its own
    chosen = choose([cut], 10, Images(10000, 60000), 2, trial_epochs=9)
    assert chosen.trial is cut and chosen.epochs == 8 and chosen.members[0].cut  # 600 s / 75 s
    assert ("for 8 of its 30 epochs, as many as fit the final step's 10.0 minutes, its learning-rate schedule "
            "fitted to the 8" in chosen.note())
    alone = choose([cut], 10, Images(10000, 60000), 2, members=2, trial_epochs=9)  # no two whole retrains fit
    assert (alone.epochs, len(alone.members)) == (8, 1) and "trains 1 of the 2 models" in alone.note()
    # Fewer gradient steps than the trial took (9 epochs on 10,000 = 2 on 60,000) would not be a retrain.
    other = trial(1, 0.99, 10, 5)
    assert choose([cut, other], 2, Images(10000, 60000), 2, trial_epochs=9).trial is other
    # Without trial_epochs, a trial that stopped early (9 of 30) retrains for the 9 it ran.
    assert choose([cut], None, Images(10000, 60000), 2).epochs == 9


def test_an_ensemble_gets_as_many_whole_retrains_as_fit_side_by_side_and_never_shortens_them():
    # 10 epochs in 60 s on 10,000 images with 1 thread: on 60,000, 36 s an epoch with 1 thread (a
    # member beside another on two cores), 22.5 s with 2 (alone): 360 s a member, 225 s alone.
    quick = trial(8, 0.993, 60, 10)
    two = choose([quick], 9, Images(10000, 60000), 2, members=3)  # three take two rounds: 720 s
    assert (len(two.members), two.epochs, two.processes, two.threads) == (2, 10, 2, 1)
    assert "trains 2 of the 3 models final_models asks for" in two.note()
    three = choose([quick], 12, Images(10000, 60000), 2, members=3)
    assert (len(three.members), three.epochs, three.note()) == (3, 10, None)
    # 240 s: one whole retrain on both cores, not three cut
    one = choose([quick], 4, Images(10000, 60000), 2, members=3)
    assert (len(one.members), one.epochs, one.threads) == (1, 10, 2)
    assert len(choose([quick], None, Images(10000, 60000), 2, members=3).members) == 3  # no budget: as many as asked
    assert wall_seconds(three.members, 2, Images(10000, 60000)) == 720


def test_an_ensemble_takes_the_best_distinct_configurations_then_the_best_again():
    best, twin, second, third = (trial(1, 0.995, 60, 10), trial(4, 0.994, 60, 10), trial(2, 0.993, 60, 10),
                                 trial(3, 0.990, 60, 10))
    twin.params = dict(best.params)  # the same configuration, a worse seed: not a second opinion
    second.params, third.params = {"epochs": 10, "units": 64}, {"epochs": 10, "units": 32}
    chosen = choose([third, twin, second, best], None, Images(10000, 60000), 2, members=2)
    assert [(m.trial.number, m.retrain) for m in chosen.members] == [(1, 0), (2, 0)]
    assert chosen.trial is best
    alone = choose([twin, best], None, Images(10000, 60000), 2, members=3)
    assert [(m.trial.number, m.retrain) for m in alone.members] == [(1, 0), (1, 1), (1, 2)]  # its own seeds


def test_members_of_different_lengths_are_estimated_as_two_cores_would_run_them():
    long, short = trial(1, 0.995, 120, 10), trial(2, 0.994, 30, 10)
    short.params = {"epochs": 10, "units": 64}
    # 72 s and 18 s an epoch on 60,000 with one thread each: the long one decides, 720 s.
    chosen = choose([long, short], 12, Images(10000, 60000), 2, members=2)
    assert [m.trial.number for m in chosen.members] == [1, 2]
    alone = choose([long, short], 11, Images(10000, 60000), 2, members=2)  # the best alone, on both cores: 450 s
    assert [(m.trial.number, m.epochs) for m in alone.members] == [(1, 10)] and alone.threads == 2


def test_members_side_by_side_are_cut_to_their_core_but_never_below_the_epochs_they_were_judged_on():
    # Judged on 10 of their 20 epochs, 60 s on 10,000 images: 36 s an epoch on 60,000 with one thread.
    first, second = trial(1, 0.995, 60, 10, planned=20), trial(2, 0.994, 60, 10, planned=20)
    second.params = {"epochs": 20, "units": 64}
    team = choose([first, second], 9, Images(10000, 60000), 2, members=2, trial_epochs=10)  # 540 s: 15 epochs each
    assert [(m.trial.number, m.epochs, m.own_epochs) for m in team.members] == [(1, 15, 20), (2, 15, 20)]
    assert ("trial 2 for 15 of its 20 epochs, as many as fit the final step's 9.0 minutes, its learning-rate "
            "schedule fitted" in team.note())
    short = choose([first, second], 5, Images(10000, 60000), 2, members=2, trial_epochs=10)  # 8 epochs < the 10 judged
    assert len(short.members) == 1 and short.threads == 2


def test_a_team_passes_over_a_better_configuration_too_slow_for_one_core_and_names_it():
    slow, second, third = trial(1, 0.996, 300, 10), trial(2, 0.995, 30, 10), trial(3, 0.994, 30, 10)
    second.params, third.params = {"epochs": 10, "units": 64}, {"epochs": 10, "units": 32}
    # 180 s an epoch on 60,000 with one thread: 4 epochs in 12 minutes, fewer than the 10 it was judged on.
    team = choose([slow, second, third], 12, Images(10000, 60000), 2, members=2)
    assert [m.trial.number for m in team.members] == [2, 3] and [t.number for t, _ in team.passed_over] == [1]
    assert "ranked ahead of it but estimated too long to retrain: trial 1 (30 min)" in team.note()


def test_a_worse_configuration_too_slow_to_join_leaves_the_best_with_a_second_seed():
    best, slow = trial(1, 0.995, 60, 10), trial(2, 0.990, 600, 10)
    slow.params = {"epochs": 10, "units": 64}
    team = choose([best, slow], 9, Images(10000, 60000), 2, members=2)  # the slow one needs 60 min on one core
    assert [(m.trial.number, m.retrain) for m in team.members] == [(1, 0), (1, 1)]


def test_trials_of_older_studies_without_times_are_retrained_whole_not_divided_by_zero():
    timeless = trial(1, 0.995, 0.0, 10)
    assert [m.epochs for m in choose([timeless], 5, Images(10000, 60000), 2, members=2).members] == [10, 10]


def test_when_nothing_fits_the_best_is_retrained_as_briefly_as_it_was_judged_and_the_note_says_it_overruns():
    slow = trial(1, 0.995, 6000, 10)  # 600 s an epoch on 10,000 images: hours on 60,000
    chosen = choose([slow], 5, Images(10000, 60000), 2, members=2)
    # As few epochs as its trial's steps (10 on 10,000 images: 2 on 60,000): the budget is spent already.
    assert (len(chosen.members), chosen.epochs, chosen.passed_over) == (1, 2, ())
    assert "no retrain is estimated to fit the final step's 5.0 minutes" in chosen.note()


def test_a_trials_validation_pass_is_not_counted_as_training_in_the_estimate():
    # 10 epochs in 100 s, each over 10,000 training and 10,000 validation images (a third the cost
    # of training ones): 7.5 s of training an epoch, so 45 s an epoch on 60,000.
    assert epoch_seconds(trial(0, 0.99, 100, 10), Images(10000, 60000, 10000), 1) == 45


def test_where_the_search_cut_every_trial_a_member_trains_as_many_epochs_as_fit_not_its_untried_own():
    # Judged on the first 10 of its 12 epochs, 60 s on 10,000 images: 36 s an epoch on 60,000, one thread.
    first, second = trial(1, 0.995, 60, 10, planned=12), trial(2, 0.994, 60, 10, planned=12)
    second.params = {"epochs": 12, "units": 64}
    team = choose([first, second], 9, Images(10000, 60000), 2, members=2, trial_epochs=10)  # 540 s: 15 epochs
    assert [(m.epochs, m.own_epochs, m.rate) for m in team.members] == [(15, 12, Rate.ANNEALED)] * 2
    assert ("retrains trial 1 for 15 epochs, as many as fit the final step's 9.0 minutes, its rate falling along a "
            "cosine to them: the search judged every configuration on its first 10, not on its own 12") in team.note()
    assert {m.epochs for m in choose([first, second], 60, Images(10000, 60000), 2, members=2,
                                     trial_epochs=10).members} == {MOST_FILLED_EPOCHS}  # 100 fit
    # The search judged their own epochs (no trial_epochs): they train those, the budget to spare.
    whole = trial(1, 0.995, 60, 12), trial(2, 0.994, 60, 12)
    whole[1].params = {"epochs": 12, "units": 64}
    assert [m.epochs for m in choose(list(whole), 60, Images(10000, 60000), 2, members=2).members] == [12, 12]


def test_a_filled_cosine_keeps_its_own_schedule_over_the_longer_retrain():
    cosine = TrialOutcome(1, "completed", {"epochs": 12, "schedule": "cosine"}, 0.99, 2, 12.0)
    alone = choose([cosine], 20, Images(10000, 60000), 2, trial_epochs=2)  # 36 s an epoch: 33 fit
    assert (alone.members[0].epochs, alone.members[0].rate) == (MOST_FILLED_EPOCHS, Rate.OWN)
    assert "its schedule fitted to them" in alone.note()


def test_the_commands_minutes_leave_the_final_step_what_the_search_did_not_use():
    twenty_ago = time.time() - 20 * 60
    left = final_minutes(Settings(minutes=30), twenty_ago)  # 30 - 20 - the reserve
    assert left == pytest.approx(10 - 30 * RESERVE_SHARE, abs=0.05)
    assert final_minutes(Settings(minutes=30, final_minutes=5), twenty_ago) == 5  # the less of the two
    assert final_minutes(Settings(minutes=30, final_minutes=50), twenty_ago) == pytest.approx(left, abs=0.05)
    assert final_minutes(Settings(minutes=15), twenty_ago) == 0  # the search overran: nothing fits
    assert final_minutes(Settings(), twenty_ago) is None  # no budget: each retrains whole


def test_a_short_commands_reserve_leaves_its_final_step_time_to_train():
    # The MLP sweep's 5.4 minutes, 4 of them spent searching: its pair of members gets over a minute.
    assert final_minutes(Settings(minutes=5.4), time.time() - 4 * 60) > 1.0


def test_a_retrain_epoch_is_estimated_from_the_trials_last_epoch_of_training_alone_where_recorded():
    # The trial took 100 s for 2 epochs, building, tracing and validation included; its last epoch
    # trained in 20 s on 20,000 images: 60 s on 60,000 (and the slowdown seen), whatever the validation cost.
    recorded = TrialOutcome(0, "completed", {"epochs": 2}, 0.99, 2, 100.0, threads=1, epoch_seconds=20.0)
    assert epoch_seconds(recorded, Images(20000, 60000, 10000), 1) == pytest.approx(60 * RETRAIN_SLOWDOWN)
    assert epoch_seconds(recorded, Images(20000, 60000, 10000), 2) == pytest.approx(60 * RETRAIN_SLOWDOWN / 1.6)


def test_among_trials_tied_with_the_best_augmented_configurations_are_chosen_first():
    # On 10,000 validation images two standard errors at 98.45% are 0.25 points: 98.45, 98.42 and
    # 98.40 are tied, 98.00 is not.
    best, second, augmented, behind = (trial(n, v, 60, 2, planned=12) for n, v in
                                       ((1, 0.9845), (2, 0.9842), (3, 0.9840), (4, 0.9800)))
    for t, units in ((second, 64), (augmented, 32), (behind, 16)):
        t.params = {"epochs": 12, "units": units}
    augmented.params["augment"] = behind.params["augment"] = True
    trials, images = [best, second, augmented, behind], Images(20000, 60000, 10000)
    team = choose(trials, None, images, 2, members=2, trial_epochs=2)  # judged on 2 of their 12 epochs
    assert [m.trial.number for m in team.members] == [3, 1] and team.note() is None  # trial 1 is in
    alone = choose(trials, None, images, 2, members=1, trial_epochs=2)
    assert alone.trial is augmented and "leaves out trial 1, the best on validation" in alone.note()
    # Not tied, a better unaugmented configuration keeps its place.
    assert [m.trial.number for m in choose([best, behind], None, images, 2, members=2,
                                           trial_epochs=2).members] == [1, 4]
    # Trials that trained their own epochs (no trial_epochs), or no validation size (older callers):
    # the order is the validation accuracy's alone.
    assert choose(trials, None, images, 2).trial is best
    assert choose(trials, None, Images(20000, 60000), 2, trial_epochs=2).trial is best


def cut(number: int, value: float, epoch_seconds: float, units: int) -> TrialOutcome:
    """A trial judged on the first 2 of its 12 epochs of 20,000 images, its last in `epoch_seconds`."""
    return TrialOutcome(number, "completed", {"epochs": 12, "units": units}, value, 2, 3 * epoch_seconds,
                        threads=1, epoch_seconds=epoch_seconds)


def test_more_members_than_cores_take_turns_each_filled_to_its_share_of_the_budget():
    # 8 s an epoch of 20,000: 30 s an epoch of 60,000 (RETRAIN_SLOWDOWN). Four members on two
    # cores take two turns a core: 600 s each of the 20 minutes, 20 epochs, not their untried 12.
    trials = [cut(n, 0.99 - n / 1000, 8.0, 16 * n) for n in range(1, 6)]
    team = choose(trials, 20, Images(20000, 60000, 10000), 2, members=4, trial_epochs=2)
    assert [(m.trial.number, m.epochs) for m in team.members] == [(1, 20), (2, 20), (3, 20), (4, 20)]
    assert (team.processes, team.threads) == (2, 1)
    assert wall_seconds(team.members, 2, Images(20000, 60000, 10000)) <= 20 * 60


def test_a_member_whose_untried_epochs_would_be_cut_below_the_least_that_pays_is_passed_over():
    # Two members, a core each for the 20 minutes: the best, at 80 s an epoch of 20,000 (300 s of
    # 60,000), fits 4 epochs, fewer than MIN_MEMBER_EPOCHS; the next ones, at 12 s (45 s), fit 26.
    slow, *quick = cut(1, 0.990, 80.0, 96), cut(2, 0.989, 12.0, 32), cut(3, 0.988, 12.0, 16)
    team = choose([slow, *quick], 20, Images(20000, 60000, 10000), 2, members=2, trial_epochs=2)
    assert [(m.trial.number, m.epochs) for m in team.members] == [(2, 26), (3, 26)]
    assert 4 < MIN_MEMBER_EPOCHS
    assert [t.number for t, _ in team.passed_over] == [1]


def test_an_augmented_best_passed_over_for_time_is_named_as_too_slow_not_as_moved_by_the_tie_rule():
    slow, *quick = cut(1, 0.9865, 80.0, 96), cut(2, 0.9846, 12.0, 32), cut(3, 0.9845, 12.0, 16)
    slow.params["augment"] = True
    note = choose([slow, *quick], 20, Images(20000, 60000, 10000), 2, members=2, trial_epochs=2).note()
    assert "estimated too long to retrain: trial 1" in note and "augmented configurations tied" not in note


def test_the_enqueued_configuration_final_include_names_joins_the_team_whatever_its_short_trial_scored():
    # Its warm-up and averaging trail over a 2-epoch trial: it ranks last, a point below the rest.
    trials = [cut(n, 0.985 - n / 1000, 8.0, 16 * n) for n in range(1, 6)]
    recipe = replace(cut(9, 0.965, 8.0, 100), enqueued="recipe")
    images = Images(20000, 60000, 10000)
    team = choose([*trials, recipe], 20, images, 2, members=4, trial_epochs=2, include="recipe")
    assert [m.trial.number for m in team.members] == [1, 9, 2, 3]  # the best stays the study's choice
    assert "includes trial 9 ('recipe'" in team.note()
    plain = choose([*trials, recipe], 20, images, 2, members=4, trial_epochs=2)
    assert 9 not in [m.trial.number for m in plain.members] and "includes" not in (plain.note() or "")


def test_final_include_models_puts_that_many_seeds_of_the_included_configuration_in_the_team_after_the_best():
    trials = [cut(n, 0.985 - n / 1000, 8.0, 16 * n) for n in range(1, 6)]
    recipe = replace(cut(9, 0.965, 8.0, 100), enqueued="recipe")
    images = Images(20000, 60000, 10000)
    team = choose([*trials, recipe], 20, images, 2, members=4, trial_epochs=2, include="recipe", include_models=2)
    assert [m.trial.number for m in team.members] == [1, 9, 9, 2]
    copies = [seeds.member(0, m.trial.number, m.retrain) for m in team.members if m.trial.number == 9]
    assert len(set(copies)) == 2  # two models of it, not one trained twice
    assert "in final_include) 2 times, each with its own seed" in team.note()
    assert team.note().count("retrains trial 9 for") == 1  # one line for the configuration, not one per seed
    # Never the whole team: the best searched configuration leads it.
    pair = choose([*trials, recipe], 20, images, 2, members=2, trial_epochs=2, include="recipe", include_models=3)
    assert [m.trial.number for m in pair.members] == [1, 9]
    unlimited = choose([*trials, recipe], None, images, 2, members=4, trial_epochs=2, include="recipe",
                       include_models=2)
    assert [(m.trial.number, m.retrain) for m in unlimited.members] == [(1, 0), (9, 0), (9, 1), (2, 0)]


def test_where_the_best_is_passed_over_the_best_searched_member_not_the_included_one_is_the_choice():
    slow, quick = cut(1, 0.990, 80.0, 96), cut(2, 0.989, 12.0, 32)
    recipe = replace(cut(9, 0.965, 12.0, 100), enqueued="recipe")
    team = choose([slow, quick, recipe], 20, Images(20000, 60000, 10000), 2, members=2, trial_epochs=2,
                  include="recipe")
    assert [m.trial.number for m in team.members] == [2, 9]
    assert "retrains trial 2, the best whose retrain fits" in team.note()
