"""The shared trial runner and the one record of a trial it returns, on tiny synthetic data."""

from __future__ import annotations

import os
import socket

import pytest

from mnist_sweep.data import search_data
from mnist_sweep.space import load_space
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialEnded, TrialRunner

FIXED = {"n_layers": 1, "units_l0": 32, "dropout_l0": 0.0, "optimizer": "adam", "learning_rate": 3e-3,
         "batch_size": 32, "epochs": 2, "schedule": "constant", "anneal": False, "label_smoothing": 0.0, "ema": False,
         "augment": False, "early_stopping": False}


@pytest.fixture
def runner(tiny_mnist, tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {"engine": "optuna"})
    return TrialRunner(load_space("mlp"), search_data(tiny_mnist, val_size=60, seed=0), tracker, parent,
                       {"engine": "optuna", "study": "s"}, seed=0)


def test_a_completed_trial_returns_its_outcome_and_its_run_names_the_worker(runner):
    outcome = runner.run(3, FIXED, preset="nb-test")
    assert (outcome.number, outcome.outcome, outcome.epochs, outcome.preset) == (3, "completed", 2, "nb-test")
    assert len(outcome.learning_rates) == 2 and 0 < outcome.value <= 1 and outcome.seconds > 0
    run = runner.tracker.client.get_run(outcome.run_id)
    assert run.data.tags["worker"] == f"{socket.gethostname()}:{os.getpid()}" == outcome.worker
    assert run.data.tags["preset"] == "nb-test" and run.info.status == "FINISHED"


def test_a_trial_cut_at_trial_epochs_ends_its_schedule_there_and_keeps_its_own_epochs(runner):
    from dataclasses import replace

    cosine = {**FIXED, "epochs": 6, "schedule": "cosine", "warmup_epochs": 0}
    outcome = replace(runner, trial_epochs=2).run(0, cosine)
    assert outcome.epochs == 2 and outcome.params["epochs"] == 6  # judged on 2, retrained for its own 6
    # Its rates are a 2-epoch cosine's, down to half the peak after epoch 1, not a 6-epoch one's first third.
    assert outcome.learning_rates == pytest.approx(runner.run(1, {**cosine, "epochs": 2}).learning_rates)
    assert outcome.learning_rates[-1] < 0.6 * cosine["learning_rate"]


def test_a_pruned_trial_raises_with_its_outcome_up_to_where_it_stopped(runner):
    with pytest.raises(TrialEnded) as ended:
        runner.run(0, FIXED, prune=lambda: True)
    outcome = ended.value.outcome
    assert (outcome.outcome, outcome.epochs) == ("pruned", 1)
    assert outcome.reason == f"val accuracy {outcome.value:.4f} at epoch 1"
    assert outcome.value is not None and len(outcome.learning_rates) == 1
    assert runner.tracker.client.get_run(outcome.run_id).info.status == "KILLED"


def test_the_pruner_is_asked_only_where_a_trial_may_stop_never_for_the_floor_or_at_the_last_epoch(runner):
    asked = []

    def prune() -> bool:
        asked.append(1)
        return True

    three = {**FIXED, "epochs": 3}
    assert runner.run(0, three, preset="nb-test", prune=prune).epochs == 3  # a notebook's preset
    assert runner.run(1, three, sampled=False, prune=prune).epochs == 3  # a configuration the sweep file enqueues
    assert runner.run(2, {**FIXED, "epochs": 1}, prune=prune).outcome == "completed"  # its last epoch
    assert asked == []
    with pytest.raises(TrialEnded):
        runner.run(3, three, prune=prune)
    assert asked == [1]


def test_a_model_over_the_cost_limit_is_refused_and_a_diverging_one_failed(runner):
    runner.max_mflops = 0.01
    with pytest.raises(TrialEnded) as refused:
        runner.run(0, FIXED)
    assert refused.value.outcome.outcome == "refused" and refused.value.outcome.mflops == 0.0508  # 2 * (784*32 + 32*10)
    # A notebook's preset, or a configuration the sweep file names, is the user's own: it runs whatever it costs.
    assert runner.run(2, FIXED, preset="nb000-mlp-32").outcome == "completed"
    assert runner.run(3, FIXED, sampled=False).outcome == "completed"
    runner.max_mflops = None
    with pytest.raises(TrialEnded) as failed:
        runner.run(1, {**FIXED, "n_layers": 2, "units_l0": 64, "units_l1": 32, "dropout_l1": 0.0,
                       "optimizer": "sgd", "learning_rate": 1e4})  # weights explode in epoch 1
    assert failed.value.outcome.outcome == "failed" and "non-finite" in failed.value.outcome.reason


def test_an_outcome_survives_its_stored_form_and_ignores_keys_it_does_not_know():
    outcome = TrialOutcome(5, "completed", {"units_l0": 32}, 0.97, 3, 4.5, [1e-3, 1e-3, 3e-4], preset="p", worker="h:1")
    assert TrialOutcome.from_dict(outcome.to_dict()) == outcome
    assert TrialOutcome.from_dict({**outcome.to_dict(), "added_later": 1}) == outcome
    assert outcome.counts and not TrialOutcome(6, "refused", {}).counts


def test_a_trial_records_its_last_epochs_training_without_the_validation_pass(runner, monkeypatch):
    # The final step's estimates start from it: a validation pass, however slow, is not in it.
    import time

    import keras

    from mnist_sweep import training

    class SlowValidation(keras.callbacks.Callback):
        def on_test_end(self, logs=None):
            time.sleep(0.6)

    monkeypatch.setattr(training, "schedule_callbacks", lambda *args: [SlowValidation()])
    outcome = runner.run(0, FIXED)
    assert outcome.seconds > 1.2  # two slow validations
    assert 0 < outcome.epoch_seconds < 0.5


def test_past_the_searchs_share_a_sampled_trial_stops_at_its_epochs_end_once_one_has_completed(runner):
    import time
    from dataclasses import replace

    three = {**FIXED, "epochs": 3}
    late = replace(runner, stop_at=time.monotonic() - 1)  # the search's share of the minutes ended a second ago
    # The process's first trial completes: the final step needs a completed trial to retrain.
    assert late.run(0, three).epochs == 3
    with pytest.raises(TrialEnded) as ended:
        late.run(1, three)
    outcome = ended.value.outcome
    assert (outcome.outcome, outcome.epochs) == ("pruned", 1) and "share of the minutes" in outcome.reason
    assert late.tracker.client.get_run(outcome.run_id).info.status == "KILLED"
    # The floor runs whole: a preset and a configuration the sweep file enqueues; a trial at its last epoch ends.
    assert late.run(2, three, preset="nb-test").epochs == 3
    assert late.run(3, three, sampled=False).epochs == 3
    assert late.run(4, {**FIXED, "epochs": 1}).outcome == "completed"
    # Before its share ends, a trial trains all its epochs.
    assert replace(runner, stop_at=time.monotonic() + 600).run(5, three).epochs == 3
    # A process that begins after the study completed a trial (a resume, a memory recycle) stops its first.
    with pytest.raises(TrialEnded):
        replace(runner, stop_at=time.monotonic() - 1, has_completed=True).run(6, three)
