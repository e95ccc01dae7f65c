"""The MLflow runs of Keras Tuner trials that a dead process left, failed when Keras Tuner runs
the trial again, so each completed trial has one finished run."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from mnist_sweep.config import Settings
from mnist_sweep.data import search_data
from mnist_sweep.engines import kerastuner as kt_engine
from mnist_sweep.engines.kerastuner_project import open_project
from mnist_sweep.engines.kerastuner_tuner import SweepTuner
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialRunner


def _runs(tracker: Tracker) -> list:
    return MlflowClient(tracker.uri).search_runs([tracker.experiment_id], "tags.run_kind = 'trial'")


class _Killed(BaseException):
    """The process dies: nothing after this point runs."""


def test_a_trial_killed_after_its_run_ended_but_before_keras_tuner_saved_it_has_one_finished_run(
        tiny_mnist, tmp_path, monkeypatch):
    space = load_space("mlp").with_max_epochs(1)
    data = search_data(tiny_mnist, val_size=60, seed=0)
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "test", tmp_path / "a")
    runner = TrialRunner(space, data, tracker, tracker.parent_run("s", {}), {}, seed=0)
    settings = Settings(engine="kerastuner", tuner="random", trials=2, storage=str(tmp_path / "kt"))
    save_end = SweepTuner.on_trial_end
    ends = []

    def killed_on_second_end(tuner, trial):
        ends.append(trial.trial_id)
        if len(ends) == 2:  # its MLflow run is FINISHED; the oracle still holds the trial as running
            raise _Killed
        save_end(tuner, trial)

    monkeypatch.setattr(SweepTuner, "on_trial_end", killed_on_second_end)
    with Progress(2, 0) as progress, pytest.raises(_Killed):
        kt_engine.run_search(settings, open_project(settings, space), runner, progress, [])
    monkeypatch.setattr(SweepTuner, "on_trial_end", save_end)
    with Progress(2, 1) as progress:  # the same command again: Keras Tuner runs that trial again
        kt_engine.run_search(settings, open_project(settings, space), runner, progress, [])

    runs = _runs(tracker)
    finished = sorted(int(r.data.tags["trial"]) for r in runs if r.info.status == "FINISHED")
    (failed,) = [r for r in runs if r.info.status != "FINISHED"]
    assert finished == [0, 1]  # one finished run per completed trial, as Keras Tuner counts them
    assert failed.info.status == "FAILED" and failed.data.tags["trial"] == "1"
    assert "Keras Tuner" in failed.data.tags["fail_reason"]
