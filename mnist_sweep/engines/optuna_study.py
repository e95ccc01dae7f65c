"""An Optuna study as this project uses it: opened (created, or checked to resume) or loaded, its
trials' outcomes noted and read back, and the adapter the steps after the search see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnist_sweep.config import Settings, runs_dir
from mnist_sweep.engines.optuna_samplers import make_pruner
from mnist_sweep.engines.optuna_spec import OptunaSpec
from mnist_sweep.engines.optuna_storage import open_storage
from mnist_sweep.errors import UserError
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.locks import exclusive
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import StudyRecord, TrialOutcome, begin_or_resume, changed

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
REFUSED_REASON = Outcome.REFUSED.value  # the user attribute that says why a trial was refused: its outcome's word
SPEC = OptunaSpec()  # its declaration: its name and where its studies are


def open_study(settings: Settings, space: SearchSpace, digest: str | None = None) -> optuna.Study:
    """Create the study, or load it to resume; another space, split or data is refused."""
    if settings.storage is None:
        _refuse_study_left_in_sqlite(settings.study)
    # No sampler: each process's own, seeded for it (seeds.sampler), is set by start_search before
    # any trial is drawn (engines/optuna.py); a seeded one here drew nothing.
    study = optuna.create_study(
        study_name=settings.study, storage=open_storage(SPEC.storage(settings)), direction="maximize",
        load_if_exists=True, pruner=make_pruner(settings.pruner, settings.most_epochs(space.max_epochs())))
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
        trial.set_user_attr("epoch_seconds", outcome.epoch_seconds)    # the retrain's estimate
    elif outcome.outcome == Outcome.REFUSED:  # "over_budget" marks it (None: refused as unbuildable)
        trial.set_user_attr("over_budget", outcome.mflops)
        trial.set_user_attr(REFUSED_REASON, outcome.reason)
    elif outcome.outcome in (Outcome.FAILED, Outcome.PRUNED):  # pruned: by the pruner, or at search_share's end
        trial.set_user_attr(outcome.outcome.reason_key, outcome.reason)


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
    reason = None  # a completed retry keeps the attributes its failed first run had, fail_reason too
    if outcome in (Outcome.FAILED, Outcome.PRUNED):
        reason = attrs.get(outcome.reason_key, "see log" if outcome == Outcome.FAILED else None)
    elif outcome == Outcome.REFUSED:
        reason = attrs.get(REFUSED_REASON) or f"{attrs['over_budget']} MFLOPs per image, over max_mflops"
    return TrialOutcome(trial.number, outcome, attrs.get("params", trial.params), value,
                        int(attrs.get("epochs_run", 0)), attrs.get("seconds", 0.0), attrs.get("learning_rates") or [],
                        reason=reason, preset=attrs.get("preset"), worker=attrs.get("worker", ""),
                        threads=attrs.get("threads", 0), trained=attrs.get("trained", 0),
                        mflops=attrs.get("over_budget"),
                        run_id=attrs.get("mlflow_run_id"), epoch_seconds=attrs.get("epoch_seconds", 0.0),
                        enqueued=attrs.get("enqueued"))


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
        return StudyRecord.read(self.stored(), f"study '{self.name}' was not made by mnist_sweep; use another "
                                               "--study-name")

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
                            "give it more --trials, a longer --timeout or a larger search_share") from None
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
