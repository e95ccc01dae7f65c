"""Optuna's samplers and pruners, by the names the sweep's settings give them."""

from __future__ import annotations

import warnings

import optuna

from mnist_sweep import seeds

# TPE's multivariate, group and constant-liar options and the QMC sampler are marked experimental,
# yet they are what the sweep uses; the warning would only repeat on every start.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def make_sampler(name: str, seed: int, begun: int = 0, worker: int = 0,
                 presets: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler of process `worker` of a study of `seed` that has begun `begun` trials."""
    own = seeds.sampler(seed, begun, worker)  # this process's stream: other workers' and earlier processes' differ
    if name == "qmc":  # one scrambled sequence for the whole study: each trial takes its own point of it
        # What the sequence does not cover (a deeper layer's parameters, the first trial's) is drawn
        # at random, from this process's own stream: from the study's, workers would draw alike.
        return optuna.samplers.QMCSampler(scramble=True, seed=seeds.sequence(seed), warn_independent_sampling=False,
                                          independent_sampler=optuna.samplers.RandomSampler(seed=own))
    seed = own
    if name == "tpe":  # multivariate + group: TPE that understands per-layer (conditional) parameters
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=10 + presets)  # 10: Optuna's default
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(name: str, max_epochs: int, presets: int = 0) -> optuna.pruners.BasePruner:
    if name == "median":  # a few full trials and two epochs of grace before judging anyone
        return optuna.pruners.MedianPruner(n_startup_trials=5 + presets, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    if name == "halving":  # asynchronous successive halving: Hyperband's most aggressive bracket alone
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()
