"""The records of a study and of its trials, whichever engine ran them, and what the steps after
a search need of a study.

`TrialOutcome` is the one record of how a trial ended: the shared trial runner returns it, each
engine stores it in its own way, the progress display, the final retrain and the report read it.

`StudyRecord` is the one owner of a study's metadata: its space, the settings its trials were
made under, the data digest, the MLflow parent run and the final result with its history.
Each engine stores it in its own way (Optuna's study user attributes, a Keras Tuner project's
study.json) under the keys `to_dict` gives, which are those of the first versions, so their
studies still load. The final step, the export and the report read it through `Study`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from mnist_sweep.config import SETTINGS, Settings
from mnist_sweep.declare import CHECKED, Setting
from mnist_sweep.errors import UserError
from mnist_sweep.outcomes import Outcome
from mnist_sweep.space import SearchSpace
from mnist_sweep.runtime.workers import WORKER

# On the final run: its model's digit for each test image, the true digits, and the first
# misclassified images, so the report draws its test-set plots without reading the test set.
TEST_RESULTS = "test_results.npz"
GRID_IMAGES = 32


@dataclass
class TrialOutcome:
    """How one trial ended: completed, pruned, refused (over the cost limit, untrained) or failed."""

    number: int
    outcome: Outcome
    params: dict[str, Any]
    value: float | None = None      # its last validation accuracy (a pruned trial's where it stopped)
    epochs: int = 0                 # the epochs its model trained, a Hyperband parent's included
    seconds: float = 0.0            # how long it took, for the epochs it trained itself (`trained`)
    learning_rates: list[float] = field(default_factory=list)  # per epoch: the retrain replays them
    reason: str | None = None       # why it was pruned, refused or failed
    preset: str | None = None       # the notebook preset a warm-start trial ran
    worker: str = WORKER
    threads: int = 0                # TensorFlow threads it trained with (0: not recorded)
    trained: int = 0                # epochs it trained itself: `epochs` less a Hyperband parent's (0: not recorded)
    mflops: float | None = None     # a refused model's cost per image
    run_id: str | None = None
    epoch_seconds: float = 0.0      # its last epoch's training alone, a steady epoch's cost (0: not recorded)
    enqueued: str | None = None     # the sweep file's name for the configuration it enqueued

    def __post_init__(self) -> None:
        # Whatever a store or a caller hands in, one of the closed set (a stray word fails here).
        self.outcome = Outcome(self.outcome)

    @property
    def counts(self) -> bool:
        return self.outcome.counts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}  # plain values only, as stored

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialOutcome:
        return cls(**_known(cls, values))


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """`values` without keys `cls` does not have: a newer version may have added some."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def recorded(engine: str | None = None) -> tuple[Setting, ...]:
    """The declared settings a study's record keeps: of every engine, or those `engine` runs with."""
    return tuple(s for s in SETTINGS if s.recorded and (engine is None or s.engine in (None, engine)))


_Recorded = TypeVar("_Recorded", bound="_StudySettings")


@dataclass(frozen=True)  # no fields of its own (StudySettings adds them): a dataclass, as asdict(self) needs
class _StudySettings:
    """What a study's trials were made under: one field per setting declared `recorded=` in
    config.Settings, generated from those declarations (StudySettings below), so a setting a
    study records is declared once. An engine's own settings are None in another engine's
    studies, a NOTED_IF_SET one at its default is None, and keys a record lacks (older versions)
    load as None; a record's extra keys (newer versions) are dropped."""

    @classmethod
    def of(cls: type[_Recorded], settings: Settings) -> _Recorded:
        """What the settings' declarations (config.Settings) say a study records, for its engine."""
        return cls(**{s.name: s.kept(getattr(settings, s.name)) for s in recorded(settings.engine)})

    def protocol(self) -> dict[str, Any]:
        """The settings a resumed study must be run with again; an engine's own only where recorded."""
        return {s.name: getattr(self, s.name) for s in recorded()
                if s.recorded == CHECKED and (s.engine is None or getattr(self, s.name) is not None)}

    def to_dict(self) -> dict[str, Any]:
        # 0.1.0 stored these two even when None, and reads them back as given.
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("train_limit", "trial_images")}


