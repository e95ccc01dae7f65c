"""The project's spaces as Keras Tuner hyperparameters, and the oracles drawing from them."""

from __future__ import annotations

from mnist_sweep.config import Settings
from mnist_sweep.engines import kerastuner_space as kt_space
from mnist_sweep.space import load_space


def test_the_cnn_space_becomes_conditional_keras_tuner_hyperparameters():
    space = load_space("cnn")
    hp = kt_space.declare(space)
    oracle = kt_space.make_oracle(Settings(engine="kerastuner", tuner="random", space="cnn"), space)
    seen_blocks = set()
    for _ in range(40):
        values = oracle._random_values()
        params = space.sample(kt_space.Chosen(values))
        assert space.contains(params)  # exactly the active names, each in its range
        assert set(values) == set(params)  # Keras Tuner chose nothing the model ignores
        blocks = params["n_blocks"]
        seen_blocks.add(blocks)
        assert (f"filters_l{blocks}" not in values) and f"filters_l{blocks - 1}" in values
        assert ("rotation" in values) == params["augment"]
    assert seen_blocks == {2, 3}  # every block count of the CNN space
    assert "filters_l2" in {p.name for p in hp.space}


def test_hyperband_leaves_the_epochs_to_its_brackets():
    space = load_space("mlp").with_max_epochs(9)
    oracle = kt_space.make_oracle(Settings(engine="kerastuner", tuner="hyperband"), space)
    assert "epochs" not in {p.name for p in oracle.hyperparameters.space}
    assert oracle.max_epochs == 9


def test_the_same_seed_draws_the_same_trials_seed_0_too():
    space = load_space("mlp")
    for seed in (0, 7):
        settings = Settings(engine="kerastuner", tuner="random", seed=seed)
        first, second = (kt_space.make_oracle(settings, space)._random_values() for _ in range(2))
        assert first == second


def test_failed_and_invalid_trials_do_not_count_towards_trials_and_running_ones_are_on_their_way(tmp_path):
    """The skeleton's stop rule, as Keras Tuner's oracle applies it: an Optuna study of the same
    trials would start as many more."""
    from keras_tuner.engine.trial import Trial, TrialStatus

    oracle = kt_space.make_oracle(Settings(engine="kerastuner", tuner="random", trials=3), load_space("mlp"))
    oracle._set_project_dir(str(tmp_path), "stop-rule")
    statuses = [TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.INVALID, TrialStatus.RUNNING]
    for number, status in enumerate(statuses):
        oracle.trials[f"{number}"] = Trial(oracle.get_space(), trial_id=f"{number}", status=status)
    assert oracle.create_trial("worker-a").status == TrialStatus.RUNNING  # 1 counted + 1 running of 3
    assert oracle.create_trial("worker-b").status == TrialStatus.STOPPED  # 3 on their way: start no more
