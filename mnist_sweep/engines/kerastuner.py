"""The Keras Tuner engine: the project's spaces and trials, searched by Keras Tuner's oracles.

The YAML space is declared once as Keras Tuner hyperparameters (conditional scopes for the
per-layer and `when` parameters), and each trial runs through the same TrialRunner as an
Optuna trial, so MLflow holds the same record. Keras Tuner keeps its own state (oracle.json,
trial_*/trial.json) in the project folder; the project's own record (settings, each trial's
parameters, epochs and learning rates, the final result) sits beside it in study.json.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras_tuner as kt
from keras_tuner.src.engine import trial as kt_trial

from mnist_sweep import signals
from mnist_sweep.config import Settings
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.memory import MemoryBudget
from mnist_sweep.presets import Preset
from mnist_sweep.progress import Progress
from mnist_sweep.space import Param, SearchSpace
from mnist_sweep.studies import Best, begin_or_resume
from mnist_sweep.tracking import Tracker, failure
from mnist_sweep.trials import OverBudget, TrialRunner
from mnist_sweep.training import Start

HYPERBAND = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")
FAILURES_IN_A_ROW = 3  # as Keras Tuner's own default: the space or the data is broken, not the trial
WEIGHTS = "weights.weights.h5"  # a Hyperband trial's weights, continued by the trial it promotes


class Project:
    """A Keras Tuner project as the steps after the search read it (mnist_sweep.studies.Study)."""

    def __init__(self, root: Path, name: str):
        self.name = name
        self.folder = root / name
        self.file = self.folder / "study.json"
        self._attrs: dict[str, Any] = json.loads(self.file.read_text()) if self.file.is_file() else {}

    @property
    def attrs(self) -> dict[str, Any]:
        return self._attrs

    def set_attr(self, key: str, value: Any) -> None:
        self._attrs[key] = value
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.file.with_suffix(".partial")  # replaced whole: a kill never leaves half a file
        partial.write_text(json.dumps(self._attrs, indent=1))
        os.replace(partial, self.file)

    @property
    def trials(self) -> dict[str, dict[str, Any]]:
        return self._attrs.get("trials", {})

    def note_trial(self, number: int, record: dict[str, Any]) -> None:
        self.set_attr("trials", {**self.trials, str(number): record})

    def finished(self) -> int:
        return sum(t["outcome"] == "completed" for t in self.trials.values())

    def best_value(self) -> float | None:
        values = [t["value"] for t in self.trials.values() if t["outcome"] == "completed"]
        return max(values) if values else None

    def best(self) -> Best:
        done = [(t["value"], -int(n), t) for n, t in self.trials.items() if t["outcome"] == "completed"]
        if not done:
            raise UserError(f"study '{self.name}' has no completed trial yet; give it more --trials")
        value, number, trial = max(done, key=lambda d: d[:2])  # the earliest of equal scores
        return Best(-number, value, trial["params"], trial["epochs"], trial.get("learning_rates"))


def project_exists(settings: Settings) -> bool:
    return (settings.project_root / settings.study / "study.json").is_file()


def open_project(settings: Settings, space: SearchSpace) -> Project:
    make_folder(settings.project_root, "--storage")
    project = Project(settings.project_root, settings.study)
    begin_or_resume(project, space, settings, {"tuner": settings.tuner}, {})
    return project


def check_tuner(tuner: str, space: SearchSpace) -> None:
    """Refuse, before anything runs, a tuner the space cannot drive."""
    if tuner != "grid":
        return
    for p in space.params:
        if (p.kind == "float" and not p.step) or (p.kind == "int" and p.log and not p.step):
            raise UserError(f"{space.source}: the grid tuner needs a step on '{p.name}' to make a grid of "
                            "its range; add one, or use --tuner random, bayesian or hyperband")


# --- the space, as Keras Tuner hyperparameters ------------------------------------------------

def declare(space: SearchSpace, leave_out: tuple[str, ...] = ()) -> kt.HyperParameters:
    """Every parameter of `space`, each active exactly when the space would sample it."""
    hp = kt.HyperParameters()
    for param in space.params:
        if param.name in leave_out:
            continue
        conditions = [(key, [want]) for key, want in param.when.items()]
        if param.per_layer is None:
            _in_scopes(hp, conditions, param, param.name)
            continue
        counts = _values_of(space.get(param.per_layer))
        for i in range(max(counts)):  # layer i exists when there are more than i layers
            _in_scopes(hp, conditions + [(param.per_layer, [c for c in counts if c > i])], param, f"{param.name}_l{i}")
    return hp


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


class _Chosen:
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

class _Presets:
    """Hands out the warm-start presets as the first random samples, and skips samples that a
    cost limit would refuse, so neither uses up a trial. Mixed into Keras Tuner's oracles."""

    SKIPS = 200  # samples over the cost limit tried before giving up on a fresh one

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.queue: list[dict[str, Any]] = []
        self.accept: Callable[[dict[str, Any]], bool] = lambda values: True

    def _random_values(self) -> dict[str, Any] | None:
        if self.queue:
            return dict(self.queue.pop(0))
        for _ in range(self.SKIPS):
            values = super()._random_values()
            if values is None or self.accept(values):
                return values
        raise UserError(f"{self.SKIPS} samples in a row were over max_mflops; raise it or narrow the space")

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


