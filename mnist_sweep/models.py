"""build_model(kind, params): a compiled Keras model from a plain dict of values."""

from __future__ import annotations

import gc
import math
from typing import Any

import keras
import numpy as np

from mnist_sweep.costs import STRIDED_KERNEL
from mnist_sweep.layers import FastDropout, FusedBatchNormalization, as_served
from mnist_sweep.optimizers import make_optimizer
from mnist_sweep.runtime import precision
from mnist_sweep.schedules import learning_rate, loss
from mnist_sweep.space import layer_values

INPUT_SHAPE = (28, 28)  # every model takes scaled images as they are; reshaping is its first layer
# Several batches per call into TensorFlow: on this 2-core CPU it cut an MLP epoch from
# 6.8 s to 4.8 s (512-256, batch 64) with identical results, by saving per-step overhead.
STEPS_PER_EXECUTION = 32


def build_model(kind: str, params: dict[str, Any], steps_per_epoch: int | None = None) -> keras.Model:
    """A compiled model for `kind` ('mlp' or 'cnn'); labels are integer digits.

    `steps_per_epoch` lets a cosine schedule span the planned epochs (without it the rate is flat)."""
    builders = {"mlp": _mlp, "cnn": _cnn}
    model = builders[kind](params)
    model.compile(
        optimizer=make_optimizer(params["optimizer"], learning_rate(params, steps_per_epoch),
                                 bool(params.get("ema"))),
        loss=loss(params),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


def fresh_session() -> None:
    """Keras's clear_session, with a garbage collection that visits only what is new.

    Keras's own collection (free_memory=True) visits every object of the process, TensorFlow's
    modules included: 0.25-0.4 s before each trial on a 2-core AMD EPYC, a sixth of a one-epoch
    MLP trial. What survives a collection here is start-up state or what Keras keeps of each
    model for the life of the process (runtime/memory.py), so it is frozen out of later ones
    (gc.freeze); they then take milliseconds. Objects unreachable in cycles are freed as before.
    """
    keras.backend.clear_session(free_memory=False)
    gc.collect()
    gc.freeze()
    precision.apply()  # clear_session forgets the number format


def forward_mflops(model: keras.Model) -> float:
    """Millions of floating-point operations to classify one image (multiply-adds count two).

    Convolutions and dense layers are nearly all of it: each applies its kernel once per output
    position. Training costs about three times this (forward, and two products backwards).
    """
    flops = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            positions = math.prod(layer.output.shape[1:-1])  # 1 for a dense layer
            flops += 2 * math.prod(kernel.shape) * positions
    return flops / 1e6


def serving_model(model: Any, name: str | None = None) -> Any:
    """The trained network as users load it: without its training-only random layers
    (augmentation) and compiled with Keras's own loss and accuracy, whatever it trained with.

    The random layers pass images through unchanged at inference, but their random ops stay in
    an exported graph, and TFLite has no kernels for them. A loss, a layer or an optimizer of this
    project's (label smoothing, the fused batch normalisation, the dropout, the fused Adam and RMSprop) would
    make plain Keras unable to load the file without importing mnist_sweep.
    """
    if not isinstance(model, keras.Sequential):  # an ensemble(): its members are served already
        return model
    random = (keras.layers.RandomRotation, keras.layers.RandomZoom, keras.layers.RandomTranslation)
    kept = [as_served(layer) for layer in model.layers if not isinstance(layer, random)]
    with precision.in_float32():  # the Sequential's own policy too: its saved config names it
        served = keras.Sequential([keras.Input(model.input_shape[1:]), *kept], name=name or model.name)
        if any(layer.dtype_policy.name != "float32" for layer in served.layers):
            served = _in_float32(served)
        _compile_served(served)
        served(np.zeros((1, *model.input_shape[1:]), np.float32))  # Keras exports only a model that has run
    return served


def _in_float32(model: keras.Sequential) -> keras.Sequential:
    """The same network computing in float32: a model trained in mixed precision keeps float32
    weights, so they carry over whole, and what is exported holds no bfloat16 operation."""
    def float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    clone = keras.models.clone_model(model, clone_function=float32)
    clone.set_weights(model.get_weights())
    return clone


def ensemble(members: list[keras.Model]) -> keras.Model:
    """One model that averages the class probabilities of `members` (served, as serving_model gives them)."""
    if len(members) == 1:
        return serving_model(members[0])
    served = [serving_model(m, f"{m.name}_{i}") for i, m in enumerate(members)]  # names are unique in a graph
    with precision.in_float32():  # the members serve in float32; so do their average and the container
        inputs = keras.Input(INPUT_SHAPE)
        model = keras.Model(inputs, keras.layers.Average()([m(inputs) for m in served]), name="ensemble")
        _compile_served(model)
    return model


def _compile_served(model: keras.Model) -> None:
    """Keras's own loss and accuracy, so that `evaluate` works; a served model never trains.

    With SGD, not Keras's default RMSprop: that is saved unbuilt and built on load, so every load
    warned of the optimizer variables it skipped (five warnings in each CNN final step's export);
    plain SGD has no variables but its step and rate."""
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _inputs(params: dict[str, Any]) -> list[keras.layers.Layer]:
    """The image as a 28x28x1 tensor, randomly shifted, zoomed and rotated when `augment` is on.

    Keras's random layers act in training only, so validation, test and export see the digit
    as it is. There is no flip: a mirrored 2 or 5 is not a digit.
    """
    layers = [keras.Input(INPUT_SHAPE), keras.layers.Reshape((*INPUT_SHAPE, 1))]
    if params.get("augment"):
        rotation, zoom, shift = (float(params.get(k, 0.0)) for k in ("rotation", "zoom", "shift"))
        if rotation > 0:  # degrees in the space; Keras wants a fraction of a full turn
            layers.append(keras.layers.RandomRotation(rotation / 360, fill_mode="constant"))
        if zoom > 0:
            layers.append(keras.layers.RandomZoom((-zoom, zoom), fill_mode="constant"))
        if shift > 0:
            layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="constant"))
    return layers


