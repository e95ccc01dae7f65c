"""The Keras Tuner engine's declaration (engines/specs.py): its flags, defaults and checks, light to import."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_sweep.engines.specs import EngineSpec
from mnist_sweep.errors import UserError
from mnist_sweep.files import check_writable_folder, usable
from mnist_sweep.space import check_grid

if TYPE_CHECKING:
    from mnist_sweep.config import Settings
    from mnist_sweep.space import SearchSpace


class KerasTunerSpec(EngineSpec):
    name = "kerastuner"
    engine = "mnist_sweep.engines.kerastuner:KerasTunerEngine"
    run_tag = "keras-tuner"  # as its runs have been tagged since 0.1.0: MLflow searches filter on it
    default_workers = 1      # as before its workers existed: its Hyperband makes them wait for each round's last
    default_storage = "keras-tuner"  # a folder of projects, one per study; existing studies live there
    help = "the same sweep with Keras Tuner, recorded and finished the same way"
    description = ("Warm start: the random, bayesian and hyperband tuners try the notebooks' presets that fit "
                   "the space first (under hyperband at the epochs its bracket gives); grid walks its grid and "
                   "has none. Only completed trials count towards --trials.")
    sweep_help = "sweeps/<space>-<tuner>.yaml"
    study_help = "Keras Tuner project (default: <space>-kt-<tuner>); the same name resumes it"
    storage_help = "folder of Keras Tuner projects (default: mlruns/keras-tuner)"
    found_storage_help = "for a Keras Tuner study its projects folder (default: mlruns/keras-tuner)"
    workers_help = ("trials at once in Keras Tuner's distributed mode: this process is the chief holding the "
                    "oracle (gRPC on 127.0.0.1), N worker processes with cores/N threads run its trials "
                    "(default: 1). Hyperband promotes a round's best only when the whole round has ended, so its "
                    "workers wait for the round's slowest trial; bayesian fits its model on the chief between "
                    "trials; a killed worker's trial runs again in its replacement")

    def project_root(self, settings: Settings) -> Path:
        """Where its projects are, one folder per study."""
        return Path(self.storage(settings))

    def study_suffix(self, settings: Settings) -> str:
        return f"kt-{settings.tuner}"

    def sweep_suffix(self, args: argparse.Namespace) -> str:
        return args.tuner or "hyperband"  # the tuner's own sweep file: sweeps/mlp-hyperband.yaml

    def tags(self, settings: Settings) -> dict[str, str]:
        return {"sampler": settings.tuner, "pruner": "hyperband" if settings.tuner == "hyperband" else "none"}

    def check_sweep(self, settings: Settings, space: SearchSpace) -> None:
        if settings.tuner == "grid":
            check_grid(space)
        project = usable(self.project_root(settings), "--storage") / settings.study / "study.json"
        if project.is_file():  # resumed: a damaged record would raise after TensorFlow
            _project_record(project)
        if settings.enqueue:
            raise UserError("'enqueue' is for the optuna engine (Optuna's enqueue_trial); Keras Tuner's oracles "
                            "take no configuration to try first: remove it from the sweep file")

    def check_storage(self, path: Path, sweep: bool) -> None:
        if sweep:
            check_writable_folder(path, "--storage")

    def holds_study(self, settings: Settings) -> bool:
        project = self.project_root(settings) / settings.study / "study.json"
        if project.is_file():
            _project_record(project)
        return project.is_file()


def _project_record(path: Path) -> None:
    """A Keras Tuner project's study.json is a JSON object; any other file raised after TensorFlow."""
    try:
        record = json.loads(path.read_bytes())
    except ValueError:  # not UTF-8, or not JSON
        record = None
    if not isinstance(record, dict):
        raise UserError(f"{path}: not a study of mnist_sweep; use another --study-name or --storage")
