"""make_optimizer(name, rate, ema): the optimizer a model compiles with.

On TensorFlow, Adam and RMSprop update each weight through TensorFlow's fused kernels, where
Keras 3 runs separate elementwise ops (the moments, then the weight), each writing a temporary
the size of the weight. Same formulas and configuration: the update alone changes, and Keras's
own runs wherever a kernel does not apply. A served model is compiled with Keras's own
optimizer (models.serving_model); these classes are registered with Keras, so a trained model
that names them loads back where mnist_sweep is imported.
"""

from __future__ import annotations

from typing import Any

import keras

# `ema: true` keeps an exponential moving average of the weights (Polyak averaging), which
# validation and the final model use; 0.99 averages over the last ~100 steps.
EMA_MOMENTUM = 0.99


def make_optimizer(name: str, rate: Any, ema: bool = False) -> keras.optimizers.Optimizer:
    """Optimizer `name` at `rate` (a number or a schedule), averaging the weights when `ema`: Keras's,
    but on TensorFlow the fused Adam and RMSprop below."""
    classes = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
        "nadam": keras.optimizers.Nadam,
        "adamw": keras.optimizers.AdamW,
    }
    if keras.backend.backend() == "tensorflow":
        classes.update(adam=FusedAdam, rmsprop=FusedRMSprop)
    return classes[name](learning_rate=rate, use_ema=ema, ema_momentum=EMA_MOMENTUM)


def _fusable(gradient: Any) -> bool:
    """TensorFlow's kernels update a whole weight from a dense gradient; a sparse one (an
    embedding's rows) or another backend's tensors go through Keras's update."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf  # only reached on the TensorFlow backend

    return not isinstance(gradient, tf.IndexedSlices)


@keras.saving.register_keras_serializable("mnist_sweep")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose update is TensorFlow's fused kernel (ResourceApplyAdam).

    Keras's update takes a dozen elementwise ops over each weight; the kernel one pass: the MLP
    784-512-256-10 at batch 256 trained an epoch of 50,000 images in ~1.20 s instead of ~1.44 s
    (Intel Xeon, 2 cores). Its formula is Keras's term for term, but TensorFlow takes 1 - beta in
    float32 where Keras takes it in float64: the weights differ by ~1e-5 of the distance they
    trained (betas whose 1 - beta is exact in float32 train the same weights to the bit). amsgrad,
    which the kernel does not do, is Keras's update; the moving average (use_ema) is Keras's
    either way, updated after this step.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.amsgrad or not _fusable(gradient):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype))


@keras.saving.register_keras_serializable("mnist_sweep")
class FusedRMSprop(keras.optimizers.RMSprop):
    """keras.optimizers.RMSprop whose update is TensorFlow's fused kernel (ResourceApplyRMSProp).

    Keras's update takes ten elementwise ops over each weight. The kernel writes each step's
    increment, lr * g / sqrt(v + epsilon), to a momentum slot before subtracting it (momentum 0
    here, so the slot's old value counts for nothing); Keras's RMSprop without momentum has no
    such slot, so this one adds it, one more copy of the weights. With it, the MLP 784-512-256-10
    at batch 256 trained an epoch of 50,000 images in 1.09 s instead of 1.19 s (medians of five
    runs, Intel Xeon, 2 cores). The velocity is Keras's formula rearranged as TensorFlow writes
    it, v + (g^2 - v)(1 - rho) in float32: the weights differ by about a unit in the last place.
    Momentum and centered, which the project never sets, are Keras's update.
    """

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        # One at a time: add_optimizer_variables, which takes the list, came in Keras 3.10; the floor is 3.8.
        self._increments = [self.add_variable_from_reference(v, "increment") for v in var_list] if self._plain() else []

    def _plain(self) -> bool:
        return self.momentum == 0 and not self.centered

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if not self._plain() or not _fusable(gradient):
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle, ms=self._velocities[index].handle, mom=self._increments[index].handle,
            lr=tf.cast(learning_rate, dtype), rho=tf.cast(self.rho, dtype), momentum=tf.zeros([], dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

    def load_own_variables(self, store: Any) -> None:
        """Also the state Keras's RMSprop saved (Hyperband's weights files from before this class):
        the same variables in the same order, without the increments, whose values count for nothing."""
        saved = len(store.keys())
        if not self.built or saved != len(self.variables) - len(self._increments):
            return super().load_own_variables(store)
        for i, variable in enumerate(self.variables[:saved]):
            variable.assign(store[str(i)])
