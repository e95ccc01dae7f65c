"""Recovery of the trials of processes that died, through Optuna's public API."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnist_sweep.engines.optuna_store import fail_dead_local_trials


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
