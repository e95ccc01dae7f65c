"""Sweep settings from sweeps/*.yaml, overridden by command-line flags: strict keys, checked types."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnist_sweep.errors import UserError
from mnist_sweep.seeds import MAX_SEED
from mnist_sweep.files import find_file, read_yaml, shown

if TYPE_CHECKING:
    from mnist_sweep.engines.specs import EngineSpec

SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("median", "hyperband", "halving", "none")
TUNERS = ("hyperband", "bayesian", "random", "grid")  # Keras Tuner's oracles
# A user who exports MLflow's own variables (or the data's) means them for every command, so they
# beat the sweep file, which serves many users; a flag is the most deliberate and beats them all.
PRECEDENCE = "flag > environment variable > sweep file > default"
ENVIRONMENT = {"tracking_uri": "MLFLOW_TRACKING_URI", "experiment": "MLFLOW_EXPERIMENT_NAME",
               "data": "MNIST_SWEEP_DATA"}
RUNS_DIR = Path("mlruns")  # like MLflow's own default, relative to where the command runs
# A study's name is a folder name (models/, reports/, Keras Tuner's project), part of a registered
# model's name and a quoted value in MLflow's filter strings: letters, digits, '.', '_', '-' only.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs besides the search space itself."""

    engine: str = "optuna"
    space: str = "mlp"
    trials: int = 50
    seed: int = 0
    sampler: str = "random"
    pruner: str = "halving"
    tuner: str = "hyperband"         # the kerastuner engine's search; Optuna's are sampler + pruner
    validation_size: int = 10000
    study_name: str | None = None
    storage: str | None = None
    experiment: str = "mnist-sweep"
    tracking_uri: str | None = None
    timeout: float | None = None
    max_epochs: int | None = None
    train_limit: int | None = None
    trial_images: int | None = None  # trials train on fewer images; the final retrain on all
    trial_epochs: int | None = None  # trials train at most this many epochs; the final retrain its own
    export_dir: str | None = None
    data: str | None = None
    warm_start: bool = True          # enqueue the notebooks' presets that fit the space first
    max_mflops: float | None = None  # sampled models' cost limit per image (costs.py)
    recycle_mb: float = 150.0        # growth after which a sweep continues in a fresh process
    final_minutes: float | None = None  # the final step's models and epochs fitted to this (budget.py)
    final_models: int = 1            # the best distinct configurations' retrains averaged (budget.py)
    # Configurations a new Optuna study tries right after the presets (Optuna's enqueue_trial),
    # never pruned, as the presets: {name: full parameters}, from a sweep file only.
    enqueue: dict[str, dict[str, Any]] | None = None
    workers: int | None = None       # trials at once, each in its own process: see worker_processes

    @property
    def study(self) -> str:
        if self.study_name:
            return self.study_name
        return f"{Path(self.space).stem}-{self.engine_spec.study_suffix(self)}"

    @property
    def engine_spec(self) -> EngineSpec:
        """The engine's declaration: what differs between engines is asked of it, never by name."""
        from mnist_sweep.engines.specs import spec  # light; above this module, so imported when asked

        return spec(self.engine)

    @property
    def worker_processes(self) -> int:
        """Trials at once, each in its own process with cores/workers TensorFlow threads (the
        engine's default, with its measured reason, in its spec)."""
        return self.workers if self.workers is not None else self.engine_spec.default_workers

    @property
    def tracking(self) -> str:
        """--tracking-uri, else MLflow's own MLFLOW_TRACKING_URI, else the project's SQLite file."""
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{runs_dir() / 'mlflow.db'}"

    @property
    def search_limit(self) -> int | None:
        """How many training images a trial sees: the smaller of the two limits that are set."""
        limits = [n for n in (self.train_limit, self.trial_images) if n is not None]
        return min(limits) if limits else None

    def most_epochs(self, space_most: int) -> int:
        """The most epochs a trial trains: its space's longest, cut at trial_epochs."""
        return min(space_most, self.trial_epochs or space_most)

    @property
    def export_path(self) -> Path:
        return Path(self.export_dir) if self.export_dir else Path("models") / self.study


_TYPES: dict[str, tuple[type, ...]] = {
    "engine": (str,), "tuner": (str,), "space": (str,), "trials": (int,), "seed": (int,), "sampler": (str,), "pruner": (str,),
    "validation_size": (int,), "study_name": (str,), "storage": (str,), "experiment": (str,),
    "tracking_uri": (str,), "timeout": (int, float), "max_epochs": (int,), "train_limit": (int,), "trial_images": (int,),
    "trial_epochs": (int,),
    "export_dir": (str,), "data": (str,), "warm_start": (bool,), "max_mflops": (int, float),
    "recycle_mb": (int, float), "workers": (int,), "final_minutes": (int, float), "final_models": (int,),
    "enqueue": (dict,),
}
# Bounds where a huge number does not just run long but takes the machine down: each worker is
# a whole TensorFlow process (past 4 a core they only wait for one), and the final step builds
# its list of members, each a whole retrain, before it trains the first.
_MOST = {"workers": lambda: 4 * (os.cpu_count() or 1), "final_models": lambda: 100}
_WHY_MOST = {"workers": "4 per core, each one a TensorFlow process",
             "final_models": "each one a whole retrain on all training images"}
