"""Optuna's samplers and pruners, by the names the sweep's settings give them (engines/optuna_samplers.py)."""

from __future__ import annotations

import optuna
import pytest

from mnist_sweep.config import PRUNERS, SAMPLERS
from mnist_sweep.engines.optuna_samplers import make_pruner, make_sampler

SAMPLER_CLASSES = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                   "qmc": optuna.samplers.QMCSampler}
PRUNER_CLASSES = {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
                  "halving": optuna.pruners.SuccessiveHalvingPruner, "none": optuna.pruners.NopPruner}


def test_each_name_the_settings_accept_gives_optunas_sampler_or_pruner_of_that_name():
    assert set(SAMPLER_CLASSES) == set(SAMPLERS) and set(PRUNER_CLASSES) == set(PRUNERS)  # none falls through
    for name, kind in SAMPLER_CLASSES.items():
        assert type(make_sampler(name, seed=0)) is kind, name
    for name, kind in PRUNER_CLASSES.items():
        assert type(make_pruner(name, max_epochs=9)) is kind, name


def drawn(name: str, seed: int) -> list[tuple[float, int]]:
    study = optuna.create_study(sampler=make_sampler(name, seed))
    for _ in range(4):
        trial = study.ask()
        rate, units = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True), trial.suggest_int("units", 16, 1024)
        study.tell(trial, rate * units)
    return [(t.params["learning_rate"], t.params["units"]) for t in study.trials]


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_seed_draws_the_same_configurations_again_and_another_seed_others(name):
    assert drawn(name, 7) == drawn(name, 7)
    assert drawn(name, 7)[1:] != drawn(name, 8)[1:]  # QMC's too: unscrambled, its points after the first were not


def test_the_median_pruner_judges_a_trial_from_its_second_epoch_once_five_trials_have_finished():
    def study_after(finished: int) -> optuna.Study:
        study = optuna.create_study(direction="maximize", pruner=make_pruner("median", max_epochs=9))
        for _ in range(finished):
            study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={1: 0.9, 2: 0.9, 3: 0.9}))
        return study

    poor = study_after(5).ask()  # epochs are reported from 1, as the trial runner numbers them
    poor.report(0.1, 1)
    assert not poor.should_prune()  # its first epoch is grace
    poor.report(0.1, 2)
    assert poor.should_prune()
    early = study_after(4).ask()
    early.report(0.1, 1)
    early.report(0.1, 2)
    assert not early.should_prune()  # too few finished trials to judge against


def test_qmc_workers_draw_a_deeper_layer_each_their_own_way():
    """The sequence covers the first trial's parameters; a deeper layer's are drawn at random, and
    two workers of one study (or a resumed process) must not draw them alike."""
    def deeper_units(worker: int) -> list[int]:
        study = optuna.create_study(sampler=make_sampler("qmc", 7, begun=1, worker=worker))
        study.add_trial(optuna.trial.create_trial(params={"n_layers": 1}, value=0.5, distributions={
            "n_layers": optuna.distributions.IntDistribution(1, 3)}))
        drawn = []
        for _ in range(4):
            trial = study.ask()
            trial.suggest_int("n_layers", 1, 3)
            drawn.append(trial.suggest_int("units_l1", 16, 1024))
            study.tell(trial, 0.5)
        return drawn

    assert deeper_units(0) != deeper_units(1)
