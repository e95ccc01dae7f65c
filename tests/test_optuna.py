"""The Optuna objective and its MLflow record, on tiny synthetic data and a temporary store."""

import time

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mnist_sweep.data import search_data
from mnist_sweep.config import Settings, load_settings
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines.optuna import Objective, start_search, trials_missing
from mnist_sweep.engines.optuna_study import open_study
from mnist_sweep.space import load_space, parse_space
from mnist_sweep.tracking import Tracker

FIXED = {"n_layers": 2, "units_l0": 64, "units_l1": 32, "dropout_l0": 0.1, "dropout_l1": 0.1,
         "optimizer": "adam", "learning_rate": 3e-3, "batch_size": 32, "epochs": 3, "schedule": "constant",
         "anneal": False, "label_smoothing": 0.0, "ema": False, "augment": False,
         "early_stopping": False}


@pytest.fixture
def objective(tiny_mnist, tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {"engine": "optuna"})
    data = search_data(tiny_mnist, val_size=60, seed=0)
    return Objective(load_space("mlp"), data, tracker, parent, {"engine": "optuna", "study": "s"}, seed=0)


def trial_runs(objective):
    client = MlflowClient(objective.tracker.uri)
    return client, client.search_runs([objective.tracker.experiment_id], "tags.run_kind = 'trial'")


def test_objective_on_fixed_values_logs_a_complete_nested_run(objective):
    value = objective(optuna.trial.FixedTrial(FIXED, number=4))
    assert 0.5 < value <= 1.0
    client, runs = trial_runs(objective)
    (run,) = runs
    assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "completed"
    assert run.data.tags["mlflow.parentRunId"] == objective.parent_id and run.data.tags["trial"] == "4"
    assert {k: run.data.params[k] for k in FIXED} == {k: str(v) for k, v in FIXED.items()}
    for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2, 3]
    assert run.data.metrics["val_accuracy"] == pytest.approx(value)
    assert run.data.metrics["parameter_count"] > 0 and run.data.metrics["duration_s"] > 0


def test_a_diverging_trial_is_failed_with_its_reason(objective):
    doc = load_space("mlp").to_dict()
    doc["parameters"].update(optimizer="sgd", learning_rate=1e4)  # weights explode in epoch 1
    objective.space = parse_space(doc)
    with pytest.raises(Exception, match="non-finite"):
        objective(optuna.trial.FixedTrial({k: v for k, v in FIXED.items() if k not in doc["parameters"]
                                           or isinstance(doc["parameters"][k], dict)}))
    _, (run,) = trial_runs(objective)
    assert run.info.status == "FAILED" and run.data.tags["outcome"] == "failed"
    assert "non-finite" in run.data.tags["fail_reason"]


def test_a_sweep_goes_on_past_a_diverging_trial_to_its_target(objective):
    from mnist_sweep.engines.optuna import optimize
    from mnist_sweep.runtime.memory import MemoryBudget
    from mnist_sweep.runtime.progress import Progress

    doc = load_space("mlp").to_dict()
    doc["parameters"].update(optimizer="sgd", learning_rate={"type": "categorical", "choices": [1e4, 1e-2]})
    objective.space = parse_space(doc)
    study = optuna.create_study(direction="maximize")
    fixed = {k: v for k, v in FIXED.items() if k not in ("optimizer", "learning_rate")}
    study.enqueue_trial({**fixed, "learning_rate": 1e4})  # diverges in its first epoch
    study.enqueue_trial({**fixed, "learning_rate": 1e-2})
    study.enqueue_trial({**fixed, "learning_rate": 1e-2, "units_l0": 128})
    with Progress(2, 0) as progress:
        optimize(study, objective, 2, SearchEnds(), progress, MemoryBudget(None))
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    _, runs = trial_runs(objective)
    reasons = {r.data.tags["trial"]: (r.data.tags["outcome"], r.data.tags.get("fail_reason", "")) for r in runs}
    assert reasons["0"][0] == "failed" and "non-finite" in reasons["0"][1]
    assert reasons["1"][0] == reasons["2"][0] == "completed"


def test_a_resumed_study_draws_new_configurations_not_the_ones_it_tried(tmp_path):
    space = load_space("mlp")
    settings = Settings(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="r", sampler="random")
    tried = []
    for _ in range(2):  # the same command twice, as after Ctrl-C or a memory recycle
        study = open_study(settings, space)
        start_search(study, settings, space)
        for _ in range(3):
            trial = study.ask()
            tried.append(space.sample(trial))
            study.tell(trial, 0.5)
    assert all(tried[i] != tried[i + 3] for i in range(3))


