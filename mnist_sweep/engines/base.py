"""The sweep skeleton both engines share: prepare, recover, plan workers, run trials to the target, follow.

As in Keras Tuner, the loop of trials belongs to the engine (Optuna's `optimize`, Keras Tuner's
`BaseTuner.search`) and its sampler or oracle proposes; what is the same for every engine lives
here, once: the sweep's parent run, the TrialRunner every trial runs through, the worker plan and
the worker processes, the progress display, the recovery of dead processes' trials and the rounds
until the study has its trials or its time (the job's `ends`) is spent. An engine supplies a
`Sweep` (its study opened, its loop, its recovery, what its workers need: `WorkerCare`) and
nothing here names an engine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from mnist_sweep.errors import SweepCannotGoOn
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.runtime import devices
from mnist_sweep.runtime.workers import Workers, threads_per_worker, use_threads
from mnist_sweep.trials import TrialRunner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextlib import AbstractContextManager

    from mnist_sweep.config import Settings
    from mnist_sweep.deadlines import SearchEnds
    from mnist_sweep.engines import SweepJob
    from mnist_sweep.studies import Study, TrialOutcome

FAILURES_IN_A_ROW = 3  # as Keras Tuner's own default: the space or the data is broken, not the trial
# Models over max_mflops are refused untrained and not counted; this many refusals per
# requested trial means the limit leaves almost nothing of the space.
REFUSALS_PER_TRIAL = 10

Runner = TypeVar("Runner", bound=TrialRunner)


@dataclass(frozen=True)
class WorkerCare:
    """What an engine's worker processes need from the sweep's process: `recover(I)` after worker I
    died, before its replacement starts (its trial failed, to run again); `env(I)`, added to worker
    I's environment (the same for its replacements)."""

    recover: Callable[[int], None]
    env: Callable[[int], dict[str, str]] | None = None


class Sweep(Protocol):
    """One engine's part of one sweep: its study, its own loop of trials and its own recovery."""

    study: Study
    runner: TrialRunner

    def recover(self) -> None:
        """Fail the trials (and their MLflow runs) that dead processes left, so they run again."""

    def run_here(self, progress: Progress, ends: SearchEnds, worker: int = 0) -> None:
        """Trials in this process until the engine's stop rule ends them, none started after `ends`
        (`worker` > 0: a worker's)."""

    def serving(self, progress: Progress) -> AbstractContextManager[WorkerCare]:
        """While worker processes run the trials: their care, and whatever serves them here."""

    def missing(self) -> int:
        """Trials the study still needs after a round: 0 when its target is met (a round can end
        short of it: the next one goes on)."""

    def wait_for_others(self) -> None:
        """Wait for the trials that processes elsewhere still run."""


class SweepEngine(Protocol):
    def prepare(self, job: SweepJob) -> Sweep:
        """The sweep's process: the study created or resumed, its parent run, its warm start."""

    def attach(self, job: SweepJob) -> Sweep:
        """A worker process: the study the sweep's process prepared, to run trials only."""


def search(engine: SweepEngine, job: SweepJob) -> Study | None:
    """Run or resume a sweep until its study holds `--trials` trials or its time is spent; None in a
    worker process."""
    if job.worker is not None:
        _work(engine, job)
        return None
    settings = job.settings
    sweep = engine.prepare(job)
    with job.tracker.ended_on_error(sweep.runner.parent_id):  # the parent is closed whatever stops the sweep
        sweep.recover()
        count, gpus = worker_plan(settings)
        ends = job.ends.begun()
        # Rounds: a round ends when this process (or its workers) ran out of trials to start;
        # trials that other machines ran and lost, or that a dead process left unclaimed here, may
        # leave the study short, and a new round runs them.
        while True:
            with following(sweep.study, settings.trials) as progress:  # with workers, it follows them
                if count == 1:
                    sweep.run_here(progress, ends)
                else:
                    run_workers(sweep, job.argv, count, gpus, progress)
            sweep.wait_for_others()
            if ends.spent() or sweep.missing() <= 0:
                return sweep.study


