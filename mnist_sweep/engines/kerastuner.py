"""The Keras Tuner engine: the project's spaces and trials, searched by Keras Tuner's oracles.

Each trial runs through the same TrialRunner as an Optuna trial, so MLflow holds the same
record. Keras Tuner keeps its own state (oracle.json, trial_*/trial.json) in the project
folder; the project's record sits beside it: study.json (a StudyRecord) and one outcome file
per trial, written by the process that ran it.

With `--workers N` the search runs in Keras Tuner's own distributed mode: this process is the
chief, holding the oracle and serving it over gRPC on 127.0.0.1 (Keras Tuner's own chief, in a
thread), and N worker processes, started and replaced by runtime/workers.py, run the trials it hands out,
each told where the chief is by KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT. A worker killed mid-trial is replaced under the same tuner id, and
Keras Tuner hands the replacement the same trial again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras_tuner as kt
from keras_tuner.engine.trial import Trial, TrialStatus

from mnist_sweep.config import Settings
from mnist_sweep.engines import SweepJob
from mnist_sweep.engines.kerastuner_space import Chosen, check_stopped, make_oracle
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.errors import SweepCannotGoOn, UserError
from mnist_sweep.files import make_folder
from mnist_sweep.outcomes import Outcome
from mnist_sweep.presets import Preset, announce_warm_start, load_presets
from mnist_sweep.runtime import signals
from mnist_sweep.runtime.locks import exclusive
from mnist_sweep.runtime.memory import MemoryBudget
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.runtime.workers import Workers, alive, threads_per_worker, use_threads, worker_plan
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import StudyRecord, begin_or_resume, changed
from mnist_sweep.tracking import Tracker
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.trials import TrialEnded, TrialRunner
from mnist_sweep.training import Resume

def _without_print(to_proto: Any) -> Any:
    """Keras Tuner 1.4.8's `Parent.to_proto` prints the condition's first value (a leftover debug
    print), once per conditional parameter at every gRPC call of a distributed search."""
    def quiet(self: Any) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return to_proto(self)
    return quiet


def _condition_class() -> type:
    """The class of a conditional scope's condition, reached through public objects: Keras Tuner
    exports no name for it, and its private module path moved once already (1.4 put it under src)."""
    hp = kt.HyperParameters()
    hp.Fixed("parent", 0)
    with hp.conditional_scope("parent", [0]):
        hp.Fixed("child", 0)
    return type(hp.space[-1].conditions[0])


_Condition = _condition_class()
_Condition.to_proto = _without_print(_Condition.to_proto)

SPEC = KerasTunerSpec()  # its declaration: its name and where its projects are
FAILURES_IN_A_ROW = 3  # as Keras Tuner's own default: the space or the data is broken, not the trial
WEIGHTS = "weights.weights.h5"  # a Hyperband trial's weights, continued by the trial it promotes
CHIEF = "127.0.0.1"
IDLE_SECONDS = 0.5


class Project:
    """A Keras Tuner project as the steps after the search see it (mnist_sweep.studies.Study)."""

    def __init__(self, root: Path, name: str):
        self.name = name
        self.folder = root / name
        self.file = self.folder / "study.json"
        self.outcome_folder = self.folder / "outcomes"

    def stored(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_bytes()) if self.file.is_file() else {}
        except ValueError:  # not UTF-8 or not JSON: begun anew, it would be written over
            raise UserError(f"{self.file}: not a study of mnist_sweep; use another --study-name or --storage") from None

    def record(self) -> StudyRecord:
        record = StudyRecord.from_dict(self.stored())
        if record is None:
            raise UserError(f"{self.file}: not a study of mnist_sweep; use another --study-name or --storage")
        return record

    def save(self, record: StudyRecord) -> None:
        stored = self.stored()
        _write_json(self.file, {**stored, **dict(changed(record, stored))})

    def note(self, outcome: TrialOutcome) -> None:
        """The outcome of one trial, written by the process that ran it (workers never share a file)."""
        _write_json(self.outcome_folder / f"{outcome.number:05d}.json", outcome.to_dict())

    def outcomes(self) -> list[TrialOutcome]:
        """Every ended trial: study.json's `trials` (the first versions kept them there), then the files."""
        found = {int(n): _legacy_outcome(int(n), t) for n, t in self.stored().get("trials", {}).items()}
        for path in sorted(self.outcome_folder.glob("*.json")):
            stored = json.loads(path.read_text())
            outcome = TrialOutcome.from_dict({**stored, "outcome": read_outcome(stored)})
            found[outcome.number] = outcome
        return [found[n] for n in sorted(found)]

    @property
    def trials(self) -> dict[str, dict[str, Any]]:
        """The outcomes as stored, by trial number."""
        return {str(o.number): o.to_dict() for o in self.outcomes()}

    def outcome(self, number: int) -> TrialOutcome:
        return next(o for o in self.outcomes() if o.number == number)

    def finished(self) -> int:
        return sum(o.outcome == Outcome.COMPLETED for o in self.outcomes())

    def best_value(self) -> float | None:
        values = [o.value for o in self.outcomes() if o.outcome == Outcome.COMPLETED]
        return max(values) if values else None

    def best(self) -> TrialOutcome:
        done = [o for o in self.outcomes() if o.outcome == Outcome.COMPLETED]
        if not done:
            raise UserError(f"study '{self.name}' has no completed trial yet; give it more --trials")
        return max(done, key=lambda o: (o.value, -o.number))  # the earliest of equal scores

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with exclusive(str(self.file), self.name):
            yield


