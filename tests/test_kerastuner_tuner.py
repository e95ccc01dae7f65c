"""The tuner that runs each trial Keras Tuner chooses: Hyperband's promoted trials continued from
their saved weights, and the time limit, on tiny synthetic data."""

from __future__ import annotations

import time

import numpy as np
from mlflow.tracking import MlflowClient

from mnist_sweep.config import Settings
from mnist_sweep.data import search_data
from mnist_sweep.deadlines import search_ends
from mnist_sweep.engines import kerastuner as kt_engine
from mnist_sweep.engines.kerastuner_project import open_project
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialRunner


def test_a_resumed_hyperband_project_continues_promoted_trials_from_saved_weights(tiny_mnist, tmp_path):
    space = load_space("mlp").with_max_epochs(3)  # brackets of 1 and 3 epochs: 6 trials a round
    data = search_data(tiny_mnist, val_size=60, seed=0)
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "test", tmp_path / "a")
    parent = tracker.parent_run("s", {"engine": "keras-tuner"})
    settings = Settings(engine="kerastuner", tuner="hyperband", trials=3, storage=str(tmp_path / "kt"))
    runner = TrialRunner(space, data, tracker, parent, {"engine": "keras-tuner"}, seed=0)
    project = open_project(settings, space)
    with Progress(3, 0) as progress:
        kt_engine.run_search(settings, project, runner, progress, [])
    assert project.finished() == 3
    more = Settings(engine="kerastuner", tuner="hyperband", trials=6, storage=str(tmp_path / "kt"))
    project = open_project(more, space)  # a new process would read it back from disk
    with Progress(6, 3) as progress:
        kt_engine.run_search(more, project, runner, progress, [])
    trials = project.trials
    assert len(trials) == 6 and sorted(t["epochs"] for t in trials.values()) == [1, 1, 1, 3, 3, 3]
    assert len(trials["3"]["learning_rates"]) == 3  # its parent's first epoch, then its own two
    history = MlflowClient(tracker.uri).search_runs([tracker.experiment_id], "tags.trial = '3'")[0]
    steps = [m.step for m in MlflowClient(tracker.uri).get_metric_history(history.info.run_id, "val_accuracy")]
    assert steps == [2, 3]  # continued after the epoch its bracket's first round trained
    assert np.isfinite(project.best().value)


def test_a_timeout_stops_starting_trials(tiny_mnist, tmp_path):
    space = load_space("mlp").with_max_epochs(1)
    data = search_data(tiny_mnist, val_size=60, seed=0)
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "test", tmp_path / "a")
    runner = TrialRunner(space, data, tracker, tracker.parent_run("s", {}), {}, seed=0)
    settings = Settings(engine="kerastuner", tuner="random", trials=50, timeout=0.5, storage=str(tmp_path / "kt"))
    project = open_project(settings, space)
    with Progress(50, 0) as progress:
        kt_engine.run_search(settings, project, runner, progress, [], search_ends(settings, time.time()))
    assert 1 <= project.finished() <= 2  # the trial under way when time ran out still finishes
