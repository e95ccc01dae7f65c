"""One trial, whichever engine chose it: its nested MLflow run, its cost check, its training,
ending in the one record of how it ended (`studies.TrialOutcome`).

Both engines call `TrialRunner.run`, so an Optuna trial and a Keras Tuner trial write the
same parameters, metrics, tags and outcome, and can sit side by side in MLflow's compare view.
Each engine maps the outcome to its own states in a few lines; the progress display, the final
retrain and the report read the outcome, never an engine's own attribute names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnist_sweep import seeds
from mnist_sweep.data import SearchData
from mnist_sweep.costs import CostBound, mflops, unbuildable
from mnist_sweep.models import forward_mflops
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.memory import resident_mb
from mnist_sweep.runtime.workers import WORKER, current_threads
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.tracking import Tracker, failure
from mnist_sweep.training import EpochHook, FitResult, Resume, fit, parameter_count

class Stopped(Exception):
    """The trial ended early (the pruner, or search_share's end): its run is recorded as pruned, not failed."""


class Refused(Stopped):
    """A sampled model that is not trained: it does not count towards the study's trials."""

    mflops: float | None = None


class OverBudget(Refused):
    """The model needs more MFLOPs per image than the sweep allows: refused untrained."""

    def __init__(self, mflops: float, limit: float):
        super().__init__(f"needs {mflops:.3g} MFLOPs per image, over max_mflops {limit:g}")
        self.mflops = float(f"{mflops:.3g}")


class TrialEnded(Exception):
    """A trial that did not complete; the engine maps `outcome` to its own state."""

    def __init__(self, outcome: TrialOutcome):
        super().__init__(outcome.reason or outcome.outcome)
        self.outcome = outcome


@dataclass
class TrialRunner:
    """Trains trials on the in-memory arrays it was given once, each as a nested MLflow run."""

    space: SearchSpace
    data: SearchData
    tracker: Tracker
    parent_id: str
    tags: dict[str, str]
    seed: int
    max_mflops: float | None = None
    trial_epochs: int | None = None  # the search's epochs per trial at most (a fidelity, like its images)
    # Where search_share ends (time.monotonic()): a sampled trial still training then stops at its
    # epoch's end, pruned, so the final step gets the rest (see _stop_reason).
    stop_at: float | None = None
    has_completed: bool = False  # the study had a completed trial when this process began, or it completed one

    def run(self, number: int, params: dict[str, Any], preset: str | None = None,
            report: EpochHook | None = None, on_run: Callable[[str], None] | None = None,
            resume: Resume | None = None, on_trained: Callable[[Any], None] | None = None,
            sampled: bool | None = None, prune: Callable[[], bool] | None = None) -> TrialOutcome:
        """Train `params` as trial `number`: `report(epoch, metrics)` sees each epoch, then `prune()`,
        the engine's pruner, is asked whether to stop, at the epochs where a trial may (_stop_reason).

        The cost limit binds sampled models only (by default, all but presets): a configuration the
        user named, a notebook's or a sweep file's, runs whatever it costs.

        `on_run(run_id)` runs once its MLflow run exists, `on_trained(model)` once its model has
        trained. Returns the outcome of a completed trial; raises TrialEnded with the outcome of
        any other (a Ctrl-C passes through, its run closed as killed)."""
        began = time.perf_counter()
        tags = {**self.tags, "trial": str(number), "run_kind": "trial", "worker": WORKER}
        run_id = self.tracker.start_child(self.parent_id, f"trial-{number:03d}", params,
                                          {**tags, **({"preset": preset} if preset else {})})
        if on_run is not None:
            on_run(run_id)
        seen = _Seen(resume.epoch if resume else 0)
        outcome = TrialOutcome(number, Outcome.COMPLETED, params, preset=preset, run_id=run_id,
                               threads=current_threads())
        try:
            self.tracker.log_datasets(run_id, self.data.slices)
            sampled = sampled if sampled is not None else preset is None
            trained = self._fit(run_id, number, params, seen, report, resume, sampled, prune)
            model, outcome.epoch_seconds = trained.model, round((trained.train_seconds or [0.0])[-1], 3)
            if on_trained is not None:
                on_trained(model)
        except BaseException as err:
            self._end(seen.fill(outcome, time.perf_counter() - began, err), None)
            if isinstance(err, Exception):
                raise TrialEnded(outcome) from err
            raise
        self.has_completed = True
        return self._end(seen.fill(outcome, time.perf_counter() - began), parameter_count(model))

    def _fit(self, run_id: str, number: int, params: dict[str, Any], seen: _Seen, report: EpochHook | None,
             resume: Resume | None, sampled: bool, prune: Callable[[], bool] | None) -> FitResult:
        trained = searched(params, self.trial_epochs)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            seen.add(epoch, metrics)
            self.tracker.log_metrics(run_id, metrics, step=epoch)
            if report is not None:
                report(epoch, metrics)
            if (why := self._stop_reason(epoch, int(trained["epochs"]), sampled, prune, metrics)) is not None:
                raise Stopped(why)

        if (why := unbuildable(self.space.model, params)) is not None:
            raise Refused(why)
        return fit(self.space.model, trained, self.data.x_train, self.data.y_train,
                   validation=(self.data.x_val, self.data.y_val), hook=on_epoch, seed=seeds.trial(self.seed, number),
                   on_built=lambda model: self._check_cost(run_id, model, sampled), resume=resume)

    def _stop_reason(self, epoch: int, last: int, sampled: bool, prune: Callable[[], bool] | None,
                     metrics: dict[str, float]) -> str | None:
        """Why the trial stops early at this epoch's end, if it does: the engine's pruner said so, or
        the search's share of the minutes ended (`stop_at`).

        Only a sampled trial, and never at its last epoch. A preset or a configuration the sweep file
        enqueues is the floor every sweep keeps (at epoch 1 a warm-up trails any flat rate); at its
        last epoch a trial has cost all it will, and stopped there it would only be lost to the final
        step's choice. Time stops a trial only once the study has a completed trial, so the final step
        always has one; left to finish, the trial running when the share ended took up to a minute of
        the default MLP sweep's final step (63 s of its 1.2 minutes, 2026-12-07), whose minutes
        decide its test accuracy."""
        if not sampled or epoch >= last:
            return None
        if prune is not None and prune():
            return f"val accuracy {metrics['val_accuracy']:.4f} at epoch {epoch}"
        if self.stop_at is not None and self.has_completed and time.monotonic() > self.stop_at:
            return f"the search's share of the minutes ended at epoch {epoch}"
        return None

    def _end(self, outcome: TrialOutcome, n_params: int | None) -> TrialOutcome:
        """Close the trial's run as its outcome says: tagged refused, a refused model's run is KILLED
        as a pruned one's is (the status MLflow's UI filters on is as it always was)."""
        # The process's memory after each trial, so growth over a long sweep shows in MLflow.
        metrics = {"epochs_run": outcome.epochs, "duration_s": outcome.seconds, "rss_mb": resident_mb()}
        if n_params is not None:
            metrics["parameter_count"] = n_params
        self.tracker.log_metrics(outcome.run_id, metrics, step=outcome.epochs)
        self.tracker.end_run(outcome.run_id, outcome.outcome, outcome.reason)
        return outcome

    def cost_bound(self) -> CostBound | None:
        """Widths sampled within the sweep's cost limit, where it has one."""
        return None if self.max_mflops is None else CostBound(self.space, self.max_mflops)

    def affordable(self, params: dict[str, Any]) -> bool:
        """Whether a sampled trial of `params` would train: a network can be built, within the cost
        limit (a preset or an enqueued configuration is tried whatever it costs: presets.warm_start)."""
        if unbuildable(self.space.model, params) is not None:
            return False
        return self.max_mflops is None or mflops(self.space.model, params) <= self.max_mflops

    def _check_cost(self, run_id: str, model: Any, sampled: bool) -> None:
        """Log the model's cost; refuse it untrained when it is over the sweep's limit."""
        mflops = forward_mflops(model)
        self.tracker.log_metrics(run_id, {"mflops": mflops}, step=0)
        if sampled and self.max_mflops is not None and mflops > self.max_mflops:
            raise OverBudget(mflops, self.max_mflops)


def searched(params: dict[str, Any], trial_epochs: int | None) -> dict[str, Any]:
    """What a trial trains in the search: its configuration, over at most `trial_epochs` epochs.

    The schedule follows the epochs trained (a cosine ends at the last of them), so a long
    configuration is judged fully decayed, as its retrain will end, not mid-schedule."""
    if trial_epochs is None or int(params["epochs"]) <= trial_epochs:
        return params
    return {**params, "epochs": trial_epochs}


class _Seen:
    """What the epochs of one trial showed so far: enough to say how it ended at any point."""

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.value: float | None = None
        self.learning_rates: list[float] = []

    def add(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch, self.value = epoch, metrics["val_accuracy"]
        self.learning_rates.append(metrics["learning_rate"])

    def fill(self, outcome: TrialOutcome, seconds: float, err: BaseException | None = None) -> TrialOutcome:
        outcome.value, outcome.epochs, outcome.seconds = self.value, self.epoch, round(seconds, 2)
        outcome.learning_rates, outcome.trained = list(self.learning_rates), len(self.learning_rates)
        if isinstance(err, Refused):
            outcome.outcome, outcome.reason, outcome.mflops = Outcome.REFUSED, str(err), err.mflops
        elif isinstance(err, Stopped):
            outcome.outcome, outcome.reason = Outcome.PRUNED, str(err)
        elif err is not None:
            outcome.outcome, outcome.reason = failure(err)
        return outcome