def test_a_pruned_trial_is_killed_and_tagged_pruned(objective):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    study.enqueue_trial(FIXED)
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    _, (run,) = trial_runs(objective)
    assert run.info.status == "KILLED" and run.data.tags["outcome"] == "pruned"


def test_a_trial_at_its_last_epoch_completes_and_stays_a_candidate_for_the_final_step(objective):
    from dataclasses import replace

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    study.enqueue_trial({**FIXED, "epochs": 1})  # pruning after its one epoch would save nothing
    study.enqueue_trial({**FIXED, "epochs": 9})  # cut at trial_epochs 1: epoch 1 is its last too
    study.optimize(replace(objective, trial_epochs=1), n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert study.trials[1].user_attrs["params"]["epochs"] == 9


def test_a_configuration_the_sweep_file_enqueues_runs_after_the_presets_and_is_not_pruned(objective):
    from mnist_sweep.engines.optuna import enqueue

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    study.enqueue_trial(FIXED, user_attrs={"preset": "nb-test"})
    enqueue(study, {"wider": {**FIXED, "units_l0": 128}})
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert study.trials[1].params["units_l0"] == 128 and study.trials[1].user_attrs["enqueued"] == "wider"


def test_a_warm_start_preset_is_never_pruned_and_the_start_ups_wait_for_the_samplers_trials(objective):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    study.enqueue_trial(FIXED, user_attrs={"preset": "nb-test"})  # the floor a sweep cannot end below
    study.optimize(objective, n_trials=1)
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    start_search(study, Settings(sampler="tpe", pruner="median"), load_space("mlp"))
    assert study.pruner._n_startup_trials == 5 + 1
    assert study.sampler._n_startup_trials == 10 + 1  # TPE's ten random trials come after the presets


def _presets():
    from mnist_sweep.presets import load_presets
    return load_presets()


def test_warm_start_puts_the_fitting_presets_first_with_their_tag(objective, tmp_path):
    from mnist_sweep.engines.optuna import _queue_first_trials
    objective.space = load_space("mlp").with_max_epochs(3)  # keeps the test quick: the 3-epoch presets fit
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    _queue_first_trials(study, tuple(_presets()), objective.space, Settings())
    names = ["nb000-mlp-512", "nb000-mlp-256", "nb000-mlp-512-256"]
    study.optimize(objective, n_trials=4)
    by_number = sorted(study.trials, key=lambda t: t.number)
    assert [t.user_attrs.get("preset") for t in by_number] == names + [None]
    first = {p.name: p.params for p in _presets()}["nb000-mlp-512"]
    assert by_number[0].user_attrs["params"] == first
    _, runs = trial_runs(objective)
    assert {r.data.tags["trial"]: r.data.tags.get("preset") for r in runs} == {
        "0": names[0], "1": names[1], "2": names[2], "3": None}
    _queue_first_trials(study, tuple(_presets()), objective.space, Settings())
    assert len(study.trials) == 4  # a resumed study is not warm-started twice


def test_a_model_over_max_mflops_is_refused_untrained_and_not_counted(objective):
    from mnist_sweep.engines.optuna_study import finished_count
    objective.max_mflops = 0.1  # FIXED needs 2 * (784*64 + 64*32 + 32*10) = 0.105 MFLOPs
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(FIXED)
    study.optimize(objective, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.user_attrs["over_budget"] == 0.105
    assert finished_count(study) == 0 and "epochs_run" in trial.user_attrs and trial.user_attrs["epochs_run"] == 0
    _, (run,) = trial_runs(objective)
    assert run.data.tags["outcome"] == "refused" and "over max_mflops 0.1" in run.data.tags["prune_reason"]
    assert run.info.status == "KILLED"  # as a pruned run's: MLflow's status filters are as they were
    assert run.data.metrics["mflops"] == pytest.approx(0.105088)


def test_max_epochs_caps_the_presets_and_the_enqueued_configurations_so_they_still_run():
    from mnist_sweep.engines.optuna import _queue_first_trials

    space = load_space("cnn").with_max_epochs(1)
    study = optuna.create_study(direction="maximize")
    _queue_first_trials(study, tuple(_presets()), space, load_settings("cnn-optuna", {"max_epochs": 1}))
    asked = [study.ask() for _ in range(3)]
    points = [space.sample(trial) for trial in asked]
    assert [p["epochs"] for p in points] == [1, 1, 1] and all(space.contains(p) for p in points)
    assert [t.user_attrs.get("preset") for t in asked[:2]] == ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64"]
    assert [t.user_attrs["enqueued"] for t in asked[2:]] == ["nb003-with-techniques"]


def test_trials_caps_how_many_presets_and_enqueued_configurations_a_new_study_queues():
    # `--trials 1`: one trial runs, so one is queued; the rest would wait in the study for ever.
    from mnist_sweep.engines.optuna import _queue_first_trials

    space = load_space("cnn").with_max_epochs(1)
    for trials, queued in ((1, ["nb001-cnn-annealed-augmented"]),
                           (2, ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64"]),
                           (3, ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64", "nb003-with-techniques"])):
        study = optuna.create_study(direction="maximize")
        _queue_first_trials(study, tuple(_presets()), space,
                            load_settings("cnn-optuna", {"max_epochs": 1, "trials": trials}))
        assert [t.user_attrs.get("preset") or t.user_attrs["enqueued"] for t in study.trials] == queued


def test_refused_and_failed_trials_do_not_count_towards_trials_and_running_ones_are_on_their_way():
    """The skeleton's stop rule, as Optuna's loop applies it (Keras Tuner's oracle: test_kerastuner_space)."""
    from optuna.trial import TrialState, create_trial

    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9))
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={1: 0.5}))
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"over_budget": 40.0}))  # refused
    study.add_trial(create_trial(state=TrialState.FAIL))
    study.ask()  # running in some process
    assert trials_missing(study, 4) == 1
    assert trials_missing(study, 3) == 0


