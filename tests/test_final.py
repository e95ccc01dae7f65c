"""The final step (final.py) on tiny synthetic data: the test set's looks counted, killed runs closed."""

from __future__ import annotations

import pytest

from mnist_sweep.config import Settings
from mnist_sweep.final import run_final
from mnist_sweep.space import load_space
from mnist_sweep.studies import FinalRecord, StudyRecord, StudySettings, TrialOutcome
from mnist_sweep.tracking import Tracker
from tests.test_trials import FIXED


class MemoryStudy:
    """A study as the final step sees it, kept in memory: its record and its best trial."""

    name = "s"

    def __init__(self, record: StudyRecord):
        self.saved = record

    def record(self) -> StudyRecord:
        return self.saved

    def save(self, record: StudyRecord) -> None:
        self.saved = record

    def best(self) -> TrialOutcome:
        return TrialOutcome(3, "completed", {**FIXED, "epochs": 1}, 0.9, 1, 1.0, [3e-3])


@pytest.fixture
def tracker(tracking_uri, tmp_path) -> Tracker:
    return Tracker(tracking_uri, "test", tmp_path / "artifacts")


def begun(tracker: Tracker, final: FinalRecord | None = None) -> MemoryStudy:
    """A study whose search is done: its record, with `final` if one was recorded."""
    space = load_space("mlp")
    record = StudyRecord(space.to_dict(), space.fingerprint(), StudySettings.of(Settings()), data_digest="d",
                         parent_run_id=tracker.parent_run("s", {}))
    return MemoryStudy(record.with_final(final) if final else record)


def test_the_test_set_is_evaluated_once_and_a_forced_evaluation_is_counted_as_the_second(tiny_mnist, tracker,
                                                                                          tmp_path):
    study = begun(tracker)
    first = run_final(study, tiny_mnist, tracker, tmp_path / "final")
    assert not first.reused and first.record.evaluations == 1 and 0 <= first.record.test_accuracy <= 1
    again = run_final(study, tiny_mnist, tracker, tmp_path / "final")  # the same command again
    assert again.reused and again.model is None and again.record == first.record
    assert study.record().test_evaluations == 1
    forced = run_final(study, tiny_mnist, tracker, tmp_path / "final", force=True)
    assert forced.record.evaluations == study.record().test_evaluations == 2
    assert [f.evaluations for f in study.record().final_history] == [1, 2]
    champion = tracker.client.get_model_version_by_alias("mnist-sweep-s", "champion")  # the newest model
    assert champion.run_id == forced.record.run_id and champion.tags["evaluation"] == "2"


def test_a_final_run_a_killed_process_left_running_is_closed_as_killed(tiny_mnist, tracker, tmp_path):
    done = FinalRecord(trial=3, val_accuracy=0.9, params={}, epochs=1, train_size=300, test_accuracy=0.9,
                       test_loss=0.3, run_id="logged", forced=False, evaluations=1, evaluated_at="now",
                       model_uri="models:/m/1")
    study = begun(tracker, done)
    left = tracker.start_child(study.record().parent_run_id, "final", {}, {"run_kind": "final", "study": "s"})
    shown = run_final(study, tiny_mnist, tracker, tmp_path / "final")
    assert shown.reused and shown.record == done  # nothing evaluated again
    run = tracker.client.get_run(left)
    assert run.info.status == "KILLED" and run.data.tags["outcome"] == "killed"