def _mlp(params: dict[str, Any]) -> keras.Model:
    layers = _inputs(params) + [keras.layers.Flatten()]
    units = layer_values(params, "units", "n_layers")
    dropouts = layer_values(params, "dropout", "n_layers", default=0.0)
    for width, rate in zip(units, dropouts):
        layers.append(keras.layers.Dense(width, activation="relu"))
        if rate > 0:
            layers.append(FastDropout(rate))
    layers.append(_output())
    return keras.Sequential(layers, name="mlp")


def _cnn(params: dict[str, Any]) -> keras.Model:
    """Blocks of one or two convolutions, a reduction and dropout, then one dense layer.

    A block's reduction halves the image: 2x2 max pooling (both notebooks), or with
    `reduction: strided` a 5x5 convolution of stride 2 that learns its own downsampling (the
    batch-normalised networks that reach 99.6% and more on MNIST use it)."""
    layers = _inputs(params)
    padding, batch_norm = params.get("padding", "same"), bool(params.get("batch_norm"))
    strided = params.get("reduction", "max") == "strided"
    blocks = zip(*(layer_values(params, name, "n_blocks", default)
                   for name, default in (("filters", None), ("kernel", 3), ("convs", 1),
                                         ("block_dropout", 0.0), ("pool", True))))
    for filters, kernel, convs, rate, pool in blocks:
        for _ in range(int(convs)):
            layers += _conv(int(filters), int(kernel), padding, batch_norm)
        if pool:
            layers += (_conv(int(filters), STRIDED_KERNEL, "same", batch_norm, strides=2) if strided
                       else [keras.layers.MaxPooling2D()])
        if rate > 0:
            layers.append(FastDropout(rate))
    layers += [keras.layers.Flatten(), keras.layers.Dense(int(params["dense_units"]), activation="relu")]
    if params.get("dense_dropout", 0.0) > 0:
        layers.append(FastDropout(params["dense_dropout"]))
    layers.append(_output())
    return keras.Sequential(layers, name="cnn")


def _output() -> keras.layers.Layer:
    """The ten digits' probabilities, in float32 whatever the other layers compute in: bfloat16
    keeps 8 bits of a probability, and the loss of a confident right answer would round to 0."""
    return keras.layers.Dense(10, activation="softmax", dtype="float32")


def _conv(filters: int, kernel: int, padding: str, batch_norm: bool, strides: int = 1) -> list[keras.layers.Layer]:
    if not batch_norm:
        return [keras.layers.Conv2D(filters, kernel, strides, padding=padding, activation="relu")]
    # Normalise before the non-linearity; the normalisation's shift makes a bias redundant.
    # Momentum 0.9, not Keras's 0.99: the moving statistics that validation uses need ~500
    # steps to settle at 0.99, longer than a trial's first epoch on 10,000 images, and
    # Hyperband judges trials after that epoch. Measured: 1 epoch of batch 64 scored 44% at
    # 0.99 against 94% training accuracy.
    return [keras.layers.Conv2D(filters, kernel, strides, padding=padding, use_bias=False),
            FusedBatchNormalization(momentum=0.9), keras.layers.Activation("relu")]
