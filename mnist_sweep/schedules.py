"""What a model trains with besides its layers: the learning-rate schedule and the loss.

- `schedule: cosine` warms the rate up linearly for `warmup_epochs`, then lowers it along a
  half cosine to nearly nothing at the last planned epoch; a function of the step, so a
  retrain on more images follows the same curve over its own steps.
- `label_smoothing` s trains against targets of 1 - s + s/10 for the true digit and s/10 for
  the others (Keras's sparse cross-entropy has no smoothing).

Both are registered with Keras, so a saved model names them and loads back.
"""

from __future__ import annotations

import math
from typing import Any

import keras

FLOOR = 1e-3  # the cosine ends at this share of the peak rate, not at 0: the last steps still learn


@keras.saving.register_keras_serializable("mnist_sweep")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then a half cosine down to `FLOOR * peak`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1) / max(1, self.warmup_steps)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
        cosine = self.peak * (FLOOR + (1 - FLOOR) * 0.5 * (1 + ops.cos(math.pi * progress)))
        return ops.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def learning_rate(params: dict[str, Any], steps_per_epoch: int | None) -> Any:
    """The optimizer's rate: a number, or the cosine schedule over the planned epochs' steps."""
    peak = float(params["learning_rate"])
    if params.get("schedule", "constant") != "cosine" or not steps_per_epoch:
        return peak
    epochs = int(params["epochs"])
    warmup = min(epochs - 1, int(params.get("warmup_epochs", 0)))
    return WarmupCosine(peak, epochs * steps_per_epoch, max(0, warmup) * steps_per_epoch)


def stretched(rates: list[float], epochs: int) -> list[float]:
    """A trial's recorded rate per epoch, replayed over `epochs`: the same curve, shortened or lengthened."""
    return [rates[min(len(rates) - 1, epoch * len(rates) // epochs)] for epoch in range(epochs)]


@keras.saving.register_keras_serializable("mnist_sweep")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer digits against label-smoothed targets (Keras's sparse loss has none)."""

    def __init__(self, smoothing: float = 0.0, name: str = "smoothed_crossentropy", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smoothing": self.smoothing}


def loss(params: dict[str, Any]) -> Any:
    smoothing = float(params.get("label_smoothing", 0.0))
    return SmoothedCrossentropy(smoothing) if smoothing > 0 else "sparse_categorical_crossentropy"
