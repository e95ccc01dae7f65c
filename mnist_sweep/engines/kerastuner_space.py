"""The project's spaces as Keras Tuner hyperparameters, and Keras Tuner's oracles as a sweep needs them.

The YAML space is declared once as Keras Tuner hyperparameters (conditional scopes for the
per-layer and `when` parameters). The oracles are Keras Tuner's own, with two additions a
sweep needs: the warm-start presets come first, and the stop rule counts completed trials
only. Both live in the oracle, so they hold as well when the oracle serves workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import keras_tuner as kt
from keras_tuner.engine.trial import TrialStatus

from mnist_sweep import seeds
from mnist_sweep.config import Settings
from mnist_sweep.engines.base import trials_missing
from mnist_sweep.errors import SweepCannotGoOn
from mnist_sweep.outcomes import Outcome
from mnist_sweep.space import Param, SearchSpace


def declare(space: SearchSpace, leave_out: tuple[str, ...] = ()) -> kt.HyperParameters:
    """Every parameter of `space`, each active exactly when the space would sample it."""
    hp = kt.HyperParameters()
    for param in space.params:
        if param.name in leave_out:
            continue
        conditions = _conditions(space, param)
        if param.per_layer is None:
            _in_scopes(hp, conditions, param, param.name)
            continue
        counts = _values_of(space.get(param.per_layer))
        for i in range(max(counts)):  # layer i exists when there are more than i layers
            _in_scopes(hp, conditions + [(param.per_layer, [c for c in counts if c > i])], param, f"{param.name}_l{i}")
    return hp


def _conditions(space: SearchSpace, param: Param) -> list[tuple[str, list]]:
    """The scopes a parameter is active in: its own `when`, inside those of the parameters it names
    (anneal_factor needs anneal, which needs schedule: constant); Keras Tuner wants them nested."""
    found: list[tuple[str, list]] = []
    for key, want in param.when.items():
        found += _conditions(space, space.get(key)) + [(key, [want])]
    return found


def _in_scopes(hp: kt.HyperParameters, conditions: list[tuple[str, list]], param: Param, name: str) -> None:
    with contextlib.ExitStack() as stack:
        for parent, values in conditions:
            stack.enter_context(hp.conditional_scope(parent, values))
        _register(hp, param, name)


def _register(hp: kt.HyperParameters, p: Param, name: str) -> None:
    sampling = "log" if p.log else "linear"
    if p.kind == "int":
        hp.Int(name, int(p.low), int(p.high), step=int(p.step) if p.step else None, sampling=sampling)
    elif p.kind == "float":
        hp.Float(name, p.low, p.high, step=p.step, sampling=sampling)
    elif p.kind == "categorical":
        hp.Choice(name, list(p.choices))
    else:
        hp.Fixed(name, p.value)


def _values_of(param: Param) -> list[int]:
    if param.kind == "int":
        return list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))
    return [int(v) for v in (param.choices if param.kind == "categorical" else [param.value])]


class Chosen:
    """A Suggester that answers with the values Keras Tuner chose for a trial."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return int(self.values[name])

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return float(self.values[name])

    def suggest_categorical(self, name: str, choices: list) -> Any:
        # Keras Tuner hands booleans back as 0 and 1; answer with the space's own choice.
        return next(c for c in choices if c == self.values[name])


# --- oracles ----------------------------------------------------------------------------------

class _StopRule:
    """The skeleton's one stop rule (`base.trials_missing`) as Keras Tuner's trial limit: a failed
    or invalid trial does not count towards --trials, as in an Optuna study, so it raises the
    oracle's limit by one. Mixed into Keras Tuner's oracles."""

    target = 0

    @kt.synchronized  # as Keras Tuner's own: the chief serves several workers
    def create_trial(self, tuner_id: str) -> Any:
        statuses = [t.status for t in self.trials.values()]
        ended = [_OUTCOMES[s] for s in statuses if s in _OUTCOMES]
        running = sum(s in (TrialStatus.RUNNING, TrialStatus.IDLE) for s in statuses)
        self.max_trials = len(statuses) + trials_missing(self.target, ended, running)
        return super().create_trial(tuner_id)


# Keras Tuner's statuses of an ended trial as outcomes: a stopped trial was ended early by its
# tuner; an invalid one, whose values cannot be built, never trained.
_OUTCOMES = {TrialStatus.COMPLETED: Outcome.COMPLETED, TrialStatus.STOPPED: Outcome.PRUNED,
             TrialStatus.FAILED: Outcome.FAILED, TrialStatus.INVALID: Outcome.REFUSED}


class _Presets(_StopRule):
    """Hands out the warm-start presets as the first random samples, and skips samples that a
    cost limit would refuse, so neither uses up a trial."""

    SKIPS = 200  # samples over the cost limit tried before giving up on a fresh one

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.queue: list[dict[str, Any]] = []
        self.accept: Callable[[dict[str, Any]], bool] = lambda values: True
        self.cannot_go_on: str | None = None  # why the search stopped early; the tuner raises it

    def _random_values(self) -> dict[str, Any] | None:
        if self.queue:
            return dict(self.queue.pop(0))
        for _ in range(self.SKIPS):
            values = super()._random_values()
            if values is None or self.accept(values):
                return values
        # Raised here, it would reach a worker only as a gRPC error: the oracle stops the search
        # (no values: Keras Tuner's STOPPED) and the tuner that ran it says why (check_stopped).
        self.cannot_go_on = (f"{self.SKIPS} samples in a row were refused untrained (over max_mflops, or no "
                             "network can be built from them); raise max_mflops or narrow the space")
        return None

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "mnist_sweep_presets": self.queue}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.queue = list(state.get("mnist_sweep_presets", []))


class _Random(_Presets, kt.oracles.RandomSearchOracle):
    pass


class _Bayesian(_Presets, kt.oracles.BayesianOptimizationOracle):
    pass


class _Hyperband(_Presets, kt.oracles.HyperbandOracle):
    pass


class _Grid(_StopRule, kt.oracles.GridSearchOracle):
    pass


def check_stopped(oracle: kt.Oracle) -> None:
    """Raise what made the oracle stop the search early, if something did."""
    if getattr(oracle, "cannot_go_on", None):
        raise SweepCannotGoOn(oracle.cannot_go_on)


def make_oracle(settings: Settings, space: SearchSpace) -> kt.Oracle:
    """Keras Tuner's oracle for `settings.tuner`; Hyperband sets the epochs itself."""
    hyperband = settings.tuner == "hyperband"
    common = {"objective": kt.Objective("val_accuracy", "max"), "seed": seeds.oracle(settings.seed),
              "hyperparameters": declare(space, ("epochs",) if hyperband else ()),
              "allow_new_entries": False, "tune_new_entries": False,
              # Failures are counted by the tuner, where a refused model is not one.
              "max_consecutive_failed_trials": 10**9}
    if hyperband:  # one full round of brackets is 30 trials when the epochs reach 10 (factor 3)
        oracle = _Hyperband(max_epochs=settings.most_epochs(space.max_epochs()), factor=3,
                            hyperband_iterations=10**6, **common)
    elif settings.tuner == "bayesian":  # a third of the trials explore at random before the GP leads
        oracle = _Bayesian(max_trials=settings.trials, num_initial_points=max(3, settings.trials // 3), **common)
    elif settings.tuner == "grid":
        oracle = _Grid(max_trials=settings.trials, **common)
    else:
        oracle = _Random(max_trials=settings.trials, **common)
    oracle.target = oracle.max_trials = settings.trials
    return oracle
