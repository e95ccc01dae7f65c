"""The tuner: each trial Keras Tuner's oracle chooses, run through the shared TrialRunner and its
outcome noted in the project; Hyperband's promoted trials continued from their saved weights; the
search stopped at its time or by the sweep's stop rule (engines/base.py). The same tuner runs in a
distributed search's chief and workers (Keras Tuner's BaseTuner takes its part from the environment)."""

from __future__ import annotations

import contextlib
import io
import os
import time
from typing import Any

import keras_tuner as kt
from keras_tuner.engine.trial import Trial, TrialStatus

from mnist_sweep.config import Settings
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines import kerastuner_patch  # noqa: F401  applied before a chief or worker calls gRPC
from mnist_sweep.engines.base import check_going
from mnist_sweep.engines.kerastuner_project import Project
from mnist_sweep.engines.kerastuner_space import Chosen
from mnist_sweep.presets import Preset
from mnist_sweep.runtime import signals
from mnist_sweep.runtime.memory import MemoryBudget
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.trials import TrialEnded, TrialRunner
from mnist_sweep.training import Resume

WEIGHTS = "weights.weights.h5"  # a Hyperband trial's weights, continued by the trial it promotes
IDLE_SECONDS = 0.5


def _waiting(create_trial: Any) -> Any:
    """Keras Tuner's search loop asks again at once when the oracle answers IDLE (a Hyperband
    round waits for its last trial on another worker): pause between the asks instead."""
    def create(tuner_id: str) -> Trial:
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_SECONDS)
        return trial
    return create


def _is_worker() -> bool:
    """A worker of a distributed search: the variables Keras Tuner's distributed-tuning guide sets."""
    return "KERASTUNER_ORACLE_IP" in os.environ and os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief"


class _TimeUp(Exception):
    pass


class SweepTuner(kt.engine.base_tuner.BaseTuner):
    """Runs each trial Keras Tuner chooses through the shared TrialRunner."""

    def __init__(self, oracle: kt.Oracle, project: Project, runner: TrialRunner, progress: Progress | None,
                 presets: list[Preset], settings: Settings):
        self.project, self.runner, self.progress, self.presets = project, runner, progress, presets
        self.ends, self.target = SearchEnds(), settings.trials  # the search's, given as it runs (run_here)
        self.budget = MemoryBudget(settings.recycle_mb)
        self.hyperband = isinstance(oracle, kt.oracles.HyperbandOracle)
        with contextlib.redirect_stdout(io.StringIO()):  # its "Reloading Tuner" line; we say "resuming"
            super().__init__(oracle, directory=str(project.folder.parent), project_name=project.name)
        if _is_worker():  # the chief's one gRPC thread must not sleep
            self.oracle.create_trial = _waiting(self.oracle.create_trial)

    def search_until_done(self) -> None:
        with contextlib.suppress(_TimeUp):
            self.search(verbose=0)

    def pre_create_trial(self) -> None:
        signals.check()  # between trials: a stop asked for during the last one is not lost
        if self.ends.spent():
            raise _TimeUp
        check_going(self.project.name, self.project.outcomes(), self.target)

    def on_trial_end(self, trial: Trial) -> None:
        super().on_trial_end(trial)  # the oracle has saved the trial's end
        self.budget.after_trial()

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        values = dict(trial.hyperparameters.values)
        if self.hyperband:
            values["epochs"] = values["tuner/epochs"]
        params = self.runner.space.sample(Chosen(values))
        resume = self._resume(values)
        weights = os.path.join(self.get_trial_dir(trial.trial_id), WEIGHTS)
        keep = (lambda model: model.save_weights(weights)) if self.hyperband else None  # for the trial it promotes
        try:
            outcome = self.runner.run(int(trial.trial_id), params, self._preset(params), resume=resume, on_trained=keep)
        except TrialEnded as ended:
            self._note(ended.outcome, values, resume)
            raise kt.errors.FailedTrialError(ended.outcome.reason) from None
        self._note(outcome, values, resume)
        return {"val_accuracy": outcome.value}

    def _resume(self, values: dict[str, Any]) -> Resume | None:
        if "tuner/trial_id" not in values:
            return None
        weights = os.path.join(self.get_trial_dir(values["tuner/trial_id"]), WEIGHTS)
        return Resume(weights, int(values["tuner/initial_epoch"]))

    def _preset(self, params: dict[str, Any]) -> str | None:
        mine = comparable(params, self.hyperband)
        same = [p.name for p in self.presets if comparable(p.params, self.hyperband) == mine]
        return same[0] if same else None

    def _note(self, outcome: TrialOutcome, values: dict[str, Any], resume: Resume | None) -> None:
        if resume is not None:  # a promotion: its parent's epochs and rates come first
            earlier = self.project.outcome(int(values["tuner/trial_id"])).learning_rates
            outcome.learning_rates = earlier[: resume.epoch] + outcome.learning_rates
        self.project.note(outcome)
        self.progress.show(outcome, self.project.best_value())  # every worker's best, not only ours


def comparable(params: dict[str, Any], hyperband: bool) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not (hyperband and k == "epochs")}
