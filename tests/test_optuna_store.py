"""Recovery of the trials of processes that died, through Optuna's public API."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnist_sweep.engines.optuna_store import OptunaStudy, fail_dead_local_trials, finished_count, note_outcome
from mnist_sweep.studies import TrialOutcome


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


def test_each_outcome_reads_back_from_optuna_as_noted_and_a_0_1_0_refusal_too():
    study = optuna.create_study(direction="maximize")

    def ended(outcome: TrialOutcome, state: TrialState, value: float | None = None) -> None:
        trial = study.ask()  # noted as the objective notes it, told in the state the engine gives it
        note_outcome(trial, outcome)
        study.tell(trial, value, state=state)

    ended(TrialOutcome(0, "completed", {}, 0.9), TrialState.COMPLETE, 0.9)
    ended(TrialOutcome(1, "pruned", {}, 0.5, reason="val accuracy 0.5 at epoch 1"), TrialState.PRUNED)
    ended(TrialOutcome(2, "refused", {}, reason="needs 60 MFLOPs per image", mflops=60.0), TrialState.PRUNED)
    ended(TrialOutcome(3, "refused", {}, reason="no room for 3 blocks"), TrialState.PRUNED)  # unbuildable
    ended(TrialOutcome(4, "failed", {}, reason="ValueError: boom"), TrialState.FAIL)
    legacy = study.ask()  # 0.1.0 marked a refused trial by its cost alone
    legacy.set_user_attr("over_budget", 60.0)
    study.tell(legacy, state=TrialState.PRUNED)
    read = [(o.number, o.outcome, o.reason) for o in OptunaStudy(study, "").outcomes()]
    assert read == [(0, "completed", None), (1, "pruned", None), (2, "refused", "needs 60 MFLOPs per image"),
                    (3, "refused", "no room for 3 blocks"), (4, "failed", "ValueError: boom"),
                    (5, "refused", "60.0 MFLOPs per image, over max_mflops")]
    assert finished_count(study) == 2  # completed and pruned count towards --trials; refused and failed do not
