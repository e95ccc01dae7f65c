"""Where an Optuna study lives and how it is read: storage, samplers and pruners, the study as
the steps after the search see it, and recovery of the trials of processes that died."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

from mnist_sweep.engines.optuna_spec import OptunaSpec, check_journal
from mnist_sweep.config import Settings, runs_dir, sqlite_file
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.locks import exclusive
from mnist_sweep.runtime.workers import alive
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import StudyRecord, begin_or_resume, changed
from mnist_sweep.tracking import Tracker
from mnist_sweep.runtime.workers import WORKER
from mnist_sweep.studies import TrialOutcome

# Heartbeats and their retry callback are marked experimental, yet they are Optuna's way to
# recover trials of a killed process; the warning would only repeat on every start.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
REFUSED_REASON = Outcome.REFUSED.value  # the user attribute that says why a trial was refused: its outcome's word
# A trial whose process died stops beating; after the grace period it is failed and retried.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15
RETRY = RetryHeartbeatStaleTrialCallback(max_retry=3)  # a dead process's trial runs again, at most 3 times
SPEC = OptunaSpec()  # its declaration: its name and where its studies are


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


def is_journal(url: str) -> bool:
    """A path, not a URL: Optuna's journal file (which has no heartbeats)."""
    return "://" not in url


def open_storage(url: str, create: bool = True) -> BaseStorage:
    path = Path(url) if is_journal(url) else sqlite_file(url)
    if path is not None:
        if not create and not path.is_file():
            raise UserError(f"no Optuna storage at {path}; check --storage, or run the sweep first")
        make_folder(path.parent, "--storage")
    if is_journal(url):  # Optuna's journal: appends under a file lock, so several processes can share it
        if path.is_file():
            check_journal(path)  # the repair would move any other file aside and start a journal there
        repair_journal(path)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=RETRY)
    except Exception as err:  # SQLAlchemy raises many types for one cause: the URL does not work
        raise UserError(f"storage {url}: cannot open ({type(err).__name__}); check --storage") from None


def repair_journal(path: Path) -> None:
    """Drop the records a crash or a full disk left unfinished, keeping a copy of the file.

    Optuna 5.0 skips an unfinished last record silently, then appends the next one onto it,
    after which no process can read the file (optuna's _file.py reads a line only when it ends
    in a newline and parses). Writers append under Optuna's own lock, so with it held a record
    that does not end in a newline, or does not parse, was never a finished write.
    """
    if not path.is_file() or _whole(path.read_bytes()):
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        kept = _whole_records(data)
        if len(kept) == len(data):
            return
        copy = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
        shutil.copyfile(path, copy)
        if data.startswith(kept):  # only the end: cut it, so readers' offsets stay valid
            os.truncate(path, len(kept))
        else:
            partial = path.with_name(f"{path.name}.repairing")
            partial.write_bytes(kept)
            os.replace(partial, path)
    finally:
        lock.release()
    print(f"{path}: dropped {len(data) - len(kept)} bytes of records a crash or a full disk left unfinished "
          f"(a copy of the file is {copy}); every finished record is kept", file=sys.stderr)


def _whole(data: bytes) -> bool:
    return not data or (data.endswith(b"\n") and _parses(data[data.rfind(b"\n", 0, len(data) - 1) + 1:]))


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _whole_records(data: bytes) -> bytes:
    """The lines that are finished records: each ends in a newline and parses."""
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if line.endswith(b"\n") and _parses(line))


def open_study(settings: Settings, space: SearchSpace, digest: str | None = None) -> optuna.Study:
    """Create the study, or load it to resume; another space, split or data is refused."""
    if settings.storage is None:
        _refuse_study_left_in_sqlite(settings.study)
    study = optuna.create_study(
        study_name=settings.study, storage=open_storage(SPEC.storage(settings)), direction="maximize",
        load_if_exists=True, sampler=make_sampler(settings.sampler, settings.seed),
        pruner=make_pruner(settings.pruner, settings.most_epochs(space.max_epochs())))
    begin_or_resume(OptunaStudy(study, SPEC.storage(settings)), study.user_attrs, space, settings, digest)
    if study.metric_names is None:  # named for optuna-dashboard and Optuna's plots
        study.set_metric_names(["val_accuracy"])
    return study


def load_study(settings: Settings) -> optuna.Study:
    """An existing study, for the steps that come after the search."""
    try:
        return optuna.load_study(study_name=settings.study, storage=open_storage(SPEC.storage(settings), create=False))
    except KeyError:
        raise UserError(f"no study '{settings.study}' in {SPEC.storage(settings)}; check --study-name "
                        "and --storage, or run the sweep first") from None


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


# --- one trial's outcome, as Optuna keeps it ---------------------------------------------------

def note_outcome(trial: optuna.Trial, outcome: TrialOutcome) -> None:
    """The outcome in the trial's user attributes, under the keys the first versions wrote."""
    trial.set_user_attr("epochs_run", outcome.epochs)
    trial.set_user_attr("seconds", outcome.seconds)
    trial.set_user_attr("threads", outcome.threads)
    trial.set_user_attr("trained", outcome.trained)
    if outcome.outcome == Outcome.COMPLETED:
        trial.set_user_attr("learning_rates", outcome.learning_rates)  # replayed by the retrain
    elif outcome.outcome == Outcome.REFUSED:  # "over_budget" marks it (None: refused as unbuildable)
        trial.set_user_attr("over_budget", outcome.mflops)
        trial.set_user_attr(REFUSED_REASON, outcome.reason)
    elif outcome.outcome == Outcome.FAILED:
        trial.set_user_attr("fail_reason", outcome.reason)


