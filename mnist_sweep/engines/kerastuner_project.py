"""A Keras Tuner project as this project keeps it, and as the steps after the search see it.

Keras Tuner keeps its own state (oracle.json, trial_*/trial.json) in the project folder; the
project's record sits beside it: study.json (a StudyRecord) and one outcome file per trial,
written by the process that ran it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mnist_sweep.config import Settings
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.locks import exclusive
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import StudyRecord, TrialOutcome, begin_or_resume, changed

SPEC = KerasTunerSpec()  # its declaration: where its projects are


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
        return StudyRecord.read(self.stored(), f"{self.file}: not a study of mnist_sweep; use another "
                                               "--study-name or --storage")

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


def open_project(settings: Settings, space: SearchSpace, digest: str | None = None) -> Project:
    """Create the project's record, or check it to resume; another space, split or data is refused."""
    make_folder(SPEC.project_root(settings), "--storage")
    project = Project(SPEC.project_root(settings), settings.study)
    begin_or_resume(project, project.stored(), space, settings, digest)
    return project
