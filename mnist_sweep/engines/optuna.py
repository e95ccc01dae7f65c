"""The Optuna engine: a resumable study whose every trial is a nested MLflow run.

The sweep's skeleton (engines/base.py) drives it; this engine supplies what is Optuna's: the
study prepared under the study's lock (one process at a time, on any machine), Optuna's loop of
trials with its sampler and pruner, the trials of processes that died failed and requeued, and
its count of the trials still missing, those that processes elsewhere run included.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.trial import TrialState

from mnist_sweep.config import Settings
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines import SweepJob, base
from mnist_sweep.engines.optuna_spec import OptunaSpec
from mnist_sweep.engines.optuna_recovery import fail_runs_of_failed_trials, recover_stale, run_again
from mnist_sweep.engines.optuna_samplers import make_pruner, make_sampler
from mnist_sweep.engines.optuna_study import (FINISHED, OptunaStudy, best_value, load_study, note_outcome, open_study,
                                              outcome_of, read_outcome)
from mnist_sweep.outcomes import Outcome
from mnist_sweep.presets import Preset, announce_warm_start, warm_start
from mnist_sweep.runtime import signals
from mnist_sweep.runtime.locks import exclusive
from mnist_sweep.runtime.memory import MemoryBudget
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.runtime.workers import WORKER
from mnist_sweep.space import SearchSpace, cap_epochs
from mnist_sweep.trials import TrialEnded, TrialRunner

optuna.logging.set_verbosity(optuna.logging.ERROR)  # our line per trial (with any failure reason) replaces its logs

WAIT_SECONDS = 2  # between looks at the trials other processes run
SPEC = OptunaSpec()  # its declaration: its name and where its studies are


class OptunaEngine:
    name = SPEC.name

    def exists(self, settings: Settings) -> bool:
        return True  # asked last: its `open` says what is missing

    def open(self, settings: Settings) -> OptunaStudy:
        return OptunaStudy(load_study(settings), SPEC.storage(settings))

    def search(self, job: SweepJob) -> OptunaStudy | None:
        """Search until the study has its trials, in this process or in `--workers` processes
        (engines/base.py). The same command on other machines with a shared --storage joins the
        study: the study's lock lets one of them prepare it."""
        return base.search(self, job)

    def prepare(self, job: SweepJob) -> OptunaSweep:
        """Create or resume the study, its parent run and its warm start, one process at a time."""
        settings = job.settings
        with exclusive(SPEC.storage(settings), settings.study):
            sweep = self.attach(job)
            sweep.runner.parent_id = base.open_parent(job, sweep.study)
            _queue_first_trials(sweep.study.study, job.presets, job.space, settings)
        return sweep

    def attach(self, job: SweepJob) -> OptunaSweep:
        """The study and this process's objective, for a study the sweep's own process prepared."""
        settings = job.settings
        study = OptunaStudy(open_study(settings, job.space, job.digest), SPEC.storage(settings))
        return OptunaSweep(study, base.trial_runner(job, study.record().parent_run_id or "", study, Objective),
                           settings)


class Objective(TrialRunner):
    """An Optuna objective: sample the space, run the trial, map its outcome to Optuna's states."""

    interrupted: int | None = None  # the trial a Ctrl-C or `kill` stopped in this process

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._trial(trial)
        except BaseException:  # Optuna fails the trial; optimize queues it again if a stop did it
            if signals.stopping():  # whatever it surfaced as: an interrupted MLflow call raises its own error
                self.interrupted = trial.number
            raise

    def _trial(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", WORKER)  # how a journal study tells a dead worker's trial
        preset = trial.user_attrs.get("preset")
        floor = preset or trial.user_attrs.get("enqueued")
        params = self.space.sample(trial, within=None if floor else self.cost_bound())  # a fixed point is as given
        trial.set_user_attr("params", params)

        def report(epoch: int, metrics: dict[str, float]) -> None:  # what Optuna's pruner judges
            trial.report(metrics["val_accuracy"], epoch)

        try:  # the runner asks the pruner where a trial may stop (never a preset or an enqueued one)
            outcome = self.run(trial.number, params, preset, report, sampled=not floor, prune=trial.should_prune,
                               on_run=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id))
        except TrialEnded as ended:
            note_outcome(trial, ended.outcome)
            if ended.outcome.outcome in (Outcome.PRUNED, Outcome.REFUSED):
                raise optuna.TrialPruned(ended.outcome.reason) from None
            raise
        note_outcome(trial, outcome)
        return outcome.value


def _queue_first_trials(study: optuna.Study, presets: tuple[Preset, ...], space: SearchSpace,
                        settings: Settings) -> None:
    """A new study's first trials: the presets that fit (presets.warm_start), then the sweep file's
    configurations. A resumed study enqueued (and maybe ran) them when it began."""
    if study.trials:
        return
    chosen = warm_start(presets, space, settings.max_epochs, settings.trials)
    for preset in chosen:
        study.enqueue_trial(preset.params, user_attrs={"preset": preset.name})
    announce_warm_start([p.name for p in chosen])
    enqueue(study, settings.enqueue or {}, settings.max_epochs, settings.trials - len(chosen))


