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


# Settings declared once (config.Settings, declare.py): each test below runs over every declaration,
# so a setting declared and then missed by the CLI, the checks or a study's record fails here.


from mnist_sweep.cli import build_parser, main  # noqa: E402
from mnist_sweep.config import ENVIRONMENT, SETTINGS  # noqa: E402
from mnist_sweep.declare import CHECKED, NOTED_IF_SET  # noqa: E402
from mnist_sweep.engines.specs import names  # noqa: E402
from mnist_sweep.studies import StudySettings  # noqa: E402

# The flags that are no setting: what a command does, not what a sweep runs with.
NOT_SETTINGS = {"help", "sweep", "worker", "force", "formats", "list", "only", "seeds", "report_dir", "files",
                "model", "host", "port"}


def _flags(command):
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    return {a.dest: a for a in parser._actions}


@pytest.mark.parametrize("command", ["optuna", "kerastuner", "final", "export", "baselines", "report", "predict",
                                     "ui"])
def test_each_command_has_the_flag_of_every_setting_declared_for_it_and_no_other(command):
    flags = _flags(command)
    offered = {s.name for s in SETTINGS if s.offered_in(command, command in names())}
    assert set(flags) - NOT_SETTINGS == offered  # a hand-made flag that no setting reads fails here too
    for setting in SETTINGS:
        if setting.name in offered:
            assert flags[setting.name].option_strings == [setting.flag]
            assert flags[setting.name].help, setting.name


def test_every_sweep_command_takes_every_setting_but_the_engine_chosen_by_it_and_the_sweep_files_own():
    for engine in names():
        missing = {s.name for s in SETTINGS if s.engine in (None, engine)} - set(_flags(engine))
        assert missing == {"engine", "enqueue", "final_include", "final_include_models"}, engine


def _valid(setting):
    """A value the setting takes that is not its default."""
    if setting.allowed():
        return [c for c in setting.allowed() if c != setting.default][0]
    kinds = setting.accepted()
    samples = {bool: not setting.default, int: 3, float: 2.5, str: "value", dict: {}}
    value, most = samples[kinds[-1]], setting.upper()
    return value if most is None or value <= most else most / 2  # a share: at most 1


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_taken_from_a_sweep_file(tmp_path, setting, monkeypatch):
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({setting.name: _valid(setting)}))
    assert getattr(load_settings(str(path), {}), setting.name) == _valid(setting)


def _out_of_bounds(setting):
    """(value, what the one-line refusal says) for each bound the setting declares, and a wrong type."""
    key, most = setting.name, setting.upper()
    cases = [([1], f"'{key}' must be ")]
    if setting.positive:
        cases.append((0, f"'{key}' must be greater than 0 (got 0)"))
    if most is not None:
        said = "a whole number from" if setting.least is not None else "at most"
        cases.append((most + 1, f"'{key}' must be {said} "))
    if setting.least is not None:
        cases.append((setting.least - 1, f"'{key}' must be a whole number from {setting.least} to {most}"))
    if setting.longest is not None:
        cases += [("", f"'{key}' must have 1 to"), ("x" * (setting.longest + 1), f"'{key}' must have 1 to")]
    if setting.allowed():
        cases.append(("nonesuch", f"unknown {key} 'nonesuch'; use one of: {', '.join(setting.allowed())}"))
    return cases


@pytest.mark.parametrize("setting, value, expected", [(s, v, e) for s in SETTINGS for v, e in _out_of_bounds(s)],
                         ids=lambda x: x.name if hasattr(x, "flag") else repr(x)[:20])
def test_every_setting_out_of_its_bounds_is_refused_in_one_line_naming_file_and_setting(
        tmp_path, monkeypatch, capsys, setting, value, expected):
    import yaml

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({setting.name: value}))
    assert main(["optuna", "--sweep", "sweep.yaml"]) == 2
    err = capsys.readouterr().err
    assert f"sweep.yaml: {expected}" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.positive], ids=lambda s: s.name)
def test_every_positive_setting_refuses_zero_as_a_flag(capsys, setting):
    command = setting.engine or "optuna"
    assert main([command, setting.flag, "0"]) == 2
    assert f"{setting.flag}: must be a " in capsys.readouterr().err


def test_a_studys_record_holds_the_settings_declared_recorded_and_checks_those_declared_checked():
    for engine in names():
        mine = StudySettings.of(Settings(engine=engine, final_models=2, final_minutes=9.0, trial_epochs=4,
                                         minutes=29.0, final_include="mine", final_include_models=2))
        own = {s.name for s in SETTINGS if s.recorded and s.engine in (None, engine)}
        assert {k for k, v in vars(mine).items() if v is not None} == own - {"train_limit", "trial_images"}
        checked = {s.name for s in SETTINGS if s.recorded == CHECKED and s.engine in (None, engine)}
        assert set(mine.protocol()) == checked
    assert StudySettings.of(Settings()).final_models is None  # a default it records as the first versions did
    assert all(s.default is not None for s in SETTINGS if s.recorded == NOTED_IF_SET)


def test_the_environment_variables_are_those_declared():
    assert ENVIRONMENT == {"experiment": "MLFLOW_EXPERIMENT_NAME", "data": "MNIST_SWEEP_DATA",
                           "tracking_uri": "MLFLOW_TRACKING_URI"}


def test_every_setting_names_an_owner_that_exists():
    # The owner is where a newcomer reads what a setting does: a module or folder of the package.
    package = REPO / "mnist_sweep"
    assert [s.name for s in SETTINGS if not (package / s.owner).exists()] == []