if TYPE_CHECKING:
    class StudySettings(_StudySettings):
        """StudySettings as mypy sees it: it cannot see into make_dataclass, and listing the fields
        here again would declare each recorded setting twice. Its fields read as Any."""

        def __init__(self, **values: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...
else:
    StudySettings = make_dataclass(
        "StudySettings", [(s.name, s.type | None, field(default=None)) for s in recorded()],
        bases=(_StudySettings,), frozen=True)
    StudySettings.__module__ = __name__  # make_dataclass takes `module=` only from Python 3.12


@dataclass(frozen=True)
class FinalRecord:
    """One evaluation of a study's retrained best on the test set."""

    trial: int
    val_accuracy: float
    params: dict[str, Any]
    epochs: int
    train_size: int
    test_accuracy: float
    test_loss: float
    run_id: str
    forced: bool
    evaluations: int              # this evaluation's number: 1 unless forced, or a kill made it run again
    evaluated_at: str
    model_uri: str | None = None  # the logged MLflow model, once it is logged
    model_file: str | None = None  # the model as evaluated, kept until it is logged (final.py)
    members: int = 1              # the models averaged into the final model (an ensemble above 1)
    member_trials: tuple[int, ...] | None = None  # the trials they retrain, where more than the best
    member_epochs: tuple[int, ...] | None = None  # each member's epochs, where there are several

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for key, default in (("model_file", None), ("members", 1), ("member_trials", None),
                             ("member_epochs", None)):  # as 0.1.0 stored it
            if values[key] == default:
                del values[key]
        return values

    def trained_epochs(self) -> int:
        """The epochs of all members, one after the other: the final run's last training step."""
        return sum(self.member_epochs) if self.member_epochs else self.epochs

    def model_name(self) -> str:
        """What the final model is, in words: an ensemble names the trials it averages."""
        if self.member_trials:
            return f"the final model (trials {', '.join(map(str, self.member_trials))} retrained and averaged)"
        if self.members > 1:
            return f"the final model ({self.members} retrains of trial {self.trial} averaged)"
        return f"the final model (trial {self.trial} retrained)"

    def metrics(self, study: str, data_digest: str | None) -> dict[str, Any]:
        """What an export's metrics.json says of the model beside it."""
        keys = ("test_accuracy", "test_loss", "val_accuracy", "trial", "epochs", "train_size", "members",
                "member_trials", "member_epochs",
                "evaluated_at", "evaluations", "run_id", "model_uri")
        values = asdict(self)
        return {k: values[k] for k in keys if values[k] is not None} | {"study": study, "data_digest": data_digest}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FinalRecord:
        known = _known(cls, values)
        for key in ("member_trials", "member_epochs"):
            if known.get(key) is not None:  # a JSON list in the store
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass(frozen=True)
class StudyRecord:
    space: dict[str, Any]
    space_fingerprint: str
    settings: StudySettings
    data_digest: str | None = None
    parent_run_id: str | None = None
    final: FinalRecord | None = None
    final_history: tuple[FinalRecord, ...] = field(default_factory=tuple)
    test_evaluations: int = 0  # looks at the test set begun, finished or not: the honest count

    def with_final(self, final: FinalRecord) -> StudyRecord:
        return replace(self, final=final, final_history=(*self.final_history, final))

    def to_dict(self) -> dict[str, Any]:
        values = {"space_fingerprint": self.space_fingerprint, "space": self.space,
                  "settings": self.settings.to_dict(), "data_digest": self.data_digest,
                  "mlflow_parent_run_id": self.parent_run_id,
                  # The history before `final`: stores write key by key, and `final` points into it.
                  "final_history": [f.to_dict() for f in self.final_history],
                  "final": self.final.to_dict() if self.final else None,
                  "test_evaluations": self.test_evaluations}
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudyRecord | None:
        """The record as stored, or None for a study that has not begun (no space recorded)."""
        if "space_fingerprint" not in values:
            return None
        final = values.get("final")
        history = tuple(FinalRecord.from_dict(f) for f in values.get("final_history", []))
        return cls(space=values["space"], space_fingerprint=values["space_fingerprint"],
                   settings=StudySettings(**_known(StudySettings, values["settings"])),
                   data_digest=values.get("data_digest"), parent_run_id=values.get("mlflow_parent_run_id"),
                   final=FinalRecord.from_dict(final) if final else None, final_history=history,
                   test_evaluations=values.get("test_evaluations", len(history)))  # 0.1.0 counted finished ones

    @classmethod
    def read(cls, values: dict[str, Any], not_ours: str) -> StudyRecord:
        """The record a store holds, for every engine's `Study.record`; `not_ours`, the store's own
        words, when it holds none (not begun, or not made by mnist_sweep)."""
        record = cls.from_dict(values)
        if record is None:
            raise UserError(not_ours)
        return record


class Study(Protocol):
    """A study as the steps after the search see it, whichever engine ran it."""

    name: str

    def record(self) -> StudyRecord:
        """What the sweep recorded; a UserError for a study that has not begun."""

    def save(self, record: StudyRecord) -> None:
        """Store `record` (only what changed is written)."""

    def best(self) -> TrialOutcome:
        """The best completed trial; a UserError when there is none yet."""

    def outcomes(self) -> list[TrialOutcome]:
        """Every trial that ended, in number order."""

    def finished(self) -> int:
        """The trials that count towards --trials (the engine's rule)."""

    def best_value(self) -> float | None:
        """The best completed trial's value, None before one completes."""

    def exclusive(self) -> AbstractContextManager[None]:
        """One process at a time on the study's shared steps (the final one), wherever they run."""


def changed(record: StudyRecord, stored: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The stored keys whose values `record` changes: what an engine writes to save it."""
    for key, value in record.to_dict().items():
        if stored.get(key) != value:
            yield key, value


def begin_or_resume(study: Study, stored: dict[str, Any], space: SearchSpace, settings: Settings,
                    digest: str | None) -> StudyRecord:
    """Record what a new study is made with; refuse to resume one made differently.

    Trials of one study must be comparable: same space, same split, same training images, same
    data (unless `digest` is None: not known yet), and for Keras Tuner the same oracle."""
    mine = StudySettings.of(settings)
    record = StudyRecord.from_dict(stored)
    if record is None:
        record = StudyRecord(space.to_dict(), space.fingerprint(), mine)
        study.save(record)
    if record.space_fingerprint != space.fingerprint():
        raise UserError(f"study '{study.name}' was made with another search space; "
                        "use a new --study-name or the original space and --max-epochs")
    recorded = record.settings.protocol()
    for key, value in mine.protocol().items():
        if recorded.get(key, value) != value:
            raise UserError(f"study '{study.name}' was run with {key}={recorded[key]}, not {value}; "
                            f"pass the same value or use a new --study-name")
    return record if digest is None else check_digest(study, record, digest)


def check_digest(study: Study, record: StudyRecord, digest: str) -> StudyRecord:
    """Refuse other data than a study's trials saw; record it where it was not recorded yet."""
    if record.data_digest is None:
        record = replace(record, data_digest=digest)
        study.save(record)
    elif record.data_digest != digest:
        raise UserError(f"study '{study.name}' was run on other data (digest {record.data_digest[:12]}…); "
                        "pass the same --data or use a new --study-name")
    return record