def _write_json(path: Path, values: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")  # replaced whole: a kill never leaves half a file
    partial.write_text(json.dumps(values, indent=1))
    os.replace(partial, path)


def read_outcome(stored: dict[str, Any]) -> Outcome:
    """How a trial ended, as the project keeps it: an outcome file, or 0.1.0's entry in study.json's
    `trials`, both under `outcome` in the same words. Keras Tuner's own trial status cannot say it:
    every trial that did not complete raised FailedTrialError, so pruned, refused and failed trials
    are all FAILED there; the outcome file is written before Keras Tuner saves the trial's end."""
    return Outcome(stored["outcome"])


def _legacy_outcome(number: int, trial: dict[str, Any]) -> TrialOutcome:
    return TrialOutcome(number, read_outcome(trial), trial["params"], trial.get("value"), trial.get("epochs", 0),
                        trial.get("seconds", 0.0), trial.get("learning_rates") or [], trial.get("note"),
                        trial.get("preset"), worker="")


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


def open_project(settings: Settings, space: SearchSpace, digest: str | None = None) -> Project:
    """Create the project's record, or check it to resume; another space, split or data is refused."""
    make_folder(SPEC.project_root(settings), "--storage")
    project = Project(SPEC.project_root(settings), settings.study)
    begin_or_resume(project, project.stored(), space, settings, digest)
    return project


def run_search(settings: Settings, project: Project, runner: TrialRunner, progress: Progress,
               presets: list[Preset], argv: list[str] | None = None, workers: int = 1,
               gpus: Callable[[int], dict[str, str]] | None = None) -> None:
    """Keras Tuner's search over `project`, in this process or (with workers) as their chief."""
    fresh = not (project.folder / "tuner0.json").is_file()  # what BaseTuner reloads the oracle by
    tuner = SweepTuner(make_oracle(settings, runner.space), project, runner, progress, presets, settings)
    _queue_presets(tuner, presets if fresh else None, settings)
    tuner.save()  # tuner0.json at once: a kill in the first trial resumes this oracle, not a new one
    close_dead_runs(tuner.oracle, runner.tracker, runner.parent_id)
    if workers == 1:
        tuner.search_until_done()
    else:
        _serve_workers(tuner, argv or [], workers, gpus)
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
        oracle.queue = [_comparable(p.params, hyperband) for p in presets]
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


def _serve_workers(tuner: SweepTuner, argv: list[str], count: int,
                   gpus: Callable[[int], dict[str, str]] | None) -> None:
    """Serve the oracle to `count` worker processes, as Keras Tuner's chief, until they are done.

    Keras Tuner's own chief: search() with KERASTUNER_TUNER_ID=chief serves the oracle on gRPC and
    blocks until every worker has been told to stop (after a --timeout, never). So it serves from
    a daemon thread, and this one starts, waits for and replaces the workers."""
    port = _free_port()
    env = {"KERASTUNER_ORACLE_IP": CHIEF, "KERASTUNER_ORACLE_PORT": str(port)}
    with _environment({**env, "KERASTUNER_TUNER_ID": "chief"}):  # read once, as the chief starts
        chief = threading.Thread(target=tuner.search, kwargs={"verbose": 0}, name="keras-tuner-chief", daemon=True)
        chief.start()
        _wait_for_chief(chief, port)

    def recover(index: int) -> None:  # the replacement gets the dead worker's trial again
        again = tuner.oracle.ongoing_trials.get(_tuner_id(index))
        close_dead_runs(tuner.oracle, tuner.runner.tracker, tuner.runner.parent_id,
                        {int(again.trial_id)} if again else set())

    Workers(argv, count, recover, env=lambda index: {**env, "KERASTUNER_TUNER_ID": _tuner_id(index)},
            gpus=gpus, timeout=tuner.settings_timeout).run(lambda: tuner.progress.follow(tuner.project))


def _free_port() -> int:
    """A port for the chief: Keras Tuner binds the one it is given (port 0 would not tell workers)."""
    with socket.socket() as probe:
        probe.bind((CHIEF, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wait_for_chief(chief: threading.Thread, port: int, seconds: float = 60) -> None:
    """Until the chief answers on its port: a worker started before would wait for it, but a chief
    that failed to start would leave the workers waiting for an hour (Keras Tuner's client timeout)."""
    deadline = time.monotonic() + seconds
    while chief.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((CHIEF, port), timeout=1):
            return
        time.sleep(0.05)
    raise SweepCannotGoOn(f"Keras Tuner's chief did not start serving on {CHIEF}:{port}; see the error above")


def _waiting(create_trial: Any) -> Any:
    """Keras Tuner's search loop asks again at once when the oracle answers IDLE (a Hyperband
    round waits for its last trial on another worker): pause between the asks instead."""
    def create(tuner_id: str) -> Trial:
        trial = create_trial(tuner_id)
        if trial.status == TrialStatus.IDLE:
            time.sleep(IDLE_SECONDS)
        return trial
    return create


def _tuner_id(index: int) -> str:
    return f"tuner{index}"


def _is_worker() -> bool:
    """A worker of a distributed search: the variables Keras Tuner's distributed-tuning guide sets."""
    return "KERASTUNER_ORACLE_IP" in os.environ and os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief"


class _TimeUp(Exception):
    pass


class SweepTuner(kt.engine.base_tuner.BaseTuner):
    """Runs each trial Keras Tuner chooses through the shared TrialRunner."""

    def __init__(self, oracle: kt.Oracle, project: Project, runner: TrialRunner, progress: Progress,
                 presets: list[Preset], settings: Settings):
        self.project, self.runner, self.progress, self.presets = project, runner, progress, presets
        self.deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
        self.settings_timeout = settings.timeout
        self.budget = MemoryBudget(settings.recycle_mb)
        self.hyperband = isinstance(oracle, kt.oracles.HyperbandOracle)
        with contextlib.redirect_stdout(io.StringIO()):  # its "Reloading Tuner" line; we say "resuming"
            super().__init__(oracle, directory=str(project.folder.parent), project_name=project.name)
        if _is_worker():  # the chief's one gRPC thread must not sleep
            self.oracle.create_trial = _waiting(self.oracle.create_trial)

    def search_until_done(self) -> None:
        with contextlib.suppress(_TimeUp):
            self.search(verbose=0)

    def pre_create_trial(self) -> None:
        signals.check()  # between trials: a stop asked for during the last one is not lost
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _TimeUp
        _check_failures(self.project)

    def on_trial_end(self, trial: Trial) -> None:
        super().on_trial_end(trial)  # the oracle has saved the trial's end
        self.budget.after_trial()

    def run_trial(self, trial: Trial, *args: Any, **kwargs: Any) -> dict[str, float]:
        values = dict(trial.hyperparameters.values)
        if self.hyperband:
            values["epochs"] = values["tuner/epochs"]
        params = self.runner.space.sample(Chosen(values))
        resume = self._resume(values)
        weights = os.path.join(self.get_trial_dir(trial.trial_id), WEIGHTS)
        keep = (lambda model: model.save_weights(weights)) if self.hyperband else None  # for the trial it promotes
        try:
            outcome = self.runner.run(int(trial.trial_id), params, self._preset(params), resume=resume, on_trained=keep)
        except TrialEnded as ended:
            self._note(ended.outcome, values, resume)
            raise kt.errors.FailedTrialError(ended.outcome.reason) from None
        self._note(outcome, values, resume)
        return {"val_accuracy": outcome.value}

    def _resume(self, values: dict[str, Any]) -> Resume | None:
        if "tuner/trial_id" not in values:
            return None
        weights = os.path.join(self.get_trial_dir(values["tuner/trial_id"]), WEIGHTS)
        return Resume(weights, int(values["tuner/initial_epoch"]))

    def _preset(self, params: dict[str, Any]) -> str | None:
        mine = _comparable(params, self.hyperband)
        same = [p.name for p in self.presets if _comparable(p.params, self.hyperband) == mine]
        return same[0] if same else None

    def _note(self, outcome: TrialOutcome, values: dict[str, Any], resume: Resume | None) -> None:
        if resume is not None:  # a promotion: its parent's epochs and rates come first
            earlier = self.project.outcome(int(values["tuner/trial_id"])).learning_rates
            outcome.learning_rates = earlier[: resume.epoch] + outcome.learning_rates
        self.project.note(outcome)
        self.progress.show(outcome, self.project.best_value())  # every worker's best, not only ours


def _comparable(params: dict[str, Any], hyperband: bool) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not (hyperband and k == "epochs")}


def _check_failures(project: Project) -> None:
    """Stop a sweep whose trials keep failing rather than let it spin."""
    ended = [o for o in project.outcomes() if o.outcome != Outcome.REFUSED]
    last = ended[-FAILURES_IN_A_ROW:]
    if len(last) == FAILURES_IN_A_ROW and all(o.outcome == Outcome.FAILED for o in last):
        raise SweepCannotGoOn(f"study '{project.name}': the last {FAILURES_IN_A_ROW} trials all failed "
                              f"({(last[-1].reason or '')[:120]}); see their fail_reason in MLflow")


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


def close_dead_runs(oracle: kt.Oracle, tracker: Tracker, parent_id: str, again: set[int] | None = None) -> None:
    """Close the MLflow runs of trials whose process died, so each completed trial has one
    finished run. Keras Tuner runs such a trial again: on resume every trial whose end it had not
    saved (its state's `retry_queue`), in a distributed search the dead worker's trial (`again`). Its old run
    is failed whether it was still RUNNING (killed during the trial) or FINISHED (killed just
    after it, before Keras Tuner saved its end; a CI run caught that)."""
    again = again if again is not None else {int(t) for t in oracle.get_state()["retry_queue"]}
    for run in tracker.trial_runs(parent_id):
        status, number = run.info.status, int(run.data.tags["trial"])
        pid = run.data.tags.get("worker", ":").partition(":")[2]
        if status == "RUNNING" and not (pid.isdigit() and alive(int(pid))):
            tracker.end_run(run.info.run_id, Outcome.FAILED, "process stopped during the trial")
        elif status == "FINISHED" and number in again:
            tracker.end_run(run.info.run_id, Outcome.FAILED, "process stopped before Keras Tuner saved the trial's end")
