"""An Optuna study as the project opens and reads it: outcomes noted and read back, a resume
checked against the study's space, split and data, a study left in the old default refused."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest
from optuna.trial import TrialState

from mnist_sweep.config import Settings
from mnist_sweep.engines.optuna_study import OptunaStudy, finished_count, note_outcome, open_study
from mnist_sweep.errors import UserError
from mnist_sweep.space import load_space
from mnist_sweep.studies import TrialOutcome


def test_each_outcome_reads_back_from_optuna_as_noted_and_a_0_1_0_refusal_too():
    study = optuna.create_study(direction="maximize")

    def ended(outcome: TrialOutcome, state: TrialState, value: float | None = None) -> None:
        trial = study.ask()  # noted as the objective notes it, told in the state the engine gives it
        note_outcome(trial, outcome)
        study.tell(trial, value, state=state)

    ended(TrialOutcome(0, "completed", {}, 0.9, epoch_seconds=12.5), TrialState.COMPLETE, 0.9)
    ended(TrialOutcome(1, "pruned", {}, 0.5, reason="val accuracy 0.5 at epoch 1"), TrialState.PRUNED)
    ended(TrialOutcome(2, "refused", {}, reason="needs 60 MFLOPs per image", mflops=60.0), TrialState.PRUNED)
    ended(TrialOutcome(3, "refused", {}, reason="no room for 3 blocks"), TrialState.PRUNED)  # unbuildable
    ended(TrialOutcome(4, "failed", {}, reason="ValueError: boom"), TrialState.FAIL)
    legacy = study.ask()  # 0.1.0 marked a refused trial by its cost alone
    legacy.set_user_attr("over_budget", 60.0)
    study.tell(legacy, state=TrialState.PRUNED)
    retry = study.ask()  # Optuna's retry copies the failed trial's attributes, its reason too
    retry.set_user_attr("fail_reason", "ValueError: boom")
    study.tell(retry, 0.8)
    read = [(o.number, o.outcome, o.reason) for o in OptunaStudy(study, "").outcomes()]
    assert read == [(0, "completed", None), (1, "pruned", "val accuracy 0.5 at epoch 1"),
                    (2, "refused", "needs 60 MFLOPs per image"),
                    (3, "refused", "no room for 3 blocks"), (4, "failed", "ValueError: boom"),
                    (5, "refused", "60.0 MFLOPs per image, over max_mflops"), (6, "completed", None)]
    assert finished_count(study) == 3  # completed and pruned count towards --trials; refused and failed do not
    assert OptunaStudy(study, "").outcomes()[0].epoch_seconds == 12.5  # the final step's estimates start there


def test_resuming_with_another_space_or_split_is_refused(tmp_path):
    settings = Settings(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="r")
    space = load_space("mlp")
    open_study(settings, space)
    with pytest.raises(UserError, match="another search space"):
        open_study(settings, space.with_max_epochs(5))
    with pytest.raises(UserError, match="seed=0, not 1"):
        open_study(replace(settings, seed=1), space)
    with pytest.raises(UserError, match="validation_size=10000, not 5000"):
        open_study(replace(settings, validation_size=5000), space)
    with pytest.raises(UserError, match="trial_epochs=None, not 9"):  # trials judged on other epochs
        open_study(replace(settings, trial_epochs=9), space)
    assert open_study(settings, space).study_name == "r"  # the same command resumes


def test_a_study_left_in_the_old_sqlite_default_is_not_silently_started_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    optuna.create_study(study_name="mlp-optuna", storage=f"sqlite:///{tmp_path / 'mlruns' / 'optuna.db'}")
    with pytest.raises(UserError, match="study 'mlp-optuna' is in .*optuna.db, from before the journal storage"):
        open_study(Settings(), load_space("mlp"))
    assert open_study(Settings(study_name="other"), load_space("mlp")).study_name == "other"  # a new name is fine


def test_a_study_optuna_made_without_mnist_sweep_is_refused_in_one_line_not_read_as_empty():
    plain = optuna.create_study(study_name="by-hand", direction="maximize")  # a user's own, in a shared storage
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(UserError, match="study 'by-hand' was not made by mnist_sweep; use another --study-name"):
        OptunaStudy(plain, "journal").record()
