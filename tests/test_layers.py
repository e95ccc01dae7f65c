import keras
import numpy as np
import pytest

from mnist_sweep.layers import FusedBatchNormalization


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