def read_outcome(trial: FrozenTrial) -> Outcome:
    """How a finished trial ended, as Optuna keeps it: its state, and for a refused trial (pruned
    in Optuna's terms, so the sampler learns from it) the `over_budget` attribute every version wrote."""
    if "over_budget" in trial.user_attrs:
        return Outcome.REFUSED
    return {TrialState.COMPLETE: Outcome.COMPLETED, TrialState.PRUNED: Outcome.PRUNED}.get(trial.state, Outcome.FAILED)


def outcome_of(trial: FrozenTrial) -> TrialOutcome:
    """A stored trial as the outcome its objective noted."""
    attrs, outcome = trial.user_attrs, read_outcome(trial)
    value = trial.value if trial.value is not None else _last(trial.intermediate_values)
    reason = attrs.get("fail_reason", "see log") if outcome == Outcome.FAILED else None
    if outcome == Outcome.REFUSED:
        reason = attrs.get(REFUSED_REASON) or f"{attrs['over_budget']} MFLOPs per image, over max_mflops"
    return TrialOutcome(trial.number, outcome, attrs.get("params", trial.params), value,
                        int(attrs.get("epochs_run", 0)), attrs.get("seconds", 0.0), attrs.get("learning_rates") or [],
                        reason=reason, preset=attrs.get("preset"), worker=attrs.get("worker", ""),
                        threads=attrs.get("threads", 0), trained=attrs.get("trained", 0),
                        mflops=attrs.get("over_budget"),
                        run_id=attrs.get("mlflow_run_id"))


def _last(values: dict[int, float]) -> float | None:
    return values[max(values)] if values else None


def best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:  # no completed trial yet
        return None


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards --trials: completed or pruned, not refused as over budget."""
    return sum(read_outcome(t).counts for t in study.get_trials(deepcopy=False, states=FINISHED))


class OptunaStudy:
    """An Optuna study as the steps after the search see it (mnist_sweep.studies.Study)."""

    def __init__(self, study: optuna.Study, storage_url: str):
        self.study, self.storage_url = study, storage_url
        self.name = study.study_name

    def stored(self) -> dict[str, Any]:
        return self.study.user_attrs

    def record(self) -> StudyRecord:
        record = StudyRecord.from_dict(self.stored())
        if record is None:
            raise UserError(f"study '{self.name}' was not made by mnist_sweep; use another --study-name")
        return record

    def save(self, record: StudyRecord) -> None:
        for key, value in list(changed(record, self.stored())):
            self.study.set_user_attr(key, value)

    def best_value(self) -> float | None:
        return best_value(self.study)

    def best(self) -> TrialOutcome:
        try:
            trial = self.study.best_trial
        except ValueError:
            raise UserError(f"study '{self.name}' has no completed trial yet; "
                            "give it more --trials or a longer --timeout") from None
        return outcome_of(trial)

    def finished(self) -> int:
        return finished_count(self.study)

    def outcomes(self) -> list[TrialOutcome]:
        ended = (t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished())
        return [outcome_of(t) for t in sorted(ended, key=lambda t: t.number)]

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with exclusive(self.storage_url, self.name):
            yield


# --- the trials of processes that died ---------------------------------------------------------

def recover_stale(study: OptunaStudy, tracker: Tracker, parent_id: str) -> None:
    """Fail (and requeue) trials left RUNNING by a killed process, waiting out their grace period.

    A trial of a live worker keeps beating and stays untouched; a dead one is failed here
    rather than at some later trial's start, which a short resumed sweep might never reach.
    """
    if is_journal(study.storage_url):
        fail_dead_local_trials(study.study)
    else:
        deadline = time.monotonic() + GRACE_SECONDS + HEARTBEAT_SECONDS
        while study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) and time.monotonic() < deadline:
            optuna.storages.fail_stale_trials(study.study)
            time.sleep(1)
    close_dead_runs(study.study, tracker, parent_id)


def fail_dead_local_trials(study: optuna.Study) -> None:
    """Fail and requeue RUNNING trials whose process on this machine is gone.

    Optuna's journal storage has no heartbeats; the process id each trial records stands in
    for them (on this machine: a study shared across machines needs a database's heartbeats).
    """
    trials = study.get_trials(deepcopy=False)
    for trial in (t for t in trials if t.state == TrialState.RUNNING):
        if _dead(trial, trials):
            try:  # not skip_if_finished: a trial another process failed was retried by that process
                failed = study.tell(trial.number, state=TrialState.FAIL)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError):  # another process got there first
                continue
            RETRY(study, failed)


UNCLAIMED_SECONDS = 60  # a trial picked up but never told who runs it: its process died at once


def _dead(trial: FrozenTrial, trials: list[FrozenTrial]) -> bool:
    worker = trial.user_attrs.get("worker")
    retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    if retried is not None and worker == trials[retried].user_attrs.get("worker"):
        worker = None  # the retry copied its dead predecessor's attributes; its own runner has not said yet
    if worker:
        where, _, pid = worker.partition(":")
        return where == WORKER.split(":")[0] and pid.isdigit() and not alive(int(pid))
    started = trial.datetime_start
    return started is not None and (datetime.datetime.now() - started).total_seconds() > UNCLAIMED_SECONDS


def close_dead_runs(study: optuna.Study, tracker: Tracker, parent_id: str) -> None:
    """A trial Optuna failed (lost heartbeat, or a stop before its run was closed) keeps a
    RUNNING MLflow run: fail that run too. Found by the run's `trial` tag, so a stop at any
    point after the run was created is covered."""
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    if not failed:  # the usual case after a trial: no need to ask MLflow
        return
    for number, run_id in tracker.running_children(parent_id).items():
        if number in failed:
            tracker.end_run(run_id, Outcome.FAILED, "process stopped during the trial")
