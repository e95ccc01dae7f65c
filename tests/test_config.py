from pathlib import Path

import pytest

from mnist_sweep.config import Settings, load_settings
from mnist_sweep.errors import UserError

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_sweep_file_loads(path):
    import yaml

    declared = yaml.safe_load(path.read_text())
    settings = load_settings(str(path), {})
    # What the file declares is what the sweep runs: its trials, its study and its space.
    assert settings.trials == declared.get("trials", settings.trials)
    assert settings.study == declared.get("study_name", settings.study) and settings.space == declared["space"]


def test_flags_override_the_sweep_file():
    settings = load_settings("mlp-optuna", {"trials": 7, "sampler": "random", "seed": None})
    assert (settings.trials, settings.sampler, settings.seed) == (7, "random", 0)
    assert settings.study == "mlp-optuna"


def test_defaults_without_a_sweep_file(monkeypatch):
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)  # CI sets it: it would be the data's setting
    assert load_settings(None, {}) == Settings()
    assert Settings(space="cnn").study == "cnn-optuna"


@pytest.mark.parametrize("text, expected", [
    ("trials: 10\ntrails: 5\n", "unknown setting 'trails'"),
    ("trials: ten\n", "'trials' must be int"),
    ("trials: 0\n", "'trials' must be greater than 0"),
    ("sampler: bayes\n", "unknown sampler 'bayes'"),
    ("pruner: sometimes\n", "unknown pruner 'sometimes'"),
    ("timeout: true\n", "'timeout' must be int or float"),
    ("warm_start: 'no'\n", "'warm_start' must be bool"),
    ("max_mflops: -5\n", "'max_mflops' must be greater than 0"),
])
def test_bad_sweep_files_are_refused_naming_file_and_key(tmp_path, text, expected):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_settings(str(path), {})
    assert str(path) in str(err.value) and expected in str(err.value)


def test_warm_start_is_on_unless_the_flag_or_the_sweep_file_turns_it_off(tmp_path):
    assert load_settings(None, {}).warm_start is True
    assert load_settings(None, {"warm_start": False}).warm_start is False
    path = tmp_path / "sweep.yaml"
    path.write_text("warm_start: false\nmax_mflops: 20\n")
    assert load_settings(str(path), {}).warm_start is False and load_settings(str(path), {}).max_mflops == 20


def test_trials_see_the_smaller_of_the_two_image_limits():
    assert Settings().search_limit is None
    assert Settings(trial_images=10000).search_limit == 10000
    assert Settings(train_limit=5000, trial_images=10000).search_limit == 5000


def test_mlflows_own_variables_name_the_store_and_the_experiment_unless_a_flag_does(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-mnist")
    settings = load_settings("mlp-optuna", {})
    assert settings.tracking == "http://tracking.example:5000" and settings.experiment == "team-mnist"
    flagged = load_settings("mlp-optuna", {"tracking_uri": "sqlite:///x.db", "experiment": "mine"})
    assert flagged.tracking == "sqlite:///x.db" and flagged.experiment == "mine"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert load_settings(None, {}).tracking.endswith("mlruns/mlflow.db")


def test_every_setting_takes_its_flag_then_its_environment_variable_then_the_sweep_file_then_the_default(
        tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    sweep = tmp_path / "mine.yaml"
    sweep.write_text("tracking_uri: sqlite:///file.db\nexperiment: from-file\ndata: file.npz\n")
    value = lambda s: (s.tracking, s.experiment, s.data)  # noqa: E731
    assert value(load_settings(None, {})) == (Settings().tracking, "mnist-sweep", None)
    assert value(load_settings(str(sweep), {})) == ("sqlite:///file.db", "from-file", "file.npz")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    monkeypatch.setenv("MNIST_SWEEP_DATA", "env.npz")
    # Before, the sweep file's tracking_uri and data beat the environment while its experiment lost.
    assert value(load_settings(str(sweep), {})) == ("sqlite:///env.db", "from-env", "env.npz")
    flags = {"tracking_uri": "sqlite:///flag.db", "experiment": "from-flag", "data": "flag.npz"}
    assert value(load_settings(str(sweep), flags)) == ("sqlite:///flag.db", "from-flag", "flag.npz")


def test_an_empty_environment_variable_is_no_setting(monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "")
    assert load_settings("mlp-optuna", {}).experiment == "mnist-sweep"
