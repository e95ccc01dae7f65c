"""A sweep killed with kill -9 at any point resumes with the same command: the study complete,
one FINISHED final run, no run left RUNNING, the export whole, the test set's looks counted.

Each kill point is a function of the code, replaced by tests/kill.py with one that kills the
process at that moment (mid-trial kills from outside are in test_end_to_end.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.test_end_to_end import QUICK, cli, runs, study_of

pytestmark = pytest.mark.slow
KILL = Path(__file__).parent / "kill.py"


def sweep_args(real_data: Path) -> list[str]:
    return ["optuna", "--trials", "2", "--study-name", "k", "--data", str(real_data), *QUICK, "--no-warm-start"]


def killed_at(cwd: Path, target: str, when: str, nth: int, args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(KILL), target, when, str(nth), "--", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(KILL.parent.parent)})
    assert done.returncode == -9, done.stderr[-2000:]  # it was killed there, not before
    return done


def check_whole(cwd: Path, evaluations: int) -> None:
    """What a user would check after the re-run: nothing lost, nothing left open, counted honestly."""
    study = study_of(cwd, "k")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    kinds = runs(cwd, "k")
    everything = kinds["study"] + kinds["trial"] + kinds["final"]
    assert not [r for r in everything if r.info.status == "RUNNING"]
    (finished,) = [r for r in kinds["final"] if r.info.status == "FINISHED"]
    assert all(r.info.status == "KILLED" for r in kinds["final"] if r is not finished)
    record = study.user_attrs["final"]
    assert record["run_id"] == finished.info.run_id and record["model_uri"]
    assert record["evaluations"] == study.user_attrs["test_evaluations"] == evaluations
    export = cwd / "models" / "k"
    metrics = json.loads((export / "metrics.json").read_text())
    assert metrics["run_id"] == finished.info.run_id and metrics["evaluations"] == evaluations
    assert (export / "model.keras").stat().st_size > 0 and (export / "params.json").is_file()
    assert {p.name for p in (cwd / "reports" / "k").iterdir()} >= {"trials.csv", "history.png"}


@pytest.mark.parametrize("target, when, nth, evaluations, members", [
    ("mnist_sweep.runtime.memory:MemoryBudget.after_trial", "after", 1, 1, 1),  # between two trials
    ("mnist_sweep.runtime.parallel:_result", "before", 1, 1, 2),                # the side-by-side retrain, untested
    ("mnist_sweep.final:evaluate_with_predictions", "after", 1, 2, 1),          # just after the test evaluation
    ("mnist_sweep.tracking:Tracker.register", "before", 1, 1, 1),               # model logged, not registered
    ("mnist_sweep.export:_move", "before", 4, 1, 1),                            # export: all but metrics.json moved
    ("mnist_sweep.reporting.report:write", "after", 1, 1, 1),                   # report written, not logged
], ids=["between-trials", "final-retrain", "after-test-evaluation", "model-registration", "export", "report"])
def test_a_sweep_killed_here_resumes_whole_with_the_same_command(real_data, tmp_path, target, when, nth, evaluations,
                                                                 members):
    args = [*sweep_args(real_data), "--final-models", str(members)]  # members side by side: in processes of their own
    killed_at(tmp_path, target, when, nth, args)
    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    check_whole(tmp_path, evaluations)
    if evaluations == 2:  # the kill came between the look at the test set and its record: said so
        assert "test set evaluation number 2" in done.stdout


def test_a_torn_journal_loses_no_finished_trial(real_data, tmp_path):
    args = sweep_args(real_data)
    assert cli(tmp_path, *args).returncode == 0
    journal = tmp_path / "mlruns" / "optuna.journal"
    complete = {t.number for t in study_of(tmp_path, "k").trials if t.state.name == "COMPLETE"}
    for cut in (1, 17, 50):  # what a crash or a full disk leaves mid-write
        torn = json.loads(journal.read_bytes().splitlines()[-1])  # never a finished write once cut
        complete -= {torn.get("trial_id")}  # if it ended a trial, that trial runs again
        os.truncate(journal, journal.stat().st_size - cut)
        again = cli(tmp_path, *args[:2], "3" if cut == 1 else "4" if cut == 17 else "5", *args[3:])
        assert again.returncode == 0, again.stderr[-2000:]
        assert "dropped" in again.stderr and "optuna.journal.torn-" in again.stderr
        study = study_of(tmp_path, "k")  # Optuna's own reader: the file is whole again
        assert complete <= {t.number for t in study.trials if t.state.name == "COMPLETE"}
        complete = {t.number for t in study.trials if t.state.name == "COMPLETE"}
    assert len(complete) >= 5 and list(tmp_path.glob("mlruns/optuna.journal.torn-*"))
