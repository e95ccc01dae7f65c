"""Bad input: one line naming what is wrong, exit code 2, no traceback, nothing recorded."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import synthetic_arrays
from mnist_sweep.cli import build_parser, main
from mnist_sweep.files import read_yaml

ROOT = Path(__file__).parents[1]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    (tmp_path / "bad.yaml").write_text("trials: [1\n")
    (tmp_path / "typo.yaml").write_text("trials: 3\nsampelr: tpe\n")
    (tmp_path / "enqueue.yaml").write_text("space: cnn\nenqueue: {mine: {n_blocks: 9}}\n")
    (tmp_path / "include.yaml").write_text("space: mlp\nfinal_include: mine\n")
    (tmp_path / "copies.yaml").write_text("space: mlp\nfinal_include_models: 2\n")
    np.savez(tmp_path / "small.npz", **synthetic_arrays())  # valid arrays, wrong sizes
    return tmp_path


@pytest.mark.parametrize("argv, expected", [
    (["optuna", "--trials", "0"], "--trials: must be a whole number greater than 0"),
    (["optuna", "--trials", "-3"], "--trials: must be a whole number greater than 0"),
    (["optuna", "--sampler", "grid"], "invalid choice: 'grid'"),
    (["optuna", "--pruner", "always"], "invalid choice: 'always'"),
    (["optuna", "--max-mflops", "0"], "--max-mflops: must be a number greater than 0"),
    (["optuna", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["optuna", "--space", "nonesuch"], "unknown name 'nonesuch' in search_spaces/; choose one of: cnn, mlp\n"),
    (["optuna", "--space", "presets"], "unknown name 'presets' in search_spaces/; choose one of: cnn, mlp\n"),
    (["optuna", "--sweep", "bad.yaml"], "bad.yaml: invalid YAML at line"),
    (["optuna", "--sweep", "typo.yaml"], "typo.yaml: unknown setting 'sampelr'"),
    (["optuna", "--sweep", "enqueue.yaml"], "enqueue: 'mine' is not a point of the cnn space"),
    (["optuna", "--sweep", "include.yaml"], "final_include: 'mine' is not a configuration this sweep file enqueues"),
    (["optuna", "--sweep", "copies.yaml"], "final_include_models: there is no final_include to retrain"),
    (["kerastuner", "--sweep", "cnn-optuna"], "'enqueue' is for the optuna engine"),
    (["optuna", "--data", "absent.npz"], "absent.npz: no such data file"),
    (["optuna", "--data", "small.npz"], "small.npz: 'x_train' has shape (300, 28, 28), expected (60000, 28, 28)"),
    (["final", "--study-name", "never-run"], "no Optuna storage at"),
    (["kerastuner", "--tuner", "annealing"], "invalid choice: 'annealing'"),
    (["kerastuner", "--trials", "0"], "--trials: must be a whole number greater than 0"),
    (["kerastuner", "--tuner", "grid"], "the grid tuner needs a step on 'units'"),
    (["kerastuner", "--data", "absent.npz"], "absent.npz: no such data file"),
    # Stores that cannot be opened, found once valid data is loaded (REAL is the real file).
    (["optuna", "--data", "REAL", "--storage", "sqlite:////proc/nope/optuna.db", "--workers", "1"],
     "cannot create /proc/nope"),
    (["optuna", "--data", "REAL", "--storage", "/proc/nope/optuna.journal"], "cannot create /proc/nope"),
    (["optuna", "--workers", "0"], "--workers: must be a whole number greater than 0"),
    (["optuna", "--data", "REAL", "--storage", "sqlite:///o.db"], "SQLite locks under several writing processes"),
    (["optuna", "--data", "REAL", "--storage", "postgresql://nobody@127.0.0.1:9/x"], "cannot open"),
    (["optuna", "--data", "REAL", "--tracking-uri", "sqlite:////proc/nope/mlflow.db"], "cannot create /proc/nope"),
    (["optuna", "--data", "REAL", "--tracking-uri", "http://127.0.0.1:9"], "no MLflow server answers"),
    (["optuna", "--data", "REAL", "--tracking-uri", "file:///tmp/runs"], "filesystem tracking backend"),
    (["kerastuner", "--data", "REAL", "--storage", "/proc/nope"], "cannot create /proc/nope"),
])
def test_bad_input_is_one_line_and_exit_code_2(workdir, capsys, argv, expected, request):
    if "REAL" in argv:
        argv = [str(request.getfixturevalue("real_data")) if a == "REAL" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_input_creates_no_store(workdir):
    main(["optuna", "--trials", "2", "--data", "absent.npz"])
    assert not (workdir / "mlruns").exists()


def test_python_dash_m_runs_the_cli():
    # `python -m mnist_sweep` itself, in a real process: the entry point users type.
    done = subprocess.run([sys.executable, "-m", "mnist_sweep", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "optuna" in done.stdout and "final" in done.stdout


def test_help_names_the_one_precedence_and_the_environment_variables(capsys):
    for argv in (["--help"], ["optuna", "--help"], ["kerastuner", "--help"], ["baselines", "--help"]):
        assert main(argv) == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert "flag > environment variable > sweep file > default" in text, argv
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MNIST_SWEEP_DATA"):
            assert name in text, (argv, name)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "flag > environment variable > sweep file > default" in readme
    assert all(f"`{name}`" in readme for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MNIST_SWEEP_DATA"))


@pytest.mark.parametrize("flag, key", [("--sampler", "sampler"), ("--pruner", "pruner")])
def test_sampler_and_pruner_help_says_what_each_built_in_sweep_sets(flag, key):
    optuna = build_parser()._subparsers._group_actions[0].choices["optuna"]
    (action,) = [a for a in optuna._actions if flag in a.option_strings]
    said = {}  # "<sweeps> use(s) <value>" clauses, e.g. "mlp-optuna and cnn-optuna use halving"
    for names, value in re.findall(r"((?:[\w-]+(?:, | and )?)+) uses? (\w+)", action.help):
        said.update({name: value for name in re.split(r", | and ", names)})
    files = {p.stem: read_yaml(p) for p in sorted((ROOT / "sweeps").glob("*.yaml"))}
    setting = {name: doc[key] for name, doc in files.items() if key in doc}
    assert setting and said == setting


def test_caps_given_as_flags_hold_for_the_sweep_files_enqueued_configuration(workdir, capsys):
    # cnn-optuna.yaml enqueues a 20-epoch configuration: --max-epochs 1 caps it, as it caps the space.
    assert main(["optuna", "--space", "cnn", "--max-epochs", "1", "--data", "absent.npz"]) == 2
    assert "absent.npz: no such data file" in capsys.readouterr().err  # every check before the data passed


def test_the_cli_module_loads_without_numpy_so_help_stays_quick():
    # The data check before TensorFlow imports formats (and numpy) only when there is a path to check.
    code = "import sys, mnist_sweep.cli; print(sorted({'numpy', 'tensorflow', 'optuna', 'mlflow'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_workers_command_began_when_the_sweep_that_started_it_did(monkeypatch):
    # So the search's --timeout and share of `minutes` end at one time in every process (deadlines.py).
    import time

    from mnist_sweep import cli
    from mnist_sweep.runtime.workers import STARTED_ENV

    began = cli._started(True, None)  # the sweep's own process: its creation, handed on to its workers
    assert began <= time.time() and os.environ[STARTED_ENV] == repr(began)
    monkeypatch.setenv(STARTED_ENV, "1000.5")
    assert cli._started(True, 0) == cli._started(False, 1) == 1000.5
    caller = cli._started(False, None)  # a caller's own command begins now, and so do its workers
    assert caller > 1000.5 and os.environ[STARTED_ENV] == repr(caller)
