"""The Optuna engine: a resumable study whose every trial is a nested MLflow run."""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mnist_sweep import signals
from mnist_sweep.config import Settings, runs_dir, sqlite_file
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.memory import MemoryBudget
from mnist_sweep.presets import Preset
from mnist_sweep.progress import Progress
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import Best, begin_or_resume
from mnist_sweep.tracking import Tracker, failure
from mnist_sweep.trials import OverBudget, Stopped, TrialRunner

# Heartbeats and their retry callback are marked experimental, yet they are Optuna's way to
# recover trials of a killed process; the warning would only repeat on every start.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A trial whose process died stops beating; after the grace period it is failed and retried.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15
WAIT_SECONDS = 2  # between looks at the trials other processes run
# Models over max_mflops are refused untrained and not counted; this many refusals per
# requested trial means the limit leaves almost nothing of the space.
REFUSALS_PER_TRIAL = 10


def make_sampler(name: str, seed: int, presets: int = 0) -> optuna.samplers.BaseSampler:
    if name == "tpe":  # multivariate + group: TPE that understands per-layer (conditional) parameters
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=10 + presets)  # 10: Optuna's default
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def make_pruner(name: str, max_epochs: int, presets: int = 0) -> optuna.pruners.BasePruner:
    if name == "median":  # a few full trials and two epochs of grace before judging anyone
        return optuna.pruners.MedianPruner(n_startup_trials=5 + presets, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs, reduction_factor=3)
    if name == "halving":  # asynchronous successive halving: Hyperband's most aggressive bracket alone
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


RETRY = RetryHeartbeatStaleTrialCallback(max_retry=3)  # a dead process's trial runs again, at most 3 times
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # on each trial: which process runs it


def open_storage(url: str, create: bool = True) -> BaseStorage:
    path = sqlite_file(url) if "://" in url else Path(url)
    if path is not None:
        if not create and not path.is_file():
            raise UserError(f"no Optuna storage at {path}; check --storage, or run the sweep first")
        make_folder(path.parent, "--storage")
    if "://" not in url:  # Optuna's journal: appends under a file lock, so several processes can share it
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=RETRY)
    except Exception as err:  # SQLAlchemy raises many types for one cause: the URL does not work
        raise UserError(f"storage {url}: cannot open ({type(err).__name__}); check --storage") from None


def open_study(settings: Settings, space: SearchSpace) -> optuna.Study:
    """Create the study, or load it to resume; a changed search space is refused."""
    if settings.storage is None:
        _refuse_study_left_in_sqlite(settings.study)
    study = optuna.create_study(
        study_name=settings.study, storage=open_storage(settings.storage_url), direction="maximize",
        load_if_exists=True, sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(settings.pruner, space.max_epochs()))
    # The sampler and pruner may change on resume: the trials stay comparable.
    begin_or_resume(Record(study), space, settings, {}, {"sampler": settings.sampler, "pruner": settings.pruner})
    return study