def test_a_trial_that_failed_while_a_round_waited_for_it_is_missing_for_the_next_round(objective):
    from optuna.trial import TrialState, create_trial

    from mnist_sweep.engines.optuna import OptunaSweep
    from mnist_sweep.engines.optuna_study import OptunaStudy

    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.9))
    study.add_trial(create_trial(state=TrialState.FAIL))  # seemed running while the round waited for it
    # The skeleton ends the sweep once its time is spent (engines/base.py), missing or not.
    assert OptunaSweep(OptunaStudy(study, "memory"), objective, Settings(trials=3)).missing() == 2


def test_each_round_gets_the_sweeps_one_end_to_start_trials_by(objective, monkeypatch):
    from mnist_sweep.engines import optuna as engine
    from mnist_sweep.engines.optuna import OptunaSweep
    from mnist_sweep.engines.optuna_study import OptunaStudy

    given = []
    monkeypatch.setattr(engine, "optimize", lambda study, objective, target, ends, *rest: given.append(ends))
    ends = SearchEnds(time.monotonic() + 30)
    sweep = OptunaSweep(OptunaStudy(optuna.create_study(direction="maximize"), "memory"), objective,
                        Settings(trials=3))
    sweep.run_here(None, ends)
    sweep.run_here(None, ends)  # a second round ends where the first would have
    assert given == [ends, ends]


def test_a_trial_a_ctrl_c_stops_is_queued_again_with_its_configuration_whatever_error_it_raised(objective, monkeypatch):
    from mnist_sweep.engines.optuna import optimize
    from mnist_sweep.runtime.memory import MemoryBudget
    from mnist_sweep.runtime.progress import Progress

    from mnist_sweep.runtime import signals

    def ctrl_c(*args, **kwargs):  # the stop asked for, and an MLflow call it cut short raising its own error
        monkeypatch.setattr(signals._requested, "is_set", lambda: True)
        raise RuntimeError("interrupted in a database call")

    monkeypatch.setattr(objective, "run", ctrl_c)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(FIXED, user_attrs={"preset": "nb-test"})
    with Progress(2, 0) as progress, pytest.raises(KeyboardInterrupt):
        optimize(study, objective, 2, SearchEnds(), progress, MemoryBudget(None))
    stopped, again = study.trials  # Optuna failed the one; the resume runs the other first
    assert stopped.state == optuna.trial.TrialState.FAIL and again.state == optuna.trial.TrialState.WAITING
    assert again.params == stopped.params and again.user_attrs["preset"] == "nb-test"
