"""A study's typed record: the keys the first versions stored, and the checks on resume."""

from __future__ import annotations

import json

import pytest

from mnist_sweep.config import Settings
from mnist_sweep.errors import UserError
from mnist_sweep.space import load_space
from mnist_sweep.studies import FinalRecord, StudyRecord, begin_or_resume

FINAL = {"trial": 1, "val_accuracy": 0.787, "params": {"n_layers": 1}, "epochs": 1, "train_size": 2000,
         "test_accuracy": 0.8019, "test_loss": 0.7, "run_id": "r1", "forced": False, "evaluations": 1,
         "evaluated_at": "2026-12-01T20:37:00+00:00", "model_uri": "models:/m-1"}
# What version 0.1.0 stored in an Optuna study's user attributes, key for key.
STORED = {"space_fingerprint": "abc", "space": {"model": "mlp", "parameters": {}},
          "settings": {"seed": 0, "validation_size": 1000, "train_limit": 2000, "trial_images": None,
                       "sampler": "random", "pruner": "none", "experiment": "mnist-sweep"},
          "data_digest": "d", "mlflow_parent_run_id": "p", "final": FINAL, "final_history": [FINAL]}


def test_a_stored_record_of_the_first_version_reads_back_typed_and_writes_the_same_keys():
    record = StudyRecord.from_dict(STORED)
    assert record.final == FinalRecord.from_dict(FINAL) and record.final.test_accuracy == 0.8019
    assert record.parent_run_id == "p" and record.settings.sampler == "random"
    assert record.test_evaluations == 1  # version 0.1.0 counted the finished evaluations
    assert record.to_dict() == {**STORED, "test_evaluations": 1}


def test_a_study_that_has_not_begun_has_no_record_and_a_new_final_is_appended():
    assert StudyRecord.from_dict({}) is None
    record = StudyRecord.from_dict(STORED)
    again = record.with_final(FinalRecord.from_dict({**FINAL, "evaluations": 2, "forced": True}))
    assert [f.evaluations for f in again.final_history] == [1, 2] and again.final.forced


class Memory:
    """A study that keeps its record in a dict, as an engine keeps it in its store."""

    name = "s"

    def __init__(self):
        self.stored: dict = {}

    def save(self, record: StudyRecord) -> None:
        self.stored = record.to_dict()


def test_resuming_checks_the_protocol_and_the_data_but_not_the_sampler():
    study, space = Memory(), load_space("mlp")
    begin_or_resume(study, study.stored, space, Settings(), "digest-1")
    assert study.stored["data_digest"] == "digest-1"
    begin_or_resume(study, study.stored, space, Settings(sampler="tpe"), "digest-1")  # noted, not checked
    with pytest.raises(UserError, match="seed=0, not 3"):
        begin_or_resume(study, study.stored, space, Settings(seed=3), "digest-1")
    with pytest.raises(UserError, match="was run on other data"):
        begin_or_resume(study, study.stored, space, Settings(), "digest-2")
    kt = Memory()
    begin_or_resume(kt, kt.stored, space, Settings(engine="kerastuner", tuner="random"), None)
    with pytest.raises(UserError, match="tuner=random, not bayesian"):
        begin_or_resume(kt, kt.stored, space, Settings(engine="kerastuner", tuner="bayesian"), None)


def test_an_outcome_is_one_of_the_closed_set_and_stored_as_its_word():
    from mnist_sweep.studies import TrialOutcome

    with pytest.raises(ValueError):
        TrialOutcome(0, "finished", {})  # a misspelt outcome fails where it is made, not in the report
    stored = json.loads(json.dumps(TrialOutcome(0, "refused", {}).to_dict()))
    assert stored["outcome"] == "refused" and TrialOutcome.from_dict(stored).outcome == "refused"
