"""The trials of processes that died: failed and queued again in Optuna, their MLflow runs failed."""

from __future__ import annotations

import datetime
import time

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from mnist_sweep.engines.optuna_storage import GRACE_SECONDS, HEARTBEAT_SECONDS, RETRY, is_journal
from mnist_sweep.engines.optuna_study import OptunaStudy
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.workers import WORKER, alive
from mnist_sweep.tracking import Tracker


def recover_stale(study: OptunaStudy, tracker: Tracker, parent_id: str) -> None:
    """Fail (and requeue) trials left RUNNING by a killed process, waiting out their grace period.

    A trial of a live worker keeps beating and stays untouched; a dead one is failed here
    rather than at some later trial's start, which a short resumed sweep might never reach.
    """
    if is_journal(study.storage_url):
        fail_dead_local_trials(study.study)
    else:
        deadline = time.monotonic() + GRACE_SECONDS + HEARTBEAT_SECONDS
        while study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) and time.monotonic() < deadline:
            optuna.storages.fail_stale_trials(study.study)
            time.sleep(1)
    fail_runs_of_failed_trials(study.study, tracker, parent_id)


def fail_dead_local_trials(study: optuna.Study) -> None:
    """Fail and requeue RUNNING trials whose process on this machine is gone.

    Optuna's journal storage has no heartbeats; the process id each trial records stands in
    for them (on this machine: a study shared across machines needs a database's heartbeats).
    """
    trials = study.get_trials(deepcopy=False)
    for trial in (t for t in trials if t.state == TrialState.RUNNING):
        if _dead(trial, trials):
            try:  # not skip_if_finished: a trial another process failed was retried by that process
                failed = study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):  # another process got there first
                continue
            RETRY(study, failed)


def run_again(study: optuna.Study, number: int | None) -> None:
    """Queue again trial `number`, which a Ctrl-C or `kill` stopped in this process (Optuna failed
    it), so that the resume runs its configuration as it runs a dead process's: a preset stays in
    the study's floor. None: no trial was stopped (the stop came between trials)."""
    if number is None:
        return
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state == TrialState.FAIL:  # a second Ctrl-C may have cut Optuna's own bookkeeping short
        RETRY(study, trial)


UNCLAIMED_SECONDS = 60  # a trial picked up but never told who runs it: its process died at once


def _dead(trial: FrozenTrial, trials: list[FrozenTrial]) -> bool:
    worker = trial.user_attrs.get("worker")
    retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    if retried is not None and worker == trials[retried].user_attrs.get("worker"):
        worker = None  # the retry copied its dead predecessor's attributes; its own runner has not said yet
    if worker:
        where, _, pid = worker.partition(":")
        return where == WORKER.split(":")[0] and pid.isdigit() and not alive(int(pid))
    started = trial.datetime_start
    return started is not None and (datetime.datetime.now() - started).total_seconds() > UNCLAIMED_SECONDS


def fail_runs_of_failed_trials(study: optuna.Study, tracker: Tracker, parent_id: str) -> None:
    """A trial Optuna failed (lost heartbeat, or a stop before its run was closed) keeps a
    RUNNING MLflow run: fail that run too. Found by the run's `trial` tag, so a stop at any
    point after the run was created is covered."""
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    if not failed:  # the usual case after a trial: no need to ask MLflow
        return
    for number, run_id in tracker.running_children(parent_id).items():
        if number in failed:
            tracker.end_run(run_id, Outcome.FAILED, "process stopped during the trial")
