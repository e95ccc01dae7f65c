"""One trial, whichever engine chose it: its nested MLflow run, its cost check, its training.

Both engines call `TrialRunner.run`, so an Optuna trial and a Keras Tuner trial write the
same parameters, metrics, tags and outcome, and can sit side by side in MLflow's compare view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mnist_sweep.data import SearchData
from mnist_sweep.memory import resident_mb
from mnist_sweep.models import forward_mflops, model_mflops
from mnist_sweep.space import SearchSpace
from mnist_sweep.tracking import Tracker, failure
from mnist_sweep.training import EpochHook, FitResult, Start, fit, parameter_count


class Stopped(Exception):
    """The engine ended the trial early (pruning): its run is recorded as pruned, not failed."""


class OverBudget(Stopped):
    """The model needs more MFLOPs per image than the sweep allows: refused untrained."""

    def __init__(self, mflops: float, limit: float):
        super().__init__(f"needs {mflops:.3g} MFLOPs per image, over max_mflops {limit:g}")
        self.mflops = float(f"{mflops:.3g}")


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

    def run(self, number: int, params: dict[str, Any], tags: dict[str, str] | None = None,
            report: EpochHook | None = None, on_run: Callable[[str], None] | None = None,
            start: Start | None = None) -> FitResult:
        """Train `params` as trial `number`; `report(epoch, metrics)` may raise Stopped to prune."""
        run_id = self.tracker.start_child(self.parent_id, f"trial-{number:03d}", params,
                                          {**self.tags, **(tags or {}), "trial": str(number), "run_kind": "trial"})
        if on_run is not None:
            on_run(run_id)
        epochs = [start.epoch if start else 0]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            epochs[0] = epoch
            self.tracker.log_metrics(run_id, metrics, step=epoch)
            if report is not None:
                report(epoch, metrics)

        began = time.perf_counter()
        try:
            result = fit(self.space.model, params, self.data.x_train, self.data.y_train,
                         validation=(self.data.x_val, self.data.y_val), hook=on_epoch, seed=self.seed + number,
                         on_built=lambda model: self._check_cost(run_id, forward_mflops(model)), start=start)
        except BaseException as err:
            self._record(run_id, epochs[0], time.perf_counter() - began, None)
            self.tracker.end_run(run_id, *(("pruned", str(err)) if isinstance(err, Stopped) else failure(err)))
            raise
        self._record(run_id, epochs[0], result.seconds, parameter_count(result.model))
        self.tracker.end_run(run_id, "completed")
        return result

    def affordable(self, params: dict[str, Any]) -> bool:
        return self.max_mflops is None or model_mflops(self.space.model, params) <= self.max_mflops

    def _check_cost(self, run_id: str, mflops: float) -> None:
        """Log the model's cost; refuse it untrained when it is over the sweep's limit."""
        self.tracker.log_metrics(run_id, {"mflops": mflops}, step=0)
        if self.max_mflops is not None and mflops > self.max_mflops:
            raise OverBudget(mflops, self.max_mflops)

    def _record(self, run_id: str, epochs: int, seconds: float, n_params: int | None) -> None:
        # The process's memory after each trial, so growth over a long sweep shows in MLflow.
        metrics = {"epochs_run": epochs, "duration_s": seconds, "rss_mb": resident_mb()}
        if n_params is not None:
            metrics["parameter_count"] = n_params
        self.tracker.log_metrics(run_id, metrics, step=epochs)
