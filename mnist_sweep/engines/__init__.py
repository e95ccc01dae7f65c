"""The search engines behind one interface: Optuna and Keras Tuner.

Each engine is a small object with the same entry points, declared by a light spec
(engines/specs.py: its name, flags, defaults, checks and tags), which the CLI, the checks and
the commands ask instead of naming an engine; what an engine cannot run is refused through its
spec before it is imported. `search(job)` runs (or resumes) a sweep to its end, whatever that
takes (locks, worker processes, dead-trial recovery, the stop rule: the skeleton both engines
run is base.py), and returns the study for the steps after it; `open(settings)` finds a study
for those steps alone (final, export, report). Nothing here imports Optuna or Keras Tuner:
`get` loads the engine a command asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.engines.optuna_spec import OptunaSpec
from mnist_sweep.engines.specs import lookup_order, register, spec

if TYPE_CHECKING:
    from mnist_sweep.config import Settings
    from mnist_sweep.data import SearchData
    from mnist_sweep.presets import Preset
    from mnist_sweep.space import SearchSpace
    from mnist_sweep.studies import Study
    from mnist_sweep.tracking import Tracker


@dataclass(frozen=True)
class SweepJob:
    """Everything a search needs; never the test set."""

    settings: Settings
    space: SearchSpace
    presets: tuple[Preset, ...]  # the warm start's candidates, as the checks read them
    data: SearchData
    tracker: Tracker
    tags: dict[str, str]      # on the parent run and every trial run, the same keys for both engines
    argv: list[str]           # the command as given: worker processes run it again with --worker I
    worker: int | None = None  # set in a worker process, which runs trials only
    ends: SearchEnds = SearchEnds()  # when trials stop starting, and when sampled ones stop training

    @property
    def digest(self) -> str:
        return self.tags["data_digest"]


class Engine(Protocol):
    name: str  # its spec's name

    def search(self, job: SweepJob) -> Study | None:
        """Run or resume the sweep until it has its trials; None in a worker process."""

    def exists(self, settings: Settings) -> bool:
        """Whether this engine holds a study by the settings' name."""

    def open(self, settings: Settings) -> Study:
        """An existing study, for the steps after the search; a UserError when there is none."""


def get(name: str) -> Engine:
    """The engine of a command, by its spec's name, loaded (with its library) only now."""
    return spec(name).load()


def find(settings: Settings) -> Study:
    """A study of any engine by name, for final, export and report: looked for in each engine's
    store in `lookup_order`, the last engine's `open` saying what is missing."""
    *first, last = lookup_order()
    for described in first:
        engine = described.load()
        if engine.exists(settings):
            return engine.open(settings)
    return last.load().open(settings)


# The built-in engines, in the order the CLI lists their commands.
register(OptunaSpec())
register(KerasTunerSpec())
