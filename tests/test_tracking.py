"""MLflow through the Tracker (tracking.py), on a temporary store: how runs are opened, ended and read back."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_sweep.errors import Recycle
from mnist_sweep.outcomes import Outcome
from mnist_sweep.reporting.report import trial_from_run
from mnist_sweep.studies import TEST_RESULTS
from mnist_sweep.tracking import Tracker


def _read_back(tracker: Tracker, parent: str) -> list[str]:
    """The outcome of each trial run under `parent`, in trial order, as the report reads it."""
    trials = sorted((trial_from_run(run) for run in tracker.trial_runs(parent)), key=lambda t: t.number)
    return [t.outcome for t in trials]


def test_every_outcome_a_run_is_ended_with_reads_back_as_it_was(tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {})
    words = ["completed", "pruned", "refused", "failed", "killed"]
    for number, word in enumerate(words):
        run_id = tracker.start_child(parent, f"trial-{number:03d}", {}, {"trial": str(number), "run_kind": "trial"})
        tracker.log_metrics(run_id, {"epochs_run": 1})
        tracker.end_run(run_id, word, "why")
    tracker.start_child(parent, "trial-005", {}, {"trial": "5", "run_kind": "trial"})  # not ended yet
    assert _read_back(tracker, parent) == [*words, "running"]


def test_trial_runs_as_earlier_versions_tagged_them_read_as_those_trials_ended(tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {})
    # As 0.1.0 and main before issue 34 ended them: the tag, the status and the epochs trained.
    # A refused trial was tagged pruned, and never trained.
    written = {"completed": ("completed", "FINISHED", 3), "pruned": ("pruned", "KILLED", 2),
               "refused": ("pruned", "KILLED", 0), "failed": ("failed", "FAILED", 1),
               "killed": ("killed", "KILLED", 1)}
    for number, (tag, status, epochs) in enumerate(written.values()):
        run = tracker.client.create_run(tracker.experiment_id, tags={
            "mlflow.parentRunId": parent, "trial": str(number), "run_kind": "trial", "outcome": tag})
        tracker.client.log_metric(run.info.run_id, "epochs_run", epochs)
        tracker.client.set_terminated(run.info.run_id, status)
    assert _read_back(tracker, parent) == list(written)


def test_a_resumed_study_reopens_its_one_parent_run(tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    first = tracker.parent_run("s", {"engine": "optuna"})
    tracker.end_run(first, Outcome.COMPLETED)
    # The same command again, in a fresh process: the same parent, running again, and no second one.
    again = Tracker(tracking_uri, "test", tmp_path / "artifacts").parent_run("s", {"engine": "optuna"})
    assert again == first and tracker.client.get_run(first).info.status == "RUNNING"
    assert len(tracker.runs("tags.run_kind = 'study'")) == 1
    assert tracker.parent_run("other", {}) != first  # another study, its own parent


def test_a_run_stopped_by_an_error_or_ctrl_c_is_ended_so_and_a_recycle_leaves_it_to_the_fresh_process(
        tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    ended = {}
    for error in (ValueError("weights exploded"), KeyboardInterrupt(), Recycle(100, 900, 3)):
        run_id = tracker.start_run("trial", {"run_kind": "trial"})
        with pytest.raises(type(error)), tracker.ended_on_error(run_id):
            raise error
        run = tracker.client.get_run(run_id)
        ended[type(error).__name__] = (run.info.status, run.data.tags.get("outcome"))
    assert ended == {"ValueError": ("FAILED", "failed"), "KeyboardInterrupt": ("KILLED", "killed"),
                     "Recycle": ("RUNNING", None)}  # the same command goes on with the same run


def test_arrays_logged_on_a_run_load_back_whole_and_a_run_without_them_has_none(tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    run_id = tracker.start_run("final", {"run_kind": "final"})
    truth, predicted = np.arange(10) % 10, np.array([0, 1, 2, 5, 4, 5, 6, 1, 8, 9])
    tracker.log_arrays(run_id, TEST_RESULTS, truth=truth, predicted=predicted)
    loaded = tracker.load_arrays(run_id, TEST_RESULTS)
    assert set(loaded) == {"truth", "predicted"} and loaded["predicted"].tolist() == predicted.tolist()
    assert tracker.load_arrays(tracker.start_run("older", {}), TEST_RESULTS) is None  # a run of an older version


def test_every_run_is_tagged_with_the_number_format_it_trained_in(tracking_uri, tmp_path, monkeypatch):
    from mnist_sweep.runtime import precision

    monkeypatch.setenv("MNIST_SWEEP_COMPUTE", "bfloat16")  # as precision.use leaves it for the command
    assert precision.current() == "bfloat16"
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {})
    baselines = tracker.start_run("baselines", {"run_kind": "baselines"})
    child = tracker.start_child(parent, "final", {}, {"run_kind": "final"})
    tags = [tracker.client.get_run(run).data.tags.get("precision") for run in (parent, baselines, child)]
    assert tags == ["bfloat16"] * 3  # the final step's and the baselines' runs too, not only the trials'
