"""The Keras Tuner engine: the project's spaces and trials, searched by Keras Tuner's oracles.

Each trial runs through the same TrialRunner as an Optuna trial, so MLflow holds the same
record. With `--workers N` the search runs in Keras Tuner's own distributed mode: this process
is the chief (kerastuner_chief.py) and N worker processes run the trials it hands out. Beside
this module: the project's record (kerastuner_project.py), the tuner that runs each trial
(kerastuner_tuner.py), the runs of dead processes' trials failed (kerastuner_recovery.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mnist_sweep.config import Settings
from mnist_sweep.engines import SweepJob
from mnist_sweep.engines.kerastuner_chief import serve_workers
from mnist_sweep.engines.kerastuner_project import Project, open_project
from mnist_sweep.engines.kerastuner_recovery import fail_runs_of_trials_run_again
from mnist_sweep.engines.kerastuner_space import Chosen, check_stopped, make_oracle
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.engines.kerastuner_tuner import SweepTuner, comparable
from mnist_sweep.presets import Preset, announce_warm_start, load_presets
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.runtime.workers import threads_per_worker, use_threads, worker_plan
from mnist_sweep.trials import TrialRunner

SPEC = KerasTunerSpec()  # its declaration: its name and where its projects are


class KerasTunerEngine:
    name = SPEC.name

    def exists(self, settings: Settings) -> bool:
        return (SPEC.project_root(settings) / settings.study / "study.json").is_file()

    def open(self, settings: Settings) -> Project:
        return Project(SPEC.project_root(settings), settings.study)

    def search(self, job: SweepJob) -> Project | None:
        """Run (or resume) the Keras Tuner search until `settings.trials` trials have completed."""
        settings = job.settings
        if job.worker is not None:
            use_threads(threads_per_worker(settings.worker_processes))
            _run_worker(job)
            return None
        project, runner, presets = _prepare(job)
        count, gpus = worker_plan(settings.workers, settings.worker_processes)
        progress = Progress(settings.trials, project.finished(), project.best_value(),
                            shown=[o.number for o in project.outcomes()])  # with workers it follows them
        with job.tracker.ended_on_error(runner.parent_id), progress:
            run_search(settings, project, runner, progress, presets, job.argv, count, gpus)
        return project


def run_search(settings: Settings, project: Project, runner: TrialRunner, progress: Progress,
               presets: list[Preset], argv: list[str] | None = None, workers: int = 1,
               gpus: Callable[[int], dict[str, str]] | None = None) -> None:
    """Keras Tuner's search over `project`, in this process or (with workers) as their chief."""
    fresh = not (project.folder / "tuner0.json").is_file()  # what BaseTuner reloads the oracle by
    tuner = SweepTuner(make_oracle(settings, runner.space), project, runner, progress, presets, settings)
    _queue_presets(tuner, presets if fresh else None, settings)
    tuner.save()  # tuner0.json at once: a kill in the first trial resumes this oracle, not a new one
    fail_runs_of_trials_run_again(tuner.oracle, runner.tracker, runner.parent_id)
    if workers == 1:
        tuner.search_until_done()
    else:
        serve_workers(tuner, argv or [], workers, gpus)
    check_stopped(tuner.oracle)


def _prepare(job: SweepJob) -> tuple[Project, TrialRunner, list[Preset]]:
    """The project, its parent run and the presets the search can try first."""
    settings = job.settings
    project = open_project(settings, job.space, job.digest)
    parent = job.tracker.parent_run(settings.study, job.tags)
    job.tracker.log_datasets(parent, job.data.slices)  # before workers log them at once (MLflow would race)
    project.save(replace(project.record(), parent_run_id=parent))
    runner = TrialRunner(job.space, job.data, job.tracker, parent, job.tags, settings.seed, settings.max_mflops,
                         settings.trial_epochs)
    presets = _warm_start(runner, settings)
    if settings.tuner != "grid" and not project.outcomes():
        announce_warm_start([p.name for p in presets])
    return project, runner, presets


def _queue_presets(tuner: SweepTuner, presets: list[Preset] | None, settings: Settings) -> None:
    """A new search's presets first (None: resuming, the oracle kept its queue); and the cost limit."""
    oracle, hyperband = tuner.oracle, settings.tuner == "hyperband"
    if not hasattr(oracle, "queue"):  # the grid oracle walks its grid
        return
    if presets is not None:
        oracle.queue = [comparable(p.params, hyperband) for p in presets]
    runner = tuner.runner  # refused models (unbuildable, or over max_mflops) are skipped, not tried
    oracle.accept = lambda values: runner.affordable(runner.space.sample(Chosen({"epochs": 1, **values})))


def _run_worker(job: SweepJob) -> None:
    """A worker of a distributed search: trials only, from the chief's oracle, with its share of the cores."""
    settings = job.settings
    project = open_project(settings, job.space, job.digest)
    runner = TrialRunner(job.space, job.data, job.tracker, project.record().parent_run_id or "", job.tags,
                         settings.seed, settings.max_mflops, settings.trial_epochs)
    presets = _warm_start(runner, settings)
    with Progress(settings.trials, 0, bar=False, lines=False) as progress:  # the chief's process shows them
        SweepTuner(make_oracle(settings, job.space), project, runner, progress, presets, settings).search_until_done()


def _warm_start(runner: TrialRunner, settings: Settings) -> list[Preset]:
    """The presets a new search tries first, under the sweep's caps as every trial is: at most
    --max-epochs each, and no more of them than --trials."""
    if not settings.warm_start:
        return []
    capped = [p.capped(settings.max_epochs) for p in load_presets()]
    return fitting_presets(capped, runner, settings.tuner == "hyperband")[:settings.trials]


def fitting_presets(presets: list[Preset], runner: TrialRunner, hyperband: bool) -> list[Preset]:
    """The presets this search can try; under Hyperband the oracle sets the epochs."""
    tried = [replace(p, params={**p.params, "epochs": runner.space.max_epochs()}) if hyperband else p
             for p in presets]
    return [p for p, t in zip(presets, tried) if t.fits(runner.space) and runner.affordable(t.params, sampled=False)]