def run_workers(sweep: Sweep, argv: list[str], count: int, gpus: Callable[[int], dict[str, str]],
                progress: Progress) -> None:
    """Trials in `count` worker processes running `argv`, this process following them."""
    with sweep.serving(progress) as care:
        Workers(argv, count, care.recover, env=care.env, gpus=gpus).run(lambda: progress.follow(sweep.study))


def worker_plan(settings: Settings) -> tuple[int, Callable[[int], dict[str, str]]]:
    """How many worker processes (the settings' one rule, GPUs counted) and each one's device."""
    gpus = devices.gpu_count()
    return settings.workers_on(gpus), devices.placement(gpus)


def _work(engine: SweepEngine, job: SweepJob) -> None:
    """A worker process: trials only, with its share of the cores; the sweep's process shows them."""
    use_threads(threads_per_worker(job.settings.worker_processes))
    sweep = engine.attach(job)
    with Progress(job.settings.trials, 0, bar=False, lines=False) as progress:
        sweep.run_here(progress, job.ends.begun(), worker=job.worker + 1)


def following(study: Study, target: int) -> Progress:
    """The bar and a line per trial, from the trials the study ended so far (shown before, not again)."""
    return Progress(target, study.finished(), study.best_value(), shown=[o.number for o in study.outcomes()])


def open_parent(job: SweepJob, study: Study) -> str:
    """The sweep's parent MLflow run, created or resumed, its id kept in the study's record."""
    parent = job.tracker.parent_run(job.settings.study, job.tags)
    job.tracker.log_datasets(parent, job.data.slices)  # before workers log them at once (MLflow would race)
    study.save(replace(study.record(), parent_run_id=parent))
    return parent


def trial_runner(job: SweepJob, parent: str, study: Study, kind: type[Runner] = TrialRunner) -> Runner:
    """What runs every trial of the sweep, in any process: the one place the search reads the seed."""
    settings = job.settings
    return kind(job.space, job.data, job.tracker, parent, job.tags, settings.seed, max_mflops=settings.max_mflops,
                trial_epochs=settings.trial_epochs, stop_at=job.ends.stop_trials_at,
                has_completed=any(o.outcome == Outcome.COMPLETED for o in study.outcomes()))


def trials_missing(target: int, ended: Iterable[Outcome], running: int) -> int:
    """The one stop rule of every engine: how many more trials to start before the study holds
    `target` that count towards --trials (completed or pruned; a refused trial never trained, a
    failed one runs again). Trials running in any process count as on their way, so workers
    sharing a study start no more than it needs; 0 or less: start none."""
    return target - sum(outcome.counts for outcome in ended) - running


def check_going(name: str, outcomes: list[TrialOutcome], target: int, in_a_row: int = FAILURES_IN_A_ROW) -> None:
    """Stop a sweep that cannot progress rather than let it spin: its last `in_a_row` trials that
    trained all failed, or far more sampled models were refused untrained than trials asked for.

    `outcomes`: the study's ended trials, in number order. Optuna asks after a round of trials, with
    the round's size as `in_a_row` (a round that only failed), Keras Tuner before each trial."""
    trained = [o for o in outcomes if o.outcome != Outcome.REFUSED][-in_a_row:]
    if len(trained) == in_a_row and all(o.outcome == Outcome.FAILED for o in trained):
        raise SweepCannotGoOn(f"study '{name}': the last {in_a_row} trials all failed "
                              f"({(trained[-1].reason or '')[:120]}); see their fail_reason in MLflow")
    refused = [o.mflops for o in outcomes if o.outcome == Outcome.REFUSED]
    if len(refused) > REFUSALS_PER_TRIAL * target:
        costs = [m for m in refused if m is not None]
        smallest = f" (the smallest over max_mflops needed {min(costs)})" if costs else ""
        raise SweepCannotGoOn(f"study '{name}': {len(refused)} sampled models were refused untrained"
                              f"{smallest}; raise max_mflops or narrow the space")
