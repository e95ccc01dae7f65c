import keras
import numpy as np
import pytest

from mnist_sweep.layers import FastDropout, FusedBatchNormalization


def twins(momentum=0.9):
    """The fused layer and Keras's own, built on the same images, with the same weights."""
    images = np.random.default_rng(0).normal(2.0, 3.0, (16, 7, 7, 5)).astype(np.float32)
    fused, plain = FusedBatchNormalization(momentum=momentum), keras.layers.BatchNormalization(momentum=momentum)
    for layer in (fused, plain):
        layer.build(images.shape)
    weights = [np.linspace(0.5, 1.5, 5, dtype=np.float32), np.linspace(-1, 1, 5, dtype=np.float32),
               np.full(5, 0.3, np.float32), np.full(5, 2.0, np.float32)]
    for layer in (fused, plain):
        layer.set_weights(weights)
    return images, fused, plain


def test_in_training_it_normalises_the_batch_and_moves_its_statistics_as_keras_does():
    images, fused, plain = twins()
    np.testing.assert_allclose(np.asarray(fused(images, training=True)), np.asarray(plain(images, training=True)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-5)
    # TensorFlow's kernel hands back the unbiased variance: n / (n - 1) of Keras's, n = 16 x 7 x 7.
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-2)


def test_its_gradients_are_keras_batch_normalisation_gradients():
    import tensorflow as tf

    images, fused, plain = twins()
    grads = []
    for layer in (fused, plain):
        x = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.reduce_sum(layer(x, training=True) ** 2 * tf.range(5, dtype=tf.float32))
        grads.append([np.asarray(g) for g in tape.gradient(out, [x, *layer.trainable_variables])])
    for mine, keras_own in zip(*grads):
        np.testing.assert_allclose(mine, keras_own, rtol=1e-3, atol=1e-3)


def test_at_inference_it_is_keras_layer():
    images, fused, plain = twins()
    np.testing.assert_allclose(np.asarray(fused(images, training=False)), np.asarray(plain(images, training=False)),
                               rtol=1e-6)
    assert fused.moving_mean.numpy() == pytest.approx(0.3)  # inference moves nothing


def test_a_frozen_layer_trains_as_keras_frozen_layer_does():
    images, fused, plain = twins()
    fused.trainable = plain.trainable = False
    np.testing.assert_allclose(np.asarray(fused(images, training=True)), np.asarray(plain(images, training=True)),
                               rtol=1e-6)
    assert fused.moving_mean.numpy() == pytest.approx(0.3)


def test_training_goes_through_tensorflow_fused_kernel_and_inference_does_not_need_it():
    # The layer's reason to be: one fused op in training (its speed is benchmarks/throughput.py's).
    import tensorflow as tf

    images, fused, _ = twins()

    def ops(training):
        graph = tf.function(lambda x: fused(x, training=training)).get_concrete_function(tf.constant(images)).graph
        return {op.type for op in graph.get_operations()}

    assert any(t.startswith("FusedBatchNorm") for t in ops(True))
    assert not any(t.startswith("FusedBatchNorm") for t in ops(False))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_dropout_keeps_each_activation_with_one_minus_its_rate_scaled_up_as_keras_does(dtype):
    x = np.full((400, 250), 2.0, np.float32)  # 100,000 activations: the kept share within 0.5 points
    layer = FastDropout(0.3, seed=0, dtype=dtype)
    out = np.asarray(keras.ops.convert_to_tensor(layer(x, training=True), "float32"))
    assert (out == 0).mean() == pytest.approx(0.3, abs=0.005)
    assert np.unique(out[out != 0]) == pytest.approx([2.0 / 0.7], rel=1e-2)  # bfloat16 keeps 8 bits
    assert np.array_equal(np.asarray(keras.ops.convert_to_tensor(layer(x, training=False), "float32")), x)


def test_dropout_gradient_passes_through_the_kept_activations_only_scaled_by_the_same_mask():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(64, 32)).astype(np.float32))
    layer = FastDropout(0.5, seed=3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        loss = tf.reduce_sum(out * tf.range(32, dtype=tf.float32))
    grad = np.asarray(tape.gradient(loss, x))
    kept = np.asarray(out) != 0
    np.testing.assert_allclose(grad, np.where(kept, 2.0 * np.arange(32, dtype=np.float32), 0.0), rtol=1e-6)


def test_dropout_draws_a_new_mask_each_step_and_the_same_ones_from_the_same_seed():
    x = np.ones((32, 64), np.float32)
    first, again = FastDropout(0.5, seed=7), FastDropout(0.5, seed=7)
    masks = [np.asarray(first(x, training=True)) != 0 for _ in range(2)]
    assert not np.array_equal(*masks)
    assert np.array_equal(np.asarray(again(x, training=True)) != 0, masks[0])


def test_dropout_is_served_as_keras_own_layer():
    layer = FastDropout(0.25, seed=5)
    plain = layer.plain()
    assert type(plain) is keras.layers.Dropout and (plain.rate, plain.seed) == (0.25, 5)