def make_oracle(settings: Settings, space: SearchSpace) -> kt.Oracle:
    """Keras Tuner's oracle for `settings.tuner`; Hyperband sets the epochs itself."""
    hyperband = settings.tuner == "hyperband"
    common = {"objective": kt.Objective("val_accuracy", "max"), "seed": settings.seed,
              "hyperparameters": declare(space, ("epochs",) if hyperband else ()),
              "allow_new_entries": False, "tune_new_entries": False,
              # Failures are counted by the tuner below, where a refused model is not one.
              "max_consecutive_failed_trials": 10**9}
    if hyperband:  # one full round of brackets is 30 trials when the epochs reach 10 (factor 3)
        oracle = _Hyperband(max_epochs=space.max_epochs(), factor=3, hyperband_iterations=10**6, **common)
        oracle.max_trials = settings.trials
        return oracle
    if settings.tuner == "bayesian":  # a third of the trials explore at random before the GP leads
        return _Bayesian(max_trials=settings.trials, num_initial_points=max(3, settings.trials // 3), **common)
    if settings.tuner == "grid":
        return kt.oracles.GridSearchOracle(max_trials=settings.trials, **common)
    return _Random(max_trials=settings.trials, **common)


# --- the tuner --------------------------------------------------------------------------------

class _TimeUp(Exception):
    pass


class SweepTuner(kt.engine.base_tuner.BaseTuner):
    """Runs each trial Keras Tuner chooses through the shared TrialRunner."""

    def __init__(self, oracle: kt.Oracle, project: Project, runner: TrialRunner, target: int,
                 progress: Progress, presets: list[Preset], deadline: float | None, budget: MemoryBudget):
        self.project, self.runner, self.target, self.progress = project, runner, target, progress
        self.presets, self.deadline, self.budget = presets, deadline, budget
        self.hyperband = isinstance(oracle, kt.oracles.HyperbandOracle)
        with contextlib.redirect_stdout(io.StringIO()):  # its "Reloading Tuner" line; we say "resuming"
            super().__init__(oracle, directory=str(project.folder.parent), project_name=project.name)

    def pre_create_trial(self) -> None:
        signals.check()  # between trials: a stop asked for during the last one is not lost
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _TimeUp
        # Only completed trials count towards --trials, as in an Optuna study.
        ended = [t for t in self.project.trials.values() if t["outcome"] != "completed"]
        self.oracle.max_trials = self.target + len(ended)
        _check_failures(self.project)

    def on_trial_end(self, trial: kt_trial.Trial) -> None:
        super().on_trial_end(trial)  # the oracle has saved the trial's end
        self.budget.after_trial()

    def run_trial(self, trial: kt_trial.Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        values = dict(trial.hyperparameters.values)
        if self.hyperband:
            values["epochs"] = values["tuner/epochs"]
        params = self.runner.space.sample(_Chosen(values))
        number, preset = int(trial.trial_id), self._preset(params)
        start = self._start(values)
        began = time.perf_counter()
        record = {"params": params, "preset": preset, "outcome": "failed", "value": None,
                  "epochs": start.epoch if start else 0, "learning_rates": None}
        try:
            result = self.runner.run(number, params, {"preset": preset} if preset else {}, start=start)
        except OverBudget as err:
            self._note(number, {**record, "outcome": "refused", "note": str(err)}, began)
            raise kt.errors.FailedTrialError(str(err)) from None
        except Exception as err:
            self._note(number, {**record, "note": failure(err)[1]}, began)
            raise kt.errors.FailedTrialError(failure(err)[1]) from None
        if self.hyperband:  # the trial this one promotes continues from these weights
            result.model.save_weights(os.path.join(self.get_trial_dir(trial.trial_id), WEIGHTS))
        value = result.history["val_accuracy"][-1]
        earlier = self.project.trials[str(int(values["tuner/trial_id"]))]["learning_rates"] if start else []
        self._note(number, {**record, "outcome": "completed", "value": value, "epochs": record["epochs"] + result.epochs_run,
                            "learning_rates": earlier[: record["epochs"]] + result.history["learning_rate"]}, began)
        return {"val_accuracy": value}

    def _start(self, values: dict[str, Any]) -> Start | None:
        if "tuner/trial_id" not in values:
            return None
        weights = os.path.join(self.get_trial_dir(values["tuner/trial_id"]), WEIGHTS)
        return Start(weights, int(values["tuner/initial_epoch"]))

    def _preset(self, params: dict[str, Any]) -> str | None:
        same = [p.name for p in self.presets if _comparable(p.params, self.hyperband) == _comparable(params, self.hyperband)]
        return same[0] if same else None

    def _note(self, number: int, record: dict[str, Any], began: float) -> None:
        record["seconds"] = round(time.perf_counter() - began, 2)
        self.project.note_trial(number, record)
        self.progress.show(number, record["outcome"], record["value"], record["epochs"], record["seconds"], record.get("note"), record["preset"])


def _comparable(params: dict[str, Any], hyperband: bool) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not (hyperband and k == "epochs")}


def _check_failures(project: Project) -> None:
    """Stop a sweep whose trials keep failing rather than let it spin."""
    ended = [t for _, t in sorted(project.trials.items(), key=lambda kv: int(kv[0])) if t["outcome"] != "refused"]
    last = ended[-FAILURES_IN_A_ROW:]
    if len(last) == FAILURES_IN_A_ROW and all(t["outcome"] == "failed" for t in last):
        raise UserError(f"study '{project.name}': the last {FAILURES_IN_A_ROW} trials all failed "
                        f"({last[-1].get('note', '')[:120]}); see their fail_reason in MLflow")


def fitting_presets(presets: list[Preset], runner: TrialRunner, hyperband: bool) -> list[Preset]:
    """The presets this search can try; under Hyperband the oracle sets the epochs."""
    tried = [replace(p, params={**p.params, "epochs": runner.space.max_epochs()}) if hyperband else p
             for p in presets]
    return [p for p, t in zip(presets, tried) if t.fits(runner.space) and runner.affordable(t.params)]


def search(settings: Settings, project: Project, runner: TrialRunner, progress: Progress,
           presets: list[Preset]) -> SweepTuner:
    """Run (or resume) the Keras Tuner search until `settings.trials` trials have completed."""
    oracle = make_oracle(settings, runner.space)
    fresh = not (project.folder / "oracle.json").is_file()
    hyperband = settings.tuner == "hyperband"
    if fresh and isinstance(oracle, _Presets):
        oracle.queue = [_comparable(p.params, hyperband) for p in presets]
    if isinstance(oracle, _Presets) and runner.max_mflops is not None:
        oracle.accept = lambda values: runner.affordable(runner.space.sample(_Chosen({"epochs": 1, **values})))
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    tuner = SweepTuner(oracle, project, runner, settings.trials, progress, presets, deadline,
                       MemoryBudget(settings.recycle_mb))
    close_dead_runs(tuner.oracle, runner.tracker, runner.parent_id)
    with contextlib.suppress(_TimeUp):
        tuner.search(verbose=0)
    return tuner


def close_dead_runs(oracle: kt.Oracle, tracker: Tracker, parent_id: str) -> None:
    """Keras Tuner runs again, on resume, each trial whose end it had not saved when its process
    was killed: killed during the trial (its MLflow run still RUNNING), or just after it (FINISHED;
    a CI run caught that). Their old runs are closed as failed, so that each completed trial has
    one finished run."""
    again = {int(t) for t in oracle._retry_queue}  # where Keras Tuner 1.4's reload puts those trials
    for run in tracker.trial_runs(parent_id):
        status, number = run.info.status, int(run.data.tags["trial"])
        if status == "RUNNING":
            tracker.end_run(run.info.run_id, "failed", "process stopped during the trial")
        elif status == "FINISHED" and number in again:
            tracker.end_run(run.info.run_id, "failed", "process stopped before Keras Tuner saved the trial's end")
