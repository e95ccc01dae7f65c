"""Layers of this project's own: Keras's batch normalisation and dropout, trained in fewer ops.

Each is Keras's layer at inference, with Keras's configuration, and a served model swaps it for
Keras's own (`plain()`, models.serving_model), so exports name no class of this project's.

Keras 3 normalises a batch with separate ops (moments, then scale and shift), and its gradient
is as many again: a CNN of the field's family (24-48 filters, strided reductions) trained 1.45-
1.75x slower per epoch with it than without normalisation on one core of an Intel Xeon
(2026-12-06), against 1.2x through TensorFlow's fused kernel, at the same accuracy.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable("mnist_sweep")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training step is TensorFlow's fused kernel.

    Same weights, same configuration, same inference (Keras's own code): a served model swaps
    it for the plain layer (models.serving_model), so exports and plain Keras read it as Keras's.
    Where the fused kernel does not apply (another backend, frozen, not an image batch), it is
    Keras's layer unchanged.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not self._fused(inputs, training):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only reached on the TensorFlow backend

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)[:3]
        # The moving statistics as Keras's layer keeps them (its momentum); TensorFlow's
        # variance is the batch's unbiased one, which differs by n/(n-1), n = batch x pixels.
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1 - momentum))
        return outputs

    def _fused(self, inputs: Any, training: Any) -> bool:
        return (bool(training) and self.trainable and keras.backend.backend() == "tensorflow"
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and self.gamma is not None and self.beta is not None)

    def plain(self) -> keras.layers.BatchNormalization:
        """Keras's own layer with this one's configuration and weights."""
        config = {k: v for k, v in self.get_config().items() if k != "name"}
        layer = keras.layers.BatchNormalization(**config, name=self.name)
        layer.build(self.input.shape)
        layer.set_weights(self.get_weights())
        return layer


# Keras's dropout draws a float per activation in the layer's dtype, compares, casts and scales, and
# its gradient repeats the multiplications: a third of the MLP's training step in bfloat16 on an Intel
# Xeon (2026-12-07: 33,687-36,860 samples/s at batch 256 with it, 47,367-55,150 without). Drawn as
# 32-bit integers and turned into one mask of 0 and 1/(1 - rate), the forward pass and its gradient
# are one multiplication each. The benchmark's MLP (batch 256, epochs 2-8, two runs each, one after
# the other; Intel Xeon, 2026-12-07 from 08:45): in bfloat16 59,478 and 60,094 samples/s (medians)
# against Keras's layer's 56,566 and 56,230 (an earlier pair: 60,091 and 60,077 against 55,059 and
# 53,246), and 1 of 28 epochs near 40,000 against Keras's layer's 8 of 28; in float32 no change
# (44,739 and 45,407 against 45,514 and 45,490). So 5-13% in these 8-epoch probes, and none that
# benchmarks/throughput.py's median of epochs 2-4 could measure (53,840 samples/s against 53,494 at
# the commit before, one run each, the same session; docs/benchmarks.md).
_INT32_SPAN = 2**32


@keras.saving.register_keras_serializable("mnist_sweep")
class FastDropout(keras.layers.Dropout):
    """keras.layers.Dropout whose training step is one mask: the same rate, keeping each activation
    with probability 1 - rate and scaling it by 1 / (1 - rate), seeded by Keras's seed generator.

    Keras's layer unchanged at inference, with `noise_shape`, and on other backends."""

    def call(self, inputs: Any, training: Any = False) -> Any:
        if not (training and 0 < self.rate < 1 and self.noise_shape is None
                and keras.backend.backend() == "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf  # only reached on the TensorFlow backend

        seed = tf.cast(self.seed_generator.next(), tf.int32)
        bits = tf.random.stateless_uniform(tf.shape(inputs), seed=seed, minval=None, maxval=None, dtype=tf.int32)
        # Uniform over the int32 range: at least this with probability 1 - rate.
        kept = bits >= int(self.rate * _INT32_SPAN) - _INT32_SPAN // 2
        mask = tf.where(kept, tf.constant(1 / (1 - self.rate), inputs.dtype), tf.constant(0, inputs.dtype))

        @tf.custom_gradient
        def dropped(x: Any) -> Any:
            return x * mask, lambda upstream: upstream * mask

        return dropped(inputs)

    def plain(self) -> keras.layers.Dropout:
        """Keras's own layer with this one's configuration."""
        return keras.layers.Dropout(**self.get_config())


def as_served(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer as a served model holds it: Keras's own for this module's layers, others as they are."""
    return layer.plain() if isinstance(layer, (FusedBatchNormalization, FastDropout)) else layer
