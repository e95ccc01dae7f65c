"""Fit and evaluate: the one training path shared by every engine and the final retrain."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from mnist_sweep.runtime import signals
from mnist_sweep.models import build_model, fresh_session

EVAL_BATCH = 1024  # evaluation has no gradients, so a large batch is simply faster
# Keras's log names -> the names every run uses (MLflow's train_/val_ convention).
METRIC_NAMES = {"loss": "train_loss", "accuracy": "train_accuracy",
                "val_loss": "val_loss", "val_accuracy": "val_accuracy"}

EpochHook = Callable[[int, dict[str, float]], None]


class TrainingDiverged(Exception):
    """The loss became NaN or infinite: the trial fails, the sweep goes on."""


@dataclass
class Resume:
    """Training that resumes from weights saved after `epoch` epochs (Keras Tuner's Hyperband
    promotes a trial by training its parent's model on)."""

    weights: str
    epoch: int


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    seconds: float
    train_seconds: list[float]  # each epoch's training alone: no validation, no building


class _Hook(keras.callbacks.Callback):
    """Hands each epoch's metrics, renamed, to the engine; stops on a non-finite loss."""

    def __init__(self, hook: EpochHook | None):
        super().__init__()
        self.hook = hook
        self.history: dict[str, list[float]] = {}
        self.train_seconds: list[float] = []
        self.trained_at: float | None = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        signals.check()  # called once per steps_per_execution batches: cheap

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        # The rate this epoch trains with, so a retrain can replay an annealed schedule.
        self.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.epoch_began, self.trained_at = time.perf_counter(), None

    def on_test_begin(self, logs: dict | None = None) -> None:
        # Keras validates after the epoch's training: what an epoch without validation costs ends here.
        self.trained_at = self.trained_at or time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {METRIC_NAMES[k]: float(v) for k, v in (logs or {}).items() if k in METRIC_NAMES}
        metrics["learning_rate"] = self.learning_rate
        self.train_seconds.append((self.trained_at or time.perf_counter()) - self.epoch_began)
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)
        if not all(math.isfinite(v) for v in metrics.values()):
            raise TrainingDiverged(f"loss became non-finite at epoch {epoch + 1}; lower the learning rate")
        if self.hook is not None:
            self.hook(epoch + 1, metrics)


class _Tensors:
    """The few arrays a process trains on, each turned into a tensor once, not in every fit.

    Given NumPy arrays, Keras copies them into a new tensor at each fit and frees it after:
    0.1-0.35 s of a one-epoch MLP trial, and now and then a 0.8 s stall (2-core AMD EPYC).
    An entry holds its array, so the array's id cannot be reused while the entry lives."""

    def __init__(self, size: int = 4):  # the search's x, y and validation x, y; then the final's
        self.size = size
        self.kept: dict[int, tuple[np.ndarray, Any]] = {}

    def __call__(self, array: np.ndarray) -> Any:
        if id(array) not in self.kept:
            if len(self.kept) >= self.size:
                self.kept.pop(next(iter(self.kept)))  # the oldest
            self.kept[id(array)] = (array, keras.ops.convert_to_tensor(array))
        return self.kept[id(array)][1]


_tensor = _Tensors()


def fit(kind: str, params: dict[str, Any], x: np.ndarray, y: np.ndarray,
        validation: tuple[np.ndarray, np.ndarray] | None = None, hook: EpochHook | None = None,
        seed: int = 0, epochs: int | None = None, learning_rates: list[float] | None = None,
        on_built: Callable[[keras.Model], None] | None = None, resume: Resume | None = None) -> FitResult:
    """Build a fresh model from `params` and train it; `hook(epoch, metrics)` runs after each epoch.

    `resume` continues from saved weights at a later epoch, as Keras Tuner's Hyperband does.

    `learning_rates` replays a recorded per-epoch schedule: a retrain without a validation set
    cannot anneal on a plateau, so it repeats what the trial did.
    """
    fresh_session()  # each model starts from a clean graph; old ones are freed
    keras.utils.set_random_seed(seed)
    model = build_model(kind, params, steps_per_epoch=math.ceil(len(x) / int(params["batch_size"])))
    if on_built is not None:  # e.g. refuse a model too costly to train, without building it twice
        on_built(model)
    # Built here, not on the first step: a variable made inside Keras's traced train step makes
    # TensorFlow trace it twice (0.25 s a trial of 0.55 s tracing, MLP 512-512, 2-core AMD EPYC).
    # And a resumed trial restores the optimizer's moments too.
    model.optimizer.build(model.trainable_variables)
    if resume is not None:
        model.load_weights(resume.weights)
    recorder = _Hook(hook)
    callbacks = schedule_callbacks(params, validation is not None, learning_rates) + [recorder]
    began = time.perf_counter()
    if validation is not None:
        validation = (_tensor(validation[0]), _tensor(validation[1]))
    model.fit(_tensor(x), _tensor(y), batch_size=int(params["batch_size"]), epochs=int(epochs or params["epochs"]),
              initial_epoch=resume.epoch if resume else 0, validation_data=validation,
              validation_batch_size=EVAL_BATCH, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - began
    epochs_run = len(recorder.history.get("train_loss", []))
    return FitResult(model=model, history=recorder.history, epochs_run=epochs_run, seconds=seconds,
                     train_seconds=recorder.train_seconds)


def schedule_callbacks(params: dict[str, Any], has_validation: bool,
                       learning_rates: list[float] | None) -> list[keras.callbacks.Callback]:
    """Annealing on a validation plateau and early stopping, as the params ask, or a replay.

    A cosine schedule is a function of the step (schedules.py): nothing to anneal or replay."""
    callbacks: list[keras.callbacks.Callback] = []
    if params.get("ema") and has_validation:  # validation sees the averaged weights the model ends with
        callbacks.append(keras.callbacks.SwapEMAWeights())
    if params.get("schedule") == "cosine":
        pass
    elif learning_rates:
        return [keras.callbacks.LearningRateScheduler(lambda epoch, lr: learning_rates[epoch])]
    elif has_validation and params.get("anneal"):
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=float(params.get("anneal_factor", 0.3)),
            patience=int(params.get("anneal_patience", 2)), min_lr=float(params.get("anneal_min_lr", 1e-5))))
    if has_validation and params.get("early_stopping"):
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(params.get("patience", 2))))
    return callbacks


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and cross-entropy: the true one, whatever loss the model trained with."""
    return evaluate_with_predictions(model, x, y)[0]


def evaluate_with_predictions(model: keras.Model, x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """One pass over `x`: the loss and accuracy `evaluate` gives, and each image's predicted digit.

    The final step needs both from its single look at the test set (the report draws the
    confusion matrix and the misclassified digits from the predictions).
    """
    probabilities = model.predict(x, batch_size=EVAL_BATCH, verbose=0)
    predicted = probabilities.argmax(axis=1).astype(np.uint8)
    likelihood = np.clip(probabilities[np.arange(len(y)), y], keras.config.epsilon(), 1.0)
    return {"loss": float(-np.log(likelihood).mean()), "accuracy": float((predicted == y).mean())}, predicted


def parameter_count(model: keras.Model) -> int:
    return int(model.count_params())
