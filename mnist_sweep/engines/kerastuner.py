"""The Keras Tuner engine: the project's spaces and trials, searched by Keras Tuner's oracles.

Each trial runs through the same TrialRunner as an Optuna trial, so MLflow holds the same
record. With `--workers N` the search runs in Keras Tuner's own distributed mode: this process
is the chief (kerastuner_chief.py) and N worker processes run the trials it hands out. Beside
this module: the project's record (kerastuner_project.py), the tuner that runs each trial
(kerastuner_tuner.py), the runs of dead processes' trials failed (kerastuner_recovery.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from mnist_sweep.config import Settings
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines import SweepJob, base
from mnist_sweep.engines.base import WorkerCare
from mnist_sweep.engines.kerastuner_chief import serving_workers
from mnist_sweep.engines.kerastuner_project import Project, open_project
from mnist_sweep.engines.kerastuner_recovery import fail_runs_of_trials_run_again
from mnist_sweep.engines.kerastuner_space import Chosen, check_stopped, make_oracle
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.engines.kerastuner_tuner import SweepTuner, comparable
from mnist_sweep.presets import Preset, announce_warm_start, warm_start
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.trials import TrialRunner

SPEC = KerasTunerSpec()  # its declaration: its name and where its projects are


class KerasTunerEngine:
    name = SPEC.name

    def exists(self, settings: Settings) -> bool:
        return (SPEC.project_root(settings) / settings.study / "study.json").is_file()

    def open(self, settings: Settings) -> Project:
        return Project(SPEC.project_root(settings), settings.study)

    def search(self, job: SweepJob) -> Project | None:
        """Run (or resume) the Keras Tuner search until `settings.trials` trials have completed
        (engines/base.py)."""
        return base.search(self, job)

    def prepare(self, job: SweepJob) -> KerasTunerSweep:
        """The project, its parent run and the presets the search can try first."""
        settings = job.settings
        project = open_project(settings, job.space, job.digest)
        runner = base.trial_runner(job, base.open_parent(job, project), project)
        presets = _warm_start(job)
        if settings.tuner != "grid" and not project.outcomes():
            announce_warm_start([p.name for p in presets])
        return KerasTunerSweep(settings, project, runner, presets)

    def attach(self, job: SweepJob) -> KerasTunerSweep:
        """A worker of a distributed search: trials only, from the chief's oracle."""
        settings = job.settings
        project = open_project(settings, job.space, job.digest)
        runner = base.trial_runner(job, project.record().parent_run_id or "", project)
        return KerasTunerSweep(settings, project, runner, _warm_start(job), chief=False)


class KerasTunerSweep:
    """Keras Tuner's part of the skeleton: the tuner owns the loop and its oracle proposes and stops,
    in this process or as the chief of worker processes."""

    def __init__(self, settings: Settings, project: Project, runner: TrialRunner, presets: list[Preset],
                 chief: bool = True):
        self.settings, self.study, self.runner, self.presets, self.chief = settings, project, runner, presets, chief
        self._tuner: SweepTuner | None = None

    def tuner(self, progress: Progress | None = None) -> SweepTuner:
        """The tuner, made once: a chief's reloads its oracle (or starts one with the presets first)."""
        if self._tuner is None:
            fresh = not (self.study.folder / "tuner0.json").is_file()  # what BaseTuner reloads the oracle by
            oracle = make_oracle(self.settings, self.runner.space)
            self._tuner = SweepTuner(oracle, self.study, self.runner, progress, self.presets, self.settings)
            if self.chief:  # a worker's oracle is the chief's, over gRPC
                _queue_presets(self._tuner, self.presets if fresh else None, self.settings)
                self._tuner.save()  # tuner0.json at once: a kill in the first trial resumes this oracle, not a new one
        if progress is not None:
            self._tuner.progress = progress
        return self._tuner

    def recover(self) -> None:
        # The reloaded oracle knows the trials it will hand out again: their old runs are failed.
        fail_runs_of_trials_run_again(self.tuner().oracle, self.runner.tracker, self.runner.parent_id)

    def run_here(self, progress: Progress, ends: SearchEnds, worker: int = 0) -> None:
        tuner = self.tuner(progress)
        tuner.ends = ends
        tuner.search_until_done()
        if self.chief:
            check_stopped(tuner.oracle)

    @contextlib.contextmanager
    def serving(self, progress: Progress) -> Iterator[WorkerCare]:
        tuner = self.tuner(progress)
        with serving_workers(tuner) as care:
            yield care
        check_stopped(tuner.oracle)

    def missing(self) -> int:
        return 0  # Keras Tuner's search returns once its oracle has ended it: one round is the sweep

    def wait_for_others(self) -> None:
        pass  # nothing is left running: the chief has waited for its workers


def run_search(settings: Settings, project: Project, runner: TrialRunner, progress: Progress,
               presets: list[Preset], ends: SearchEnds = SearchEnds()) -> None:
    """Keras Tuner's whole search over `project` in this process, as the skeleton runs it."""
    sweep = KerasTunerSweep(settings, project, runner, presets)
    sweep.recover()
    sweep.run_here(progress, ends)


def _queue_presets(tuner: SweepTuner, presets: list[Preset] | None, settings: Settings) -> None:
    """A new search's presets first (None: resuming, the oracle kept its queue); and the cost limit."""
    oracle, hyperband = tuner.oracle, settings.tuner == "hyperband"
    if not hasattr(oracle, "queue"):  # the grid oracle walks its grid
        return
    if presets is not None:
        oracle.queue = [comparable(p.params, hyperband) for p in presets]
    runner = tuner.runner  # refused models (unbuildable, or over max_mflops) are skipped, not tried
    oracle.accept = lambda values: runner.affordable(runner.space.sample(Chosen({"epochs": 1, **values})))


def _warm_start(job: SweepJob) -> list[Preset]:
    """The presets a new search tries first; under Hyperband the oracle sets the epochs."""
    settings = job.settings
    epochs = job.space.max_epochs() if settings.tuner == "hyperband" else None
    return warm_start(job.presets, job.space, settings.max_epochs, settings.trials, epochs)