MAX_EXPERIMENT = 500  # MLflow refuses a longer experiment name, after TensorFlow has loaded
_POSITIVE = ("trials", "validation_size", "timeout", "max_epochs", "train_limit", "trial_images", "trial_epochs", "max_mflops",
             "recycle_mb", "workers", "final_minutes", "final_models")


def from_environment() -> dict[str, Any]:
    """The settings ENVIRONMENT's variables give: a variable set but empty gives nothing."""
    return {key: os.environ[name] for key, name in ENVIRONMENT.items() if os.environ.get(name)}


def runs_dir() -> Path:
    return RUNS_DIR.resolve()


def sqlite_file(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (Optuna's and MLflow's local stores), else None."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def load_settings(sweep: str | None, overrides: dict[str, Any]) -> Settings:
    """One order for every setting (PRECEDENCE): the flags the user gave (not None), else the
    environment's variables, else the sweep file (if any), else the defaults."""
    values: dict[str, Any] = {}
    if sweep:
        path = find_file(sweep, "sweeps")
        values.update(read_yaml(path))
        _check(values, str(path))
    environment = from_environment()
    _check(environment, "environment")
    flags = {k: v for k, v in overrides.items() if v is not None}
    _check(flags, "command line")
    settings = replace(Settings(), **{**values, **environment, **flags})
    check_name(settings.study, "--study-name" if settings.study_name else "the study name from --space")
    return settings


def check_name(name: str, option: str) -> None:
    if not NAME.fullmatch(name):
        raise UserError(f"{option}: '{name[:120]}' is not a usable study name: use 1 to 100 letters, digits, "
                        "'.', '_' or '-', starting with a letter, digit or '_'")


def _check(values: dict[str, Any], source: str) -> None:
    names = {f.name for f in fields(Settings)}
    for key, value in values.items():
        if key not in names:
            raise UserError(f"{source}: unknown setting '{key}'; allowed: {', '.join(sorted(names))}")
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in _TYPES[key]) or not isinstance(value, _TYPES[key]):
            want = " or ".join(t.__name__ for t in _TYPES[key])
            raise UserError(f"{source}: '{key}' must be {want}, not {value!r}")
        _check_bounds(key, value, source)
        if key in _POSITIVE and value <= 0:
            raise UserError(f"{source}: '{key}' must be greater than 0 (got {value})")
        if key == "seed" and not 0 <= value <= MAX_SEED:
            raise UserError(f"{source}: 'seed' must be a whole number from 0 to {MAX_SEED} (numpy takes seeds "
                            f"below 2**32, and trials add their number to it), not {value}")
    _check_choice(values, "sampler", SAMPLERS, source)
    _check_choice(values, "pruner", PRUNERS, source)
    _check_choice(values, "engine", _engine_names(), source)
    _check_choice(values, "tuner", TUNERS, source)


def _engine_names() -> tuple[str, ...]:
    from mnist_sweep.engines.specs import names  # light: the registered engines' declarations

    return names()


def _check_bounds(key: str, value: Any, source: str) -> None:
    """What a type allows and nothing downstream takes: NaN, inf, NUL, machine-sized counts."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite(value):
        # YAML's .nan passed every `<= 0` test; .inf or 10**400 seconds failed only in the workers' clock
        raise UserError(f"{source}: '{key}' must be a finite number, not {shown(repr(value))}; "
                        "leave it out for none")
    if isinstance(value, str) and "\0" in value:  # a C string ends there: each store would read another name
        raise UserError(f"{source}: '{key}' holds a NUL byte ({shown(value)})")
    if key in _MOST and value > _MOST[key]():
        raise UserError(f"{source}: '{key}' must be at most {_MOST[key]()}, not {shown(repr(value))}: "
                        f"{_WHY_MOST[key]}")
    if key == "experiment" and not 0 < len(value) <= MAX_EXPERIMENT:
        raise UserError(f"{source}: 'experiment' must have 1 to {MAX_EXPERIMENT} characters (MLflow's limit), "
                        f"not {len(value)}")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int no float can hold
        return False


def _check_choice(values: dict[str, Any], key: str, allowed: tuple[str, ...], source: str) -> None:
    if values.get(key) is not None and values[key] not in allowed:
        raise UserError(f"{source}: unknown {key} '{values[key]}'; use one of: {', '.join(allowed)}")
