"""Recovery of the trials of processes that died, through Optuna's public API, and of their MLflow runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from types import SimpleNamespace

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnist_sweep.engines.optuna_recovery import fail_dead_local_trials, fail_runs_of_failed_trials
from mnist_sweep.tracking import Tracker


@pytest.fixture
def objective(tracking_uri, tmp_path):
    """What recovering the runs asks of an Optuna objective: its tracker and parent run."""
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    return SimpleNamespace(tracker=tracker, parent_id=tracker.parent_run("s", {"engine": "optuna"}))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_trial_of_a_dead_local_process_is_failed_once_and_queued_again(tmp_path):
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("worker", f"{socket.gethostname()}:{_dead_pid()}")
    fail_dead_local_trials(study)
    fail_dead_local_trials(study)  # a second pass (another process) neither fails nor queues it again
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    assert study.trials[1].params == trial.params


def test_a_trial_stopped_before_its_run_was_closed_gets_its_run_failed(objective):
    study = optuna.create_study()
    trial = study.ask()
    run_id = objective.tracker.start_child(objective.parent_id, "trial-000", {}, {"trial": "0", "run_kind": "trial"})
    fail_runs_of_failed_trials(study, objective.tracker, objective.parent_id)
    assert objective.tracker.client.get_run(run_id).info.status == "RUNNING"  # its trial is still running
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    fail_runs_of_failed_trials(study, objective.tracker, objective.parent_id)
    run = objective.tracker.client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["outcome"] == "failed"
