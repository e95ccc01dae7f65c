"""The Keras Tuner engine on tiny synthetic data: its trials leave exactly the MLflow record an
Optuna trial leaves, and its warm start is presets.warm_start's, judged at Hyperband's epochs."""

from __future__ import annotations

import optuna
import yaml
from mlflow.tracking import MlflowClient

from mnist_sweep.config import Settings
from mnist_sweep.data import search_data
from mnist_sweep.engines import kerastuner as kt_engine
from mnist_sweep.engines.kerastuner_project import open_project
from mnist_sweep.engines.optuna import Objective
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialRunner


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
        tags = {"engine": engine, "study": "s", "sampler": "random", "pruner": "none", "data_digest": "d",
                "space": "mlp"}
        parent = tracker.parent_run("s", tags)
        if engine == "optuna":
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
            study.optimize(Objective(space, data, tracker, parent, tags, seed=0), n_trials=4)
        else:
            settings = Settings(engine="kerastuner", tuner="random", trials=4, storage=str(tmp_path / "kt"))
            project = open_project(settings, space)
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
    assert params_opt <= {*space.to_dict()["parameters"],
                          *(f"{n}_l{i}" for n in ("units", "dropout") for i in range(3))}
    assert {"n_layers", "units_l0", "learning_rate", "epochs"} <= params_opt & params_kt


def test_the_warm_start_takes_the_sweeps_caps_and_judges_presets_at_hyperbands_epochs():
    from types import SimpleNamespace

    from mnist_sweep.presets import load_presets
    from mnist_sweep.space import load_space

    def chosen(**settings):
        job = SimpleNamespace(space=load_space("mlp"), presets=tuple(load_presets()),
                              settings=Settings(engine="kerastuner", **settings))
        return kt_engine._warm_start(job)

    assert "nb004-mlp-300-300" in [p.name for p in chosen(tuner="hyperband")]  # its 50 epochs: Hyperband sets them
    assert "nb004-mlp-300-300" not in [p.name for p in chosen(tuner="random")]
    assert len(chosen(tuner="random", trials=2)) == 2
    assert {p.params["epochs"] for p in chosen(tuner="random", max_epochs=3)} == {3}
