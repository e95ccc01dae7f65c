"""Sweep settings from sweeps/*.yaml, overridden by command-line flags: strict keys, checked types.

`Settings` is the one table of settings: each field declares its type, default, bounds, help,
flag, environment variable, owner and record (declare.py), and the CLI, these checks and a
study's record read it from there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from mnist_sweep.declare import CHECKED, NOTED, NOTED_IF_SET, SWEEPS, declarations, positive_int, setting
from mnist_sweep.errors import UserError
from mnist_sweep.files import find_file, read_yaml
from mnist_sweep.runtime.precision import CHOICES as PRECISIONS, Precision
from mnist_sweep.seeds import MAX_SEED

SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("median", "hyperband", "halving", "none")
TUNERS = ("hyperband", "bayesian", "random", "grid")  # Keras Tuner's oracles
# A user who exports MLflow's own variables (or the data's) means them for every command, so they
# beat the sweep file, which serves many users; a flag is the most deliberate and beats them all.
PRECEDENCE = "flag > environment variable > sweep file > default"
STUDY_COMMANDS = ("final", "export", "report")  # the commands that take a finished study
MAX_EXPERIMENT = 500  # MLflow refuses a longer experiment name, after TensorFlow has loaded
RUNS_DIR = Path("mlruns")  # like MLflow's own default, relative to where the command runs
# A study's name is a folder name (models/, reports/, Keras Tuner's project), part of a registered
# model's name and a quoted value in MLflow's filter strings: letters, digits, '.', '_', '-' only.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")


class EngineDefaults(Protocol):
    """What a setting asks of the sweep's engine; the engine's declaration (engines/specs.py) answers."""

    default_workers: int

    def study_suffix(self, settings: Settings) -> str: ...


# Each engine's declaration, by name: engines/specs.py's table, filled by its `register` as the
# engines package is imported (the CLI imports it first); settings sit below the engines and import
# none of them.
ENGINES: dict[str, EngineDefaults] = {}


def _engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def _engine(name: str) -> EngineDefaults:
    if name not in ENGINES:  # a library caller that skipped the CLI
        raise UserError(f"engine '{name}' is not registered: import mnist_sweep.engines first "
                        f"(registered: {', '.join(ENGINES) or 'none'})")
    return ENGINES[name]


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs besides the search space itself: each field declares one setting
    (declare.py), in the order their flags appear in a sweep command's --help."""

    space: str = setting("mlp", "search space: a name in search_spaces/ or a path (default: mlp)", "space.py")
    trials: int = setting(50, "finished trials the study should hold (default: 50)", "engines/", positive=True)
    experiment: str = setting(
        "mnist-sweep", "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else the sweep file's, else "
        "mnist-sweep)", "tracking.py", flags_in=(SWEEPS, "baselines"), env="MLFLOW_EXPERIMENT_NAME",
        longest=MAX_EXPERIMENT, why="MLflow's limit", recorded=NOTED)
    seed: int = setting(
        0, "seeds the sampler, the validation split and the weights", "seeds.py", flags_in=(SWEEPS, "baselines"),
        least=0, most=MAX_SEED, why="numpy takes seeds below 2**32, and trials add their number to it",
        recorded=CHECKED)
    max_epochs: int | None = setting(None, "cap the epochs (quick runs)", "space.py",
                                     flags_in=(SWEEPS, "baselines"), positive=True)
    train_limit: int | None = setting(
        None, "train on the first N images only (quick runs)", "data.py", flags_in=(SWEEPS, "baselines", "final"),
        helps={"final": "retrain on the first N images only"}, positive=True, recorded=CHECKED)
    validation_size: int = setting(10000, "images held out for validation (default: 10000)", "data.py",
                                   flags_in=(SWEEPS, "baselines"), positive=True, recorded=CHECKED)
    trial_images: int | None = setting(  # trials train on fewer images; the final retrain on all
        None, "trials train on the first N training images; the final retrain uses all", "trials.py",
        positive=True, recorded=CHECKED)
    trial_epochs: int | None = setting(  # trials train at most this many epochs; the final retrain its own
        None, "trials train at most N epochs, their schedules fitted to N; the final retrain trains the "
        "configuration's own epochs, or under a budget as many as fit, up to 30", "trials.py", positive=True,
        recorded=CHECKED)
    # Whole seconds on the command line, as ever; a sweep file may give a fraction.
    timeout: float | None = setting(None, "stop starting trials this many seconds after the command began",
                                    "deadlines.py", positive=True, flag_type=positive_int)
    export_dir: str | None = setting(
        None, "where the final model goes (default: models/<study>/)", "export.py",
        flags_in=(SWEEPS, "final", "export"), helps=dict.fromkeys(("final", "export"), "default: models/<study>/"))
    warm_start: bool = setting(  # enqueue the notebooks' presets that fit the space first
        True, "do not start a new study with the notebooks' presets that fit its space", "presets.py")
    max_mflops: float | None = setting(  # sampled models' cost limit per image
        None, "the most MFLOPs per image a sampled model may need: Optuna draws widths within it, and a model "
        "over it (Keras Tuner's, or a space whose widths come first) is refused untrained and uncounted",
        "costs.py", positive=True)
    final_minutes: float | None = setting(
        None, "the final step's budget: its models are chosen and their epochs cut (never below those their "
        "trials were judged on) or filled to fit this many minutes, estimated from the trials' own times "
        "(default: the sweep file's; none: the best, whole)", "budget.py", flags_in=(SWEEPS, "final"),
        helps={"final": "fit the final step's models to this many minutes (default: as the sweep had it)"},
        positive=True, recorded=NOTED)
    minutes: float | None = setting(  # counted from the command's start; a recycled process keeps it
        None, "the whole command's wall time: the final step's models are fitted to what the search leaves of "
        "it (with --final-minutes too, to the less of the two); it does not stop the search (--timeout and "
        "--search-share do)",
        "budget.py", flags_in=(SWEEPS, "final"),
        helps={"final": "fit the final step's models to this many minutes less this command's time so far "
               "(default: as the sweep had it)"}, positive=True, recorded=NOTED)
    search_share: float | None = setting(  # what the final step gets does not hang on the machine's speed
        None, "the share of `minutes` in which the search starts trials, counted from the command's start "
        "(default: the sweep file's; none: all of it): sampled trials running then stop at their epoch's "
        "end, pruned, and the final step gets the rest", "budget.py", positive=True, most=1,
        why="a share of the command's minutes")
    # The final step builds its list of members, each a whole retrain, before it trains the first.
    final_models: int = setting(
        1, "retrain the K best distinct configurations (the best again where fewer completed), side by side, "
        "one process per core, and average them into one model, an ensemble; under a budget, only as many "
        "as fit (default: the sweep file's; 1)", "budget.py", flags_in=(SWEEPS, "final"),
        helps={"final": "average the K best distinct configurations' retrains (default: as the sweep had it)"},
        positive=True, most=100, why="each one a whole retrain on all training images", recorded=NOTED_IF_SET)
    recycle_mb: float = setting(
        150.0, "after a trial, if memory grew by more than this since the first (default: 150), go on in a fresh "
        "process, same PID: Keras keeps ~7 MB of every model it built", "runtime/memory.py", positive=True)
    precision: str = setting(  # Keras's mixed precision where the CPU has it in hardware
        Precision.AUTO.value, "the number format models train in: bfloat16 (Keras's mixed precision: the weights "
        "and the output layer stay float32), float32, or auto: bfloat16 on a CPU with AMX and no GPU, else float32 "
        "(default: auto); the exported model computes in float32", "runtime/precision.py",
        flags_in=(SWEEPS, "final", "baselines"), choices=PRECISIONS)
    study_name: str | None = setting(None, None, "engines/", flags_in=(SWEEPS, *STUDY_COMMANDS),
                                     engine_help="study_help")
    storage: str | None = setting(None, None, "engines/", flags_in=(SWEEPS, *STUDY_COMMANDS),
                                  engine_help="storage_help")
    data: str | None = setting(
        None, "MNIST as a Keras .npz, a folder of LeCun's IDX files (.gz or not) or Kaggle's train.csv (default: "
        "$MNIST_SWEEP_DATA, else the sweep file's, else Keras's download)", "data.py",
        flags_in=(SWEEPS, *STUDY_COMMANDS, "baselines"), env="MNIST_SWEEP_DATA")
    tracking_uri: str | None = setting(
        None, "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the sweep file's, else "
        "sqlite:///mlruns/mlflow.db)", "tracking.py", flags_in=(SWEEPS, *STUDY_COMMANDS, "baselines", "predict", "ui"),
        env="MLFLOW_TRACKING_URI")
    # What the built-in sweeps set, as "<sweeps> use <value>" clauses (tests/test_cli.py reads them back).
    sampler: str = setting(
        "random", "default: the sweep file's, else random; mlp-optuna, cnn-optuna and mlp-quick use random "
        "(ahead of TPE after 50 MLP trials in benchmarks/samplers.py)", "engines/optuna_samplers.py", engine="optuna",
        choices=SAMPLERS, recorded=NOTED)  # noted only: they may change
    pruner: str = setting(
        "halving", "default: the sweep file's, else halving; mlp-optuna and cnn-optuna use halving (after epochs "
        "1, 3, 9 and 27 only the best third of the trials go on); mlp-quick uses none", "engines/optuna_samplers.py",
        engine="optuna", choices=PRUNERS, recorded=NOTED)
    tuner: str = setting(  # checked on resume: another oracle would not resume this one
        "hyperband", "Keras Tuner's search (default: hyperband); grid needs a space of choices and stepped ranges",
        "engines/kerastuner_space.py", engine="kerastuner", choices=TUNERS, recorded=CHECKED)
    # Each worker is a whole TensorFlow process; past 4 a core they only wait for one.
    workers: int | None = setting(
        None, None, "runtime/workers.py", engine_help="workers_help", positive=True,
        most=lambda: 4 * (os.cpu_count() or 1), why="4 per core, each one a TensorFlow process")
    engine: str = setting("optuna", None, "engines/specs.py", flags_in=(), choices=_engine_names)
    # Configurations a new Optuna study tries right after the presets (Optuna's enqueue_trial),
    # never pruned, as the presets: {name: full parameters}, from a sweep file only.
    enqueue: dict[str, dict[str, Any]] | None = setting(None, None, "engines/optuna.py", flags_in=())
    # The enqueued configuration every final team holds, whatever its short trial scored: trials cut
    # at trial_epochs cannot judge what pays over a long retrain, which a benchmark measured for it.
    final_include: str | None = setting(None, None, "budget.py", flags_in=(), recorded=NOTED)
    # How many of each final team's members are that configuration, each with its own seed (at most all
    # but one: the best searched configuration leads every team). Two seeds of the batch-normalised
    # notebook-003 network averaged 99.60% on validation, one 99.53% (benchmarks/techniques.py).
    final_include_models: int = setting(1, None, "budget.py", flags_in=(), least=1, most=100,
                                        why="each one a whole retrain on all training images", recorded=NOTED_IF_SET)

    @property
    def study(self) -> str:
        if self.study_name:
            return self.study_name
        return f"{Path(self.space).stem}-{_engine(self.engine).study_suffix(self)}"

    @property
    def worker_processes(self) -> int:
        """Trials at once before any GPU is counted (the checks run before TensorFlow loads)."""
        return self.workers_on(gpus=0)

    def workers_on(self, gpus: int) -> int:
        """Trials at once, each in its own process with cores/workers TensorFlow threads: --workers,
        else one per GPU this process sees, else the engine's default (its measured reason in its spec)."""
        if self.workers is not None:
            return self.workers
        return gpus or _engine(self.engine).default_workers

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


SETTINGS = declarations(Settings)
DECLARED = {s.name: s for s in SETTINGS}
ENVIRONMENT = {s.name: s.env for s in SETTINGS if s.env}


def from_environment() -> dict[str, Any]:
    """The settings ENVIRONMENT's variables give: a variable set but empty gives nothing."""
    return {key: DECLARED[key].from_text(os.environ[name]) for key, name in ENVIRONMENT.items()
            if os.environ.get(name)}


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
    for key, value in values.items():
        if key not in DECLARED:
            raise UserError(f"{source}: unknown setting '{key}'; allowed: {', '.join(sorted(DECLARED))}")
        if value is not None:
            DECLARED[key].check(value, source)