def enqueue(study: optuna.Study, configurations: dict[str, dict[str, Any]], max_epochs: int | None = None,
            room: int | None = None) -> None:
    """The sweep file's configurations, tried after the presets when a study begins, under the same
    caps: at most `max_epochs` each, and only the first `room` (the trials the presets left)."""
    chosen = list(configurations.items())[:room]
    for name, params in chosen:
        study.enqueue_trial(cap_epochs(params, max_epochs), user_attrs={"enqueued": name})
    if chosen:
        print(f"then {len(chosen)} configuration(s) the sweep file enqueues: {', '.join(n for n, _ in chosen)}")


class OptunaSweep:
    """Optuna's part of the skeleton: Optuna's loop in this process or in workers sharing the study,
    and the trials of dead processes failed and requeued."""

    def __init__(self, study: OptunaStudy, runner: Objective, settings: Settings):
        self.study, self.runner, self.settings = study, runner, settings

    def recover(self) -> None:  # any dead process's trial, whichever worker died
        recover_stale(self.study, self.runner.tracker, self.runner.parent_id)

    def run_here(self, progress: Progress, ends: SearchEnds, worker: int = 0) -> None:
        settings = self.settings
        start_search(self.study.study, settings, self.runner.space, worker)
        optimize(self.study.study, self.runner, settings.trials, ends, progress, MemoryBudget(settings.recycle_mb))

    @contextlib.contextmanager
    def serving(self, progress: Progress) -> Iterator[base.WorkerCare]:
        yield base.WorkerCare(lambda index: self.recover())  # the study tells any dead process's trial

    def missing(self) -> int:
        """A round can end with trials missing: a trial another process seemed to run (one picked
        up by a process that died at once) failed while the round waited for it. The next runs it."""
        return trials_missing(self.study.study, self.settings.trials)

    def wait_for_others(self) -> None:
        wait_for_others(self.study.study, self.recover)


def start_search(study: optuna.Study, settings: Settings, space: SearchSpace, worker: int = 0) -> None:
    """This process's sampler and pruner, whose start-ups count the sampler's own trials.

    The warm-start presets (run or still queued) are trials too, tuned by hand to converge fast:
    counted, their epoch-2 median pruned 41 of 50 trials, and as most of TPE's first ten they
    steered it to their corner, RMSprop at batch 64, in two measured sweeps (README).
    """
    trials = study.get_trials(deepcopy=False)
    presets = sum("preset" in t.user_attrs for t in trials)
    begun = sum(t.state != TrialState.WAITING for t in trials)
    study.sampler = make_sampler(settings.sampler, settings.seed, begun, worker, presets)
    study.pruner = make_pruner(settings.pruner, settings.most_epochs(space.max_epochs()), presets)


def wait_for_others(study: optuna.Study, recover: Callable[[], None]) -> None:
    """Wait while processes elsewhere (other machines, other commands) still run trials of the
    study, failing those whose process died, so the final step sees every trial."""
    said = False
    while running := study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not said:
            print(f"waiting for {len(running)} trial(s) that other processes are running", file=sys.stderr)
            said = True
        recover()
        time.sleep(WAIT_SECONDS)


def optimize(study: optuna.Study, objective: Objective, target: int, ends: SearchEnds,
             progress: Progress, budget: MemoryBudget) -> None:
    """Run trials until the study holds `target` finished ones, the time to start them is up, or
    nothing works.

    Other workers' running trials count as on their way, so several processes sharing the
    study start no more trials than it needs."""

    def enough(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if trials_missing(s, target) <= 0:
            s.stop()

    def show(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        progress.show(outcome_of(t), best_value(s))  # every worker's best, not only ours

    callbacks = [show, lambda s, t: fail_runs_of_failed_trials(s, objective.tracker, objective.parent_id),
                 lambda s, t: signals.check(),  # between trials: a stop swallowed during one is not lost
                 lambda s, t: budget.after_trial(), enough]
    while (missing := trials_missing(study, target)) > 0:
        if ends.spent():
            return
        # No gc_after_trial: each trial starts with models.fresh_session(), which collects
        # already; Optuna's full collection cost 0.5 s per trial (benchmarks/overhead.py).
        try:
            study.optimize(objective, n_trials=missing, timeout=ends.left(), callbacks=callbacks, catch=(Exception,))
        except KeyboardInterrupt:
            run_again(study, objective.interrupted)
            raise
        ended = [outcome_of(t) for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        base.check_going(study.study_name, ended, target, in_a_row=missing)  # a round that only failed stops it


def trials_missing(study: optuna.Study, target: int) -> int:
    """Trials still to start, by the skeleton's one stop rule, read from Optuna's study."""
    ended = [read_outcome(t) for t in study.get_trials(deepcopy=False, states=FINISHED)]
    return base.trials_missing(target, ended, len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))))
