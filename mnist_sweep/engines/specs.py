"""What the rest of the project knows of an engine before loading it: its declaration.

An `EngineSpec` says, as data and a few small methods, everything in which the engines differ
outside their search: the name (the subcommand, the `engine` setting), its flags' help, its
default workers and storage, how its storage and its refusals are checked and its run tags. Its
own settings (flag, bounds, what a study records of them) are declared with the others in
config.Settings, marked with its name. The CLI, the checks, the settings and the commands ask
the spec; none of them names an engine. A spec imports no TensorFlow, Optuna, Keras Tuner or
MLflow (the checks run, and `--help` answers, before any of them loads); `load()` brings the
engine itself.

A third engine is a module with its `Engine`, a spec beside it and one `register` call.
"""

from __future__ import annotations

import argparse
import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mnist_sweep.config import ENGINES, Settings, runs_dir

if TYPE_CHECKING:
    from mnist_sweep.engines import Engine
    from mnist_sweep.space import SearchSpace


class EngineSpec(ABC):
    """One engine's declaration; each engine's spec sets these and overrides what differs."""

    name: str                # the subcommand, the `engine` setting and sweep files' <engine>
    engine: str              # "module:Class" of the engine, imported by `load` only
    run_tag: str             # the `engine` tag of its MLflow runs
    default_workers: int     # trials at once when --workers is not given
    default_storage: str     # its store under mlruns/ when --storage is not given
    # One store holds every study (Optuna's journal), so a study is looked for there last, and its
    # engine says what is missing; a per-study store (a Keras Tuner project) says yes or no at once.
    shared_store: bool = False
    help: str                # the subcommand's line in --help
    description: str | None = None
    sweep_help: str          # the default of --sweep, as --help says it
    study_help: str          # --study-name's help in its sweep command
    storage_help: str        # --storage's help in its sweep command
    found_storage_help: str  # its part of --storage's help in final, export and report
    workers_help: str

    def load(self) -> Engine:
        module, name = self.engine.split(":")
        return getattr(importlib.import_module(module), name)()

    def storage(self, settings: Settings) -> str:
        """Where its studies are: --storage, else its default under mlruns/."""
        return settings.storage or str(runs_dir() / self.default_storage)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Flags of its command that are no setting. Its settings (Optuna's sampler, Keras Tuner's
        tuner) are declared in config.Settings with `engine=` its name, which gives their flags."""

    def study_suffix(self, settings: Settings) -> str:
        """The default study name's part after `<space>-`."""
        return self.name

    def sweep_suffix(self, args: argparse.Namespace) -> str:
        """The default sweep file's part after `<space>-` (sweeps/<space>-<suffix>.yaml)."""
        return self.name

    @abstractmethod
    def tags(self, settings: Settings) -> dict[str, str]:
        """Its runs' `sampler` and `pruner` tags: the same keys for every engine."""

    def check_sweep(self, settings: Settings, space: SearchSpace) -> None:
        """Refuse, before TensorFlow loads, a sweep this engine cannot run."""

    def check_storage(self, path: Path, sweep: bool) -> None:
        """A local --storage path: for its own sweep (`sweep`), or for a command that takes any
        engine's store (final, export, report), where it refuses only what is surely its own."""

    @abstractmethod
    def holds_study(self, settings: Settings) -> bool:
        """Whether its store (as far as can be told without loading it) holds the study; a damaged
        record is refused."""

    def missing_study(self, settings: Settings) -> str:
        """Why a study was found in no engine's store, said by the engine looked in last."""
        return f"no study '{settings.study}' in {self.storage(settings)}; check --study-name or --storage"


# The one table of engines, config's own: the settings read it there (config imports no engine).
_SPECS = cast("dict[str, EngineSpec]", ENGINES)


def register(spec: EngineSpec) -> None:
    """Offer an engine: to the CLI as a subcommand, to the checks and to `engines.get`."""
    _SPECS[spec.name] = spec


def names() -> tuple[str, ...]:
    return tuple(_SPECS)


def specs() -> tuple[EngineSpec, ...]:
    return tuple(_SPECS.values())


def spec(name: str) -> EngineSpec:
    """The spec of an engine by name; config.py refuses an unknown name before anything asks."""
    return _SPECS[name]


def lookup_order() -> tuple[EngineSpec, ...]:
    """The engines in the order a study is looked for by name: per-study stores first."""
    return tuple(sorted(_SPECS.values(), key=lambda s: s.shared_store))
