"""The final step's models: each member of a Choice retrained on all training images, then averaged.

One member trains in this process on every core, its epochs reported as they end. Several train
side by side, one process per core (runtime/parallel.py), each reported once it is done; their
epochs are numbered one after the other (the second member's first epoch follows the first's
last). No tracking here: the caller says what to do with each epoch's metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_sweep import seeds
from mnist_sweep.budget import Choice, Member, Rate
from mnist_sweep.data import scale
from mnist_sweep.models import ensemble
from mnist_sweep.runtime.parallel import ChildDied, run_each
from mnist_sweep.schedules import stretched
from mnist_sweep.training import EpochHook, FitResult, fit


def train_members(kind: str, choice: Choice, seed: int, x: np.ndarray, y: np.ndarray, folder: Path,
                  on_epoch: EpochHook | None = None) -> keras.Model:
    """The members of `choice` trained on `x`, `y` (unscaled) and averaged into one served model.

    Each member's epochs are as the choice says, its learning-rate schedule fitted to them, its
    seed the study's plus its trial's number (plus 1,000 for each earlier retrain of that trial).
    `folder` holds the members' files while they pass from their processes to this one."""
    report: Callable[[int, dict[str, float]], None] = on_epoch or (lambda epoch, metrics: None)
    jobs = [_job(kind, m, seed, x, y, folder / f"member-{i}.keras") for i, m in enumerate(choice.members)]
    if len(jobs) == 1:  # all cores on one model
        return ensemble([_fit(jobs[0], report).model])
    trained, offset = [], 0
    # Plain values cross to the children: a _Job would import this module, and TensorFlow with it,
    # before a child is set up (runtime/parallel.py).
    try:
        for job, history in zip(jobs, run_each(_train, [asdict(j) for j in jobs], choice.processes, choice.threads)):
            for epoch, values in enumerate(zip(*history.values()), start=1):
                report(offset + epoch, dict(zip(history, values)))
            offset += job.epochs
            trained.append(keras.saving.load_model(job.model_file))
    except ChildDied as died:
        raise ChildDied(f"a member of the final step: {died}; run the same command again to retrain") from None
    return ensemble(trained)


@dataclass(frozen=True)
class _Job:
    """One member's retrain, as a process of its own receives it."""

    kind: str
    params: dict[str, Any]
    epochs: int
    seed: int
    learning_rates: list[float] | None
    x: np.ndarray  # unscaled: a quarter of the bytes to hand over
    y: np.ndarray
    model_file: Path


def _job(kind: str, member: Member, seed: int, x: np.ndarray, y: np.ndarray, model_file: Path) -> _Job:
    trial, params, rate = member.trial, {**member.trial.params, "epochs": member.epochs}, member.rate
    rates = stretched(trial.learning_rates, member.epochs) if rate is Rate.REPLAYED else None
    if rate is Rate.ANNEALED:
        params.update(schedule="cosine", warmup_epochs=0)
    return _Job(kind, params, member.epochs, seeds.member(seed, trial.number, member.retrain), rates, x, y,
                model_file)


def _fit(job: _Job, hook: EpochHook | None = None) -> FitResult:
    return fit(job.kind, job.params, scale(job.x), job.y, seed=job.seed, epochs=job.epochs,
               learning_rates=job.learning_rates, hook=hook)


def _train(values: dict[str, Any]) -> dict[str, list[float]]:
    """One member in a process of its own: trained, saved where the job says; its epochs' metrics."""
    job = _Job(**values)
    result = _fit(job)
    job.model_file.parent.mkdir(parents=True, exist_ok=True)
    result.model.save(job.model_file)
    return result.history
