"""The fused Adam and RMSprop train the weights Keras's own train, and save and load back."""

import warnings

import keras
import numpy as np
import pytest

from mnist_sweep.models import build_model
from mnist_sweep.optimizers import EMA_MOMENTUM, FusedAdam, FusedRMSprop, make_optimizer
from mnist_sweep.schedules import WarmupCosine

STEPS = 20
KERAS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
FUSED = {"adam": FusedAdam, "rmsprop": FusedRMSprop}
KERNELS = {"adam": "ResourceApplyAdam", "rmsprop": "ResourceApplyRMSProp"}


def small_model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def batches(steps=STEPS, batch=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(steps * batch, 20)).astype(np.float32), rng.integers(0, 10, steps * batch)


def trained(optimizer):
    """A small dense network's weights before and after STEPS batches with `optimizer` (fixed seeds)."""
    model = small_model(optimizer)
    initial = model.get_weights()
    x, y = batches()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    return initial, model.get_weights()


def assert_same_training(fused, plain, initial):
    """Equal within float rounding: TensorFlow's kernels take 1 - beta in float32 where Keras takes
    it in float64, which moves Adam's weights by ~1e-5 of the distance they trained."""
    moved = max(float(np.abs(p - i).max()) for p, i in zip(plain, initial))
    for f, p in zip(fused, plain):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-4 * moved)


@pytest.mark.parametrize("ema", [False, True], ids=["", "ema"])
@pytest.mark.parametrize("rate", [1e-3, WarmupCosine(1e-2, STEPS, 5)], ids=["constant", "cosine"])
@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_the_fused_optimizers_train_the_weights_keras_optimizers_train(monkeypatch, name, rate, ema):
    import tensorflow as tf

    kernel, calls = getattr(tf.raw_ops, KERNELS[name]), []
    monkeypatch.setattr(tf.raw_ops, KERNELS[name], lambda **kwargs: (calls.append(1), kernel(**kwargs))[1])
    initial, plain = trained(KERAS[name](learning_rate=rate, use_ema=ema, ema_momentum=EMA_MOMENTUM))
    assert not calls
    _, fused = trained(make_optimizer(name, rate, ema))
    assert calls  # the project's optimizers trained through TensorFlow's kernel, not Keras's update
    assert_same_training(fused, plain, initial)
    if ema:  # the model ends with the average of its weights, not with its last ones
        _, last = trained(make_optimizer(name, rate))
        assert not np.allclose(fused[0], last[0], rtol=1e-3)


@pytest.mark.parametrize("fused, plain", [
    (lambda: FusedAdam(amsgrad=True), lambda: keras.optimizers.Adam(amsgrad=True)),
    (lambda: FusedRMSprop(momentum=0.5), lambda: keras.optimizers.RMSprop(momentum=0.5)),
    (lambda: FusedRMSprop(centered=True), lambda: keras.optimizers.RMSprop(centered=True)),
], ids=["amsgrad", "momentum", "centered"])
def test_what_the_kernels_are_not_used_for_is_keras_update_unchanged(fused, plain):
    initial, expected = trained(plain())
    _, got = trained(fused())
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    assert not np.array_equal(expected[0], initial[0])


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_a_saved_model_loads_back_with_its_fused_optimizer_and_its_state(tmp_path, name):
    model = build_model("mlp", {"n_layers": 1, "units_l0": 16, "optimizer": name, "learning_rate": 1e-3})
    x = np.random.default_rng(0).random((64, 28, 28), dtype=np.float32)
    model.fit(x, np.arange(64) % 10, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is FUSED[name]
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for got, saved in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(saved))


def test_rmsprop_continues_from_weights_keras_rmsprop_saved(tmp_path):
    """Hyperband continues a trial from its parent's weights file, optimizer included: a file saved
    with Keras's RMSprop (before the fused one) has no increments, and gives back the rest."""
    plain = small_model(keras.optimizers.RMSprop())
    x, y = batches(steps=2)
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0)
    plain.save_weights(tmp_path / "parent.weights.h5")
    fused = small_model(FusedRMSprop())
    fused.optimizer.build(fused.trainable_variables)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns, and loads nothing, when the counts differ
        fused.load_weights(tmp_path / "parent.weights.h5")
    kept = fused.optimizer.variables[:len(plain.optimizer.variables)]
    for got, saved in zip(kept, plain.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(saved))
    assert int(fused.optimizer.iterations) == 2
