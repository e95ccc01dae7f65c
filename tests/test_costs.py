import pytest

from mnist_sweep.costs import mflops, unbuildable
from mnist_sweep.models import build_model, forward_mflops
from mnist_sweep.presets import load_presets

CNN = {"n_blocks": 2, "filters_l0": 8, "filters_l1": 16, "kernel_l0": 5, "kernel_l1": 3, "convs_l0": 2,
       "convs_l1": 1, "dense_units": 32, "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "epochs": 1}
# The batch-normalised family of the field's 99.6% networks: two convolutions of 3x3, then a strided 5x5, twice.
STRIDED = {**CNN, "filters_l0": 32, "filters_l1": 64, "kernel_l0": 3, "kernel_l1": 3, "convs_l1": 2,
           "reduction": "strided", "batch_norm": True, "dense_units": 128}


@pytest.mark.parametrize("kind, params", [
    *((p.model, p.params) for p in load_presets()),
    ("cnn", CNN), ("cnn", STRIDED), ("cnn", {**STRIDED, "n_blocks": 3, "filters_l2": 24, "kernel_l2": 5}),
    ("cnn", {**CNN, "padding": "valid", "pool_l1": False}), ("cnn", {**STRIDED, "padding": "valid"}),
])
def test_the_cost_without_building_is_what_the_built_model_costs(kind, params):
    """The search caps widths by this figure before TensorFlow builds anything: it must be the model's."""
    assert mflops(kind, params) == pytest.approx(forward_mflops(build_model(kind, params)), rel=1e-9)


def test_the_field_network_costs_what_its_layers_add_up_to():
    # By hand: 28x28 (3x3x1x32 + 3x3x32x32), 14x14 (5x5x32x32 + 3x3x32x64 + 3x3x64x64), 7x7 (5x5x64x64),
    # then 3136x128 + 128x10 multiply-adds, two operations each.
    macs = 784 * (288 + 9216) + 196 * (25600 + 18432 + 36864) + 49 * 102400 + 3136 * 128 + 1280
    assert mflops("cnn", STRIDED) == pytest.approx(2 * macs / 1e6)


def test_a_network_with_no_pixel_left_is_named_unbuildable():
    unpadded = {**CNN, "padding": "valid", "n_blocks": 3, "filters_l2": 8, "kernel_l0": 5, "kernel_l1": 5,
                "kernel_l2": 5, "convs_l0": 2, "convs_l1": 2}  # 28 -> 20 -> 10 -> 2 -> 1 -> none
    assert unbuildable("cnn", unpadded) == "no pixel is left after block 3 (unpadded convolutions and pooling)"
    assert unbuildable("cnn", {**unpadded, "n_blocks": 2}) is None
    # A strided reduction rounds up (it pads), where pooling rounds down: with a 1x1 third block,
    # 28 -> 20 -> 10 -> 2 -> 1 -> 1, then pooling leaves 0 pixels and a stride of 2 leaves 1.
    one_by_one = {**unpadded, "kernel_l2": 1, "convs_l2": 1}
    assert unbuildable("cnn", one_by_one) is not None
    assert unbuildable("cnn", {**one_by_one, "reduction": "strided"}) is None
    assert build_model("cnn", {**one_by_one, "reduction": "strided"}).output_shape == (None, 10)


def _at_lows(space, values: dict) -> dict:
    """`values` with every convolution count and width at the low of its range: the structure's cheapest network."""
    from mnist_sweep.costs import GROWING

    return {**values, **{name: p.low for p in space.params if p.name in GROWING and p.active(values)
                         for name in p.names(values)}}


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_cnn_sweep_draws_every_network_within_its_cost_limit_where_its_structure_allows(sampler):
    """Draws are made within max_mflops, not refused after they are made: of 300 of the shipped CNN
    sweep's, the only ones over its limit are those whose structure (blocks, kernels, pooling,
    padding, drawn first) is over it at its narrowest, and the range is kept (the limit does not
    squeeze every draw small)."""
    import optuna

    from mnist_sweep.config import load_settings
    from mnist_sweep.costs import CostBound
    from mnist_sweep.space import load_space

    space, limit = load_space("cnn"), load_settings("cnn-optuna", {}).max_mflops
    samplers = {"random": optuna.samplers.RandomSampler(seed=0),
                "tpe": optuna.samplers.TPESampler(seed=0, n_startup_trials=20)}
    study = optuna.create_study(direction="maximize", sampler=samplers[sampler])
    within, over = [], []
    for _ in range(300):
        trial = study.ask()
        values = space.sample(trial, within=CostBound(space, limit))
        cost = mflops("cnn", values) if unbuildable("cnn", values) is None else 0.0
        if cost:
            (within if cost <= limit else over).append(values)
        study.tell(trial, cost if cost <= limit else 0.0)  # TPE chases the cost
    assert all(mflops("cnn", _at_lows(space, v)) > limit for v in over)
    assert max(mflops("cnn", v) for v in within) > 0.8 * limit
    assert len(within) >= 200  # at most a third left out: over at their narrowest, or no pixel left


def test_without_the_bound_the_same_draws_go_over_the_limit():
    import optuna

    from mnist_sweep.config import load_settings
    from mnist_sweep.space import load_space

    space, limit = load_space("cnn"), load_settings("cnn-optuna", {}).max_mflops
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = [space.sample(study.ask()) for _ in range(200)]
    assert sum(mflops("cnn", v) > limit for v in draws if unbuildable("cnn", v) is None) >= 20
