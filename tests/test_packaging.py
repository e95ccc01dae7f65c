"""What pyproject.toml promises: one version, its metadata, and optional parts kept optional.

The floors themselves are checked by .ci/lowest, which runs the fast tests at every floor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mnist_sweep
from mnist_sweep.cli import main

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the check is the same on every version
ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_version_is_written_once_and_printed_by_the_cli(capsys):
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mnist-sweep {mnist_sweep.__version__}\n"


def test_the_metadata_names_license_and_authors():
    assert PROJECT["license"] == {"text": "MIT"}
    assert PROJECT["authors"] == [{"name": "mnist_sweep developers"}]


def test_postgres_and_the_peer_are_extras_that_ci_still_installs():
    core = " ".join(PROJECT["dependencies"])
    assert "psycopg" not in core and "optuna-integration" not in core
    extras = PROJECT["optional-dependencies"]
    assert any(d.startswith("psycopg[binary]") for d in extras["postgres"])
    assert any(d.startswith("optuna-integration") for d in extras["peer"])
    assert any("postgres" in d and "peer" in d for d in extras["dev"] if d.startswith("mnist-sweep["))


def test_every_direct_dependency_has_a_floor():
    # .ci/lowest installs the oldest release each allows: without a floor that is a release from 2010.
    for extra in (PROJECT["dependencies"], *PROJECT["optional-dependencies"].values()):
        assert all(">=" in d for d in extra if not d.startswith("mnist-sweep[")), extra


def test_a_postgresql_storage_without_its_driver_names_the_extra_before_tensorflow(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    hidden = {"psycopg"}
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    assert main(["optuna", "--storage", "postgresql://u@127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'mnist-sweep[postgres]'" in err and "--storage postgresql://" in err
    assert err.count("\n") == 1


def test_the_peer_benchmark_without_optuna_integration_says_which_extra_in_one_line(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.syspath_prepend(str(ROOT))
    import peer

    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr("importlib.util.find_spec",
                        lambda name, *a: None if name == "optuna_integration" else real(name, *a))
    monkeypatch.setattr(sys, "argv", ["peer.py", "--data", "absent.npz"])
    with pytest.raises(SystemExit) as stop:
        peer.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "pip install 'mnist-sweep[peer]'" in err and err.count("\n") == 1

