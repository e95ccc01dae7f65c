"""The search engines behind one interface: Optuna and Keras Tuner.

Each engine is a small object with the same entry points (what it cannot run is refused
before either is imported, in checks.py). `search(job)` runs (or resumes) a
sweep to its end, whatever that takes (locks, worker processes, dead-trial recovery, the stop
rule), and returns the study for the steps after it; `open(settings)` finds a study for those
steps alone (final, export, report). Nothing here imports Optuna or Keras Tuner: `get` loads
the engine a command asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mnist_sweep.config import Settings
    from mnist_sweep.data import SearchData
    from mnist_sweep.space import SearchSpace
    from mnist_sweep.studies import Study
    from mnist_sweep.tracking import Tracker


@dataclass(frozen=True)
class SweepJob:
    """Everything a search needs; never the test set."""

    settings: Settings
    space: SearchSpace
    data: SearchData
    tracker: Tracker
    tags: dict[str, str]      # on the parent run and every trial run, the same keys for both engines
    argv: list[str]           # the command as given: worker processes run it again with --worker I
    worker: int | None = None  # set in a worker process, which runs trials only

    @property
    def digest(self) -> str:
        return self.tags["data_digest"]


class Engine(Protocol):
    name: str  # the runs' `engine` tag

    def search(self, job: SweepJob) -> Study | None:
        """Run or resume the sweep until it has its trials; None in a worker process."""

    def exists(self, settings: Settings) -> bool:
        """Whether this engine holds a study by the settings' name."""

    def open(self, settings: Settings) -> Study:
        """An existing study, for the steps after the search; a UserError when there is none."""


def get(name: str) -> Engine:
    """The engine of a command: 'optuna' or 'kerastuner'."""
    if name == "kerastuner":
        from mnist_sweep.engines.kerastuner import KerasTunerEngine

        return KerasTunerEngine()
    from mnist_sweep.engines.optuna import OptunaEngine

    return OptunaEngine()


def find(settings: Settings) -> Study:
    """A study of either engine by name, for final, export and report: Keras Tuner's if it has one."""
    keras_tuner = get("kerastuner")
    return (keras_tuner if keras_tuner.exists(settings) else get("optuna")).open(settings)
