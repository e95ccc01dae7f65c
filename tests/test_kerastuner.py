"""The Keras Tuner engine on tiny synthetic data: its translation of the spaces, and that its
trials leave exactly the MLflow record an Optuna trial leaves."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mnist_sweep.config import Settings
from mnist_sweep.data import search_data
from mnist_sweep.engines import kerastuner as kt_engine
from mnist_sweep.engines import kerastuner_space as kt_space
from mnist_sweep.engines.optuna import Objective
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialRunner


def test_the_cnn_space_becomes_conditional_keras_tuner_hyperparameters():
    space = load_space("cnn")
    hp = kt_space.declare(space)
    oracle = kt_space.make_oracle(Settings(engine="kerastuner", tuner="random", space="cnn"), space)
    seen_blocks = set()
    for _ in range(40):
        values = oracle._random_values()
        params = space.sample(kt_space.Chosen(values))
        assert space.contains(params)  # exactly the active names, each in its range
        assert set(values) == set(params)  # Keras Tuner chose nothing the model ignores
        blocks = params["n_blocks"]
        seen_blocks.add(blocks)
        assert (f"filters_l{blocks}" not in values) and f"filters_l{blocks - 1}" in values
        assert ("rotation" in values) == params["augment"]
    assert seen_blocks == {1, 2, 3}  # every block count of the CNN space
    assert "filters_l2" in {p.name for p in hp.space}


def test_hyperband_leaves_the_epochs_to_its_brackets():
    space = load_space("mlp").with_max_epochs(9)
    oracle = kt_space.make_oracle(Settings(engine="kerastuner", tuner="hyperband"), space)
    assert "epochs" not in {p.name for p in oracle.hyperparameters.space}
    assert oracle.max_epochs == 9


def _runs(tracker: Tracker) -> list:
    return MlflowClient(tracker.uri).search_runs([tracker.experiment_id], "tags.run_kind = 'trial'")


def _schema(runs: list, space) -> tuple[set, set, set]:
    for run in runs:  # every run's parameters read back as a point of the space
        assert space.contains({k: yaml.safe_load(v) for k, v in run.data.params.items()})
    return ({k for r in runs for k in r.data.params}, {k for r in runs for k in r.data.metrics},
            {k for r in runs for k in r.data.tags})


def test_both_engines_write_the_same_mlflow_schema_for_the_same_space(tiny_mnist, tmp_path):
    space = load_space("mlp").with_max_epochs(2)
    data = search_data(tiny_mnist, val_size=60, seed=0)
    schemas = {}
    for engine in ("optuna", "keras-tuner"):
        tracker = Tracker(f"sqlite:///{tmp_path / engine}.db", "test", tmp_path / engine)
        tags = {"engine": engine, "study": "s", "sampler": "random", "pruner": "none", "data_digest": "d", "space": "mlp"}
        parent = tracker.parent_run("s", tags)
        if engine == "optuna":
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
            study.optimize(Objective(space, data, tracker, parent, tags, seed=0), n_trials=4)
        else:
            settings = Settings(engine="kerastuner", tuner="random", trials=4, storage=str(tmp_path / "kt"))
            project = kt_engine.open_project(settings, space)
            runner = TrialRunner(space, data, tracker, parent, tags, seed=0)
            with Progress(4, 0) as progress:
                kt_engine.run_search(settings, project, runner, progress, [])
            assert project.finished() == 4 and project.best().value == max(
                t["value"] for t in project.trials.values())
        runs = _runs(tracker)
        assert len(runs) == 4 and all(r.data.tags["outcome"] == "completed" for r in runs)
        schemas[engine] = _schema(runs, space)
    params_opt, metrics_opt, tags_opt = schemas["optuna"]
    params_kt, metrics_kt, tags_kt = schemas["keras-tuner"]
    assert metrics_opt == metrics_kt and tags_opt == tags_kt
    assert params_opt <= {*space.to_dict()["parameters"], *(f"{n}_l{i}" for n in ("units", "dropout") for i in range(3))}
    assert {"n_layers", "units_l0", "learning_rate", "epochs"} <= params_opt & params_kt


def test_a_resumed_hyperband_project_continues_promoted_trials_from_saved_weights(tiny_mnist, tmp_path):
    space = load_space("mlp").with_max_epochs(3)  # brackets of 1 and 3 epochs: 6 trials a round
    data = search_data(tiny_mnist, val_size=60, seed=0)
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "test", tmp_path / "a")
    parent = tracker.parent_run("s", {"engine": "keras-tuner"})
    settings = Settings(engine="kerastuner", tuner="hyperband", trials=3, storage=str(tmp_path / "kt"))
    runner = TrialRunner(space, data, tracker, parent, {"engine": "keras-tuner"}, seed=0)
    project = kt_engine.open_project(settings, space)
    with Progress(3, 0) as progress:
        kt_engine.run_search(settings, project, runner, progress, [])
    assert project.finished() == 3
    more = Settings(engine="kerastuner", tuner="hyperband", trials=6, storage=str(tmp_path / "kt"))
    project = kt_engine.open_project(more, space)  # a new process would read it back from disk
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
    project = kt_engine.open_project(settings, space)
    with Progress(50, 0) as progress:
        kt_engine.run_search(settings, project, runner, progress, [])
    assert 1 <= project.finished() <= 2  # the trial under way when time ran out still finishes


class _Killed(BaseException):
    """The process dies: nothing after this point runs."""


def test_a_trial_killed_after_its_run_ended_but_before_keras_tuner_saved_it_has_one_finished_run(
        tiny_mnist, tmp_path, monkeypatch):
    space = load_space("mlp").with_max_epochs(1)
    data = search_data(tiny_mnist, val_size=60, seed=0)
    tracker = Tracker(f"sqlite:///{tmp_path}/m.db", "test", tmp_path / "a")
    runner = TrialRunner(space, data, tracker, tracker.parent_run("s", {}), {}, seed=0)
    settings = Settings(engine="kerastuner", tuner="random", trials=2, storage=str(tmp_path / "kt"))
    save_end = kt_engine.SweepTuner.on_trial_end
    ends = []

    def killed_on_second_end(tuner, trial):
        ends.append(trial.trial_id)
        if len(ends) == 2:  # its MLflow run is FINISHED; the oracle still holds the trial as running
            raise _Killed
        save_end(tuner, trial)

    monkeypatch.setattr(kt_engine.SweepTuner, "on_trial_end", killed_on_second_end)
    with Progress(2, 0) as progress, pytest.raises(_Killed):
        kt_engine.run_search(settings, kt_engine.open_project(settings, space), runner, progress, [])
    monkeypatch.setattr(kt_engine.SweepTuner, "on_trial_end", save_end)
    with Progress(2, 1) as progress:  # the same command again: Keras Tuner runs that trial again
        kt_engine.run_search(settings, kt_engine.open_project(settings, space), runner, progress, [])

    runs = _runs(tracker)
    finished = sorted(int(r.data.tags["trial"]) for r in runs if r.info.status == "FINISHED")
    (failed,) = [r for r in runs if r.info.status != "FINISHED"]
    assert finished == [0, 1]  # one finished run per completed trial, as Keras Tuner counts them
    assert failed.info.status == "FAILED" and failed.data.tags["trial"] == "1"
    assert "Keras Tuner" in failed.data.tags["fail_reason"]


def test_the_same_seed_draws_the_same_trials_seed_0_too():
    space = load_space("mlp")
    for seed in (0, 7):
        settings = Settings(engine="kerastuner", tuner="random", seed=seed)
        first, second = (kt_space.make_oracle(settings, space)._random_values() for _ in range(2))
        assert first == second


def test_a_conditional_space_goes_over_grpc_without_keras_tuners_debug_print(capsys):
    hp = kt_space.declare(load_space("cnn"))  # per-layer parameters: conditional scopes
    assert hp.to_proto().space  # as the chief sends it to every worker
    assert capsys.readouterr().out == ""


def test_max_epochs_caps_the_presets_so_the_cnn_notebooks_still_open_the_search():
    space = load_space("cnn").with_max_epochs(1)
    runner = TrialRunner(space, None, None, "", {}, seed=0)  # only its space and cost limit are asked
    settings = Settings(engine="kerastuner", tuner="random", space="cnn", max_epochs=1)
    presets = kt_engine._warm_start(runner, settings)
    assert [p.name for p in presets] == ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64"]
    assert all(p.params["epochs"] == 1 for p in presets)
    assert [p.name for p in kt_engine._warm_start(runner, replace(settings, trials=1))] == [presets[0].name]


def test_each_outcome_reads_back_from_a_project_and_0_1_0s_trials_too(tmp_path):
    project = kt_engine.Project(tmp_path, "p")
    # 0.1.0 kept the trials in study.json, a reason under "note".
    legacy = {"0": {"params": {"epochs": 1}, "preset": None, "outcome": "completed", "value": 0.9, "epochs": 1,
                    "learning_rates": [1e-3], "seconds": 1.2},
              "1": {"params": {"epochs": 1}, "preset": None, "outcome": "refused", "value": None, "epochs": 0,
                    "seconds": 0.1, "note": "needs 60 MFLOPs per image"},
              "2": {"params": {"epochs": 1}, "preset": None, "outcome": "failed", "value": None, "epochs": 0,
                    "seconds": 0.1, "note": "ValueError: boom"}}
    project.folder.mkdir()
    project.file.write_text(json.dumps({"trials": legacy}))
    words = ["completed", "pruned", "refused", "failed"]
    for number, word in enumerate(words, start=3):
        project.note(TrialOutcome(number, word, {"epochs": 1}, reason=f"why {word}"))
    read = [(o.number, o.outcome, o.reason) for o in project.outcomes()]
    assert read == [(0, "completed", None), (1, "refused", "needs 60 MFLOPs per image"),
                    (2, "failed", "ValueError: boom"),
                    *[(n, w, f"why {w}") for n, w in enumerate(words, start=3)]]
    assert project.finished() == 2  # Keras Tuner never prunes: its study counts completed trials
