"""Engines are declared once (engines/specs.py): the CLI, the checks and the settings ask the spec,
so an engine is named in one way, and a new one is offered without editing modules outside engines/."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_sweep import engines
from mnist_sweep.cli import main
from mnist_sweep.config import Settings
from mnist_sweep.engines import specs
from mnist_sweep.errors import UserError

PACKAGE = Path(__file__).parents[1] / "mnist_sweep"
ENGINE_NAMES = {"optuna", "kerastuner", "keras-tuner"}


def test_each_engine_has_one_name():
    # The Keras Tuner engine called itself "keras-tuner" where its command, setting and sweep files say
    # "kerastuner"; only its runs' MLflow tag keeps the old value, which existing runs hold.
    for name in ("optuna", "kerastuner"):
        assert engines.get(name).name == name


def _branches_on_a_name(tree: ast.AST) -> list[int]:
    """Lines comparing with, testing membership in, or dispatching on an engine's name."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            parts = [k for k in node.keys if k is not None]
        else:
            continue
        for part in parts:
            values = part.elts if isinstance(part, (ast.Tuple, ast.List, ast.Set)) else [part]
            if any(isinstance(v, ast.Constant) and v.value in ENGINE_NAMES for v in values):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_engines_branches_on_an_engine_name():
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "engines" not in path.relative_to(PACKAGE).parts:
            lines = _branches_on_a_name(ast.parse(path.read_text()))
            if lines:
                found[str(path.relative_to(PACKAGE))] = lines
    assert found == {}


class FakeSpec(specs.EngineSpec):
    """A third engine, declared and registered only: never loaded, as its checks refuse the sweep."""

    name = "fake"
    engine = "nowhere:FakeEngine"
    run_tag = "fake"
    default_workers = 3
    default_storage = "fake-studies"
    help = "a sweep with the fake engine"
    sweep_help = "sweeps/<space>-fake.yaml"
    study_help = "fake study"
    storage_help = "fake storage"
    found_storage_help = "a fake study's storage"
    workers_help = "fake workers"

    def add_arguments(self, parser):
        parser.add_argument("--fake-oracle")

    def tags(self, settings):
        return {"sampler": "fake", "pruner": "none"}

    def recorded(self, settings):
        return {}

    def check_sweep(self, settings, space):
        raise UserError(f"the fake engine refuses {settings.study} with {settings.worker_processes} workers")

    def holds_study(self, settings):
        return False


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(specs._SPECS, "fake", FakeSpec())


def test_a_registered_engine_is_offered_by_the_cli_and_its_checks(fake, capsys):
    assert main(["fake", "--help"]) == 0
    assert "--fake-oracle" in capsys.readouterr().out
    assert main(["fake", "--trials", "2"]) == 2  # its own refusal, before TensorFlow loads
    assert "the fake engine refuses mlp-fake with 3 workers" in capsys.readouterr().err


def test_a_registered_engine_gives_its_defaults_to_the_settings(fake):
    settings = Settings(engine="fake", space="cnn")
    assert (settings.study, settings.worker_processes) == ("cnn-fake", 3)
    assert specs.lookup_order()[-1].name == "optuna"  # the shared journal is looked in last, as before


def test_the_engines_declarations_load_no_heavy_library():
    code = ("import sys; from mnist_sweep.engines import specs; from mnist_sweep.config import Settings; "
            "[(s.name, Settings(engine=s.name).study) for s in specs.specs()]; "
            "print(sorted({'tensorflow', 'keras', 'optuna', 'keras_tuner', 'mlflow', 'numpy'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
