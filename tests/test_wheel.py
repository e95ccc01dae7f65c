"""A wheel built from the checkout works anywhere: installed into a fresh environment, run from an
empty folder, it finds its built-in spaces, sweeps and presets."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # Without PYTHONPATH: a checkout named there would be found before the installed wheel.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, (command, done.stdout[-1000:], done.stderr[-2000:])
    return done


def test_an_installed_wheel_finds_its_spaces_and_sweeps_from_an_empty_folder(real_data, tmp_path):
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
        str(ROOT))
    (wheel,) = (tmp_path / "dist").glob("mnist_sweep-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    run(python, "-m", "pip", "install", "--no-deps", "-q", str(wheel))
    # The dependencies come from this environment's site-packages, added as a plain path: its .pth
    # files (among them the checkout's editable install) are not read, so only the wheel is mnist_sweep.
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(python, "-c", "import mnist_sweep; print(mnist_sweep.__file__)", cwd=empty).stdout
    assert where.startswith(str(site))
    # One version: the wheel's metadata, the package and both entry points say the same.
    version = run(python, "-c", "import importlib.metadata as m, mnist_sweep; "
                  "print(m.version('mnist-sweep'), mnist_sweep.__version__)", cwd=empty).stdout.split()
    assert version[0] == version[1]
    assert run(python, "-m", "mnist_sweep", "--version", cwd=empty).stdout == f"mnist-sweep {version[0]}\n"
    assert run(str(venv / "bin" / "mnist-sweep"), "--version", cwd=empty).stdout == f"mnist-sweep {version[0]}\n"
    listed = run(python, "-m", "mnist_sweep", "baselines", "--list", cwd=empty).stdout
    assert "nb001-cnn-annealed-augmented" in listed and "nb004-mlp-300-300" in listed
    swept = run(python, "-m", "mnist_sweep", "optuna", "--sweep", "mlp-quick", "--trials", "1", "--max-epochs", "1",
                "--data", str(real_data), "--workers", "1", cwd=empty)
    assert "test_accuracy" in swept.stdout and (empty / "models" / "mlp-quick" / "model.keras").is_file()