def _refuse_study_left_in_sqlite(name: str) -> None:
    """Studies made before the journal became the default live in mlruns/optuna.db: starting the
    same name afresh in the journal would look like a resume and quietly begin again."""
    legacy = runs_dir() / "optuna.db"
    if not legacy.is_file() or name in _study_names(str(runs_dir() / "optuna.journal")):
        return
    if name in {s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{legacy}")}:
        raise UserError(f"study '{name}' is in {legacy}, from before the journal storage; resume it with "
                        f"--storage sqlite:///{legacy} --workers 1, or start anew with another --study-name")


def _study_names(journal: str) -> set[str]:
    if not Path(journal).is_file():
        return set()
    return {s.study_name for s in optuna.get_all_study_summaries(open_storage(journal))}


def load_study(settings: Settings) -> optuna.Study:
    """An existing study, for the steps that come after the search."""
    try:
        return optuna.load_study(study_name=settings.study, storage=open_storage(settings.storage_url, create=False))
    except KeyError:
        raise UserError(f"no study '{settings.study}' in {settings.storage_url}; check --study-name "
                        "and --storage, or run the sweep first") from None


class Objective(TrialRunner):
    """An Optuna objective: sample the space, run the trial, map its end to Optuna's states."""

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", WORKER)  # how a journal study tells a dead worker's trial
        params = self.space.sample(trial)
        trial.set_user_attr("params", params)
        preset = {"preset": trial.user_attrs["preset"]} if "preset" in trial.user_attrs else {}

        reached = [0]

        def report(epoch: int, metrics: dict[str, float]) -> None:
            reached[0] = epoch
            trial.report(metrics["val_accuracy"], epoch)
            if not preset and trial.should_prune():  # a preset is the floor: it always finishes
                raise Stopped(f"val accuracy {metrics['val_accuracy']:.4f} at epoch {epoch}")

        began = time.perf_counter()
        try:
            result = self.run(trial.number, params, preset, report,
                              on_run=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id))
        except Stopped as err:
            if isinstance(err, OverBudget):
                trial.set_user_attr("over_budget", err.mflops)
            raise optuna.TrialPruned(str(err)) from None
        except Exception as err:
            trial.set_user_attr("fail_reason", failure(err)[1])
            raise
        finally:
            trial.set_user_attr("epochs_run", reached[0])
            trial.set_user_attr("seconds", round(time.perf_counter() - began, 2))
        trial.set_user_attr("learning_rates", result.history["learning_rate"])  # replayed by the retrain
        return result.history["val_accuracy"][-1]


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards --trials: completed or pruned, not refused as over budget."""
    return sum("over_budget" not in t.user_attrs for t in study.get_trials(deepcopy=False, states=FINISHED))


def warm_start(study: optuna.Study, presets: list[Preset], objective: Objective) -> list[str]:
    """Enqueue the presets a new study can try as its first trials, so it cannot end below them."""
    if study.trials:  # resuming: they were enqueued (and maybe run) when the study began
        return []
    chosen = [p for p in presets if p.fits(objective.space) and objective.affordable(p.params)]
    for preset in chosen:
        study.enqueue_trial(preset.params, user_attrs={"preset": preset.name})
    return [p.name for p in chosen]


def start_search(study: optuna.Study, settings: Settings, space: SearchSpace, worker: int = 0) -> None:
    """This process's sampler and pruner, whose start-ups count the sampler's own trials.

    The warm-start presets (run or still queued) are trials too, tuned by hand to converge fast:
    counted, their epoch-2 median pruned 41 of 50 trials, and as most of TPE's first ten they
    steered it to their corner, RMSprop at batch 64, in two measured sweeps (README).
    """
    trials = study.get_trials(deepcopy=False)
    presets = sum("preset" in t.user_attrs for t in trials)
    # A resumed process (Ctrl-C, kill, a memory recycle) seeded like the first would draw the
    # same random start-up configurations again; offset by the trials so far, it goes on. Workers
    # starting together see the same count, so each also gets its own offset.
    begun = sum(t.state != TrialState.WAITING for t in trials)
    study.sampler = make_sampler(settings.sampler, settings.seed + begun + 100_003 * worker, presets)
    study.pruner = make_pruner(settings.pruner, space.max_epochs(), presets)


def recover_stale(study: optuna.Study, tracker: Tracker, parent_id: str) -> None:
    """Fail (and requeue) trials left RUNNING by a killed process, waiting out their grace period.

    A trial of a live worker keeps beating and stays untouched; a dead one is failed here
    rather than at some later trial's start, which a short resumed sweep might never reach.
    """
    if isinstance(study._storage, JournalStorage):
        fail_dead_local_trials(study)
    else:
        deadline = time.monotonic() + GRACE_SECONDS + HEARTBEAT_SECONDS
        while study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) and time.monotonic() < deadline:
            optuna.storages.fail_stale_trials(study)
            time.sleep(1)
    close_dead_runs(study, tracker, parent_id)


def fail_dead_local_trials(study: optuna.Study) -> None:
    """Fail and requeue RUNNING trials whose process on this machine is gone.

    Optuna's journal storage has no heartbeats; the process id each trial records stands in
    for them (on this machine: a study shared across machines needs a database's heartbeats).
    """
    host = WORKER.split(":")[0]
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = trial.user_attrs.get("worker", ":").partition(":")
        if where == host and pid.isdigit() and not _alive(int(pid)):
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:  # another process got there first
                continue
            RETRY(study, study._storage.get_trial(trial._trial_id))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return pid != os.getpid()  # our own id on a RUNNING trial: left by this process before an exec


def close_dead_runs(study: optuna.Study, tracker: Tracker, parent_id: str) -> None:
    """A trial Optuna failed (lost heartbeat, or a stop before its run was closed) keeps a
    RUNNING MLflow run: fail that run too. Found by the run's `trial` tag, so a stop at any
    point after the run was created is covered."""
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    if not failed:  # the usual case after a trial: no need to ask MLflow
        return
    for number, run_id in tracker.running_children(parent_id).items():
        if number in failed:
            tracker.end_run(run_id, "failed", "process stopped during the trial")


def wait_for_others(study: optuna.Study, recover: Callable[[], None]) -> None:
    """Wait while processes elsewhere (other machines, other commands) still run trials of the
    study, failing those whose process died, so the final step sees every trial."""
    said = False
    while running := study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not said:
            print(f"waiting for {len(running)} trial(s) that other processes are running", file=sys.stderr)
            said = True
        recover()
        time.sleep(WAIT_SECONDS)


def optimize(study: optuna.Study, objective: Objective, target: int, timeout: float | None,
             progress: Progress, budget: MemoryBudget) -> None:
    """Run trials until the study holds `target` finished ones, the time is up, or nothing works.

    Other workers' running trials count as on their way, so several processes sharing the
    study start no more trials than it needs."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def enough(s: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if trials_missing(s, target) <= 0:
            s.stop()

    callbacks = [progress.on_trial, lambda s, t: close_dead_runs(s, objective.tracker, objective.parent_id),
                 lambda s, t: signals.check(),  # between trials: a stop swallowed during one is not lost
                 lambda s, t: budget.after_trial(), enough]
    while (missing := trials_missing(study, target)) > 0:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        before = len(study.trials)
        # No gc_after_trial: each trial starts with keras.backend.clear_session(), which collects
        # already; a second collection cost 0.5 s per trial (profiled in benchmarks/overhead.py).
        study.optimize(objective, n_trials=missing, timeout=left, callbacks=callbacks, catch=(Exception,))
        _check_round(study, study.get_trials(deepcopy=False)[before:], missing, target)


def trials_missing(study: optuna.Study, target: int) -> int:
    """Trials still to start: other processes' running trials count as on their way."""
    return target - finished_count(study) - len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _check_round(study: optuna.Study, new: list[optuna.trial.FrozenTrial], missing: int, target: int) -> None:
    """Stop a sweep that cannot progress rather than let it spin."""
    if len(new) >= missing and all(t.state == TrialState.FAIL for t in new):
        raise UserError(f"study '{study.study_name}': the last {missing} trials all failed; "
                        "see their fail_reason in MLflow")
    refused = [t.user_attrs["over_budget"] for t in study.get_trials(deepcopy=False) if "over_budget" in t.user_attrs]
    if len(refused) > REFUSALS_PER_TRIAL * target:
        raise UserError(f"study '{study.study_name}': {len(refused)} sampled models were over max_mflops "
                        f"(the smallest needed {min(refused)}); raise max_mflops or narrow the space")


class Record:
    """An Optuna study as the steps after the search read it (mnist_sweep.studies.Study)."""

    def __init__(self, study: optuna.Study):
        self.study = study
        self.name = study.study_name

    @property
    def attrs(self) -> dict[str, Any]:
        return self.study.user_attrs

    def set_attr(self, key: str, value: Any) -> None:
        self.study.set_user_attr(key, value)

    def best_value(self) -> float | None:
        try:
            return self.study.best_value
        except ValueError:
            return None

    def best(self) -> Best:
        try:
            trial = self.study.best_trial
        except ValueError:
            raise UserError(f"study '{self.name}' has no completed trial yet; "
                            "give it more --trials or a longer --timeout") from None
        return Best(trial.number, trial.value, trial.user_attrs["params"], int(trial.user_attrs["epochs_run"]),
                    trial.user_attrs.get("learning_rates"))
