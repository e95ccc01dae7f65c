"""training.fit: a model trained, annealed, replayed, stopped and freed as every trial and retrain is."""

import keras
import numpy as np
import pytest

from mnist_sweep.training import TrainingDiverged, evaluate, fit

PARAMS = {"n_layers": 2, "units_l0": 32, "units_l1": 16, "dropout_l0": 0.5, "dropout_l1": 0.0,
          "optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 32, "epochs": 1}


def test_training_learns_the_synthetic_digits(tiny_mnist):
    x = tiny_mnist.x_train.astype(np.float32) / 255
    params = {**PARAMS, "optimizer": "adam", "learning_rate": 3e-3, "epochs": 8}
    seen = []
    result = fit("mlp", params, x, tiny_mnist.y_train, hook=lambda epoch, metrics: seen.append(epoch))
    assert seen == list(range(1, 9)) and result.epochs_run == 8
    test = evaluate(result.model, tiny_mnist.x_test.astype(np.float32) / 255, tiny_mnist.y_test)
    assert test["accuracy"] > 0.9


def test_a_diverging_loss_stops_training_with_a_reason(tiny_mnist):
    x = tiny_mnist.x_train.astype(np.float32) / 255
    exploding = {**PARAMS, "optimizer": "sgd", "learning_rate": 1e4, "epochs": 3}
    with pytest.raises(TrainingDiverged, match="non-finite at epoch 1"):
        fit("mlp", exploding, x, tiny_mnist.y_train)


def test_an_annealed_schedule_is_replayed_exactly_without_validation(tiny_mnist):
    x = tiny_mnist.x_train.astype(np.float32) / 255
    params = {**PARAMS, "epochs": 6, "anneal": True, "anneal_factor": 0.5, "anneal_patience": 1}
    noisy_val = (x[:50], (tiny_mnist.y_train[:50] + 1) % 10)  # wrong labels: val loss stalls, so it anneals
    trial = fit("mlp", params, x, tiny_mnist.y_train, validation=noisy_val)
    rates = trial.history["learning_rate"]
    assert rates[0] == pytest.approx(1e-3) and min(rates) < 1e-3
    retrain = fit("mlp", params, x, tiny_mnist.y_train, learning_rates=rates)
    assert retrain.history["learning_rate"] == pytest.approx(rates)


def test_a_stop_that_python_swallowed_still_stops_training(tiny_mnist, monkeypatch):
    # A signal handler's KeyboardInterrupt is dropped when it lands in a garbage-collection
    # callback; the remembered request must stop training within a few batches all the same.
    import threading

    from mnist_sweep.runtime import signals

    monkeypatch.setattr(signals, "_requested", threading.Event())
    signals._requested.set()
    x = tiny_mnist.x_train.astype(np.float32) / 255
    with pytest.raises(KeyboardInterrupt):
        fit("mlp", {**PARAMS, "epochs": 5}, x, tiny_mnist.y_train)


def test_each_fit_frees_what_is_unreachable_and_leaves_later_collections_little_to_visit(tiny_mnist):
    """A trial's clean start must not cost a walk over all of TensorFlow's objects (0.25-0.4 s
    a trial on two cores), and must still free the previous trial's garbage."""
    import gc
    import weakref

    class Node:
        pass

    x = tiny_mnist.x_train.astype(np.float32) / 255
    fit("mlp", PARAMS, x, tiny_mnist.y_train)
    garbage = Node()
    garbage.cycle = garbage  # freed only by a collection, never by reference counting
    gone = weakref.ref(garbage)
    del garbage
    fit("mlp", PARAMS, x, tiny_mnist.y_train)
    assert gone() is None
    # TensorFlow and Keras alone make ~450,000 objects; one small model makes ~15,000.
    assert len(gc.get_objects()) < 100_000


def test_a_fit_traces_its_training_step_once(tiny_mnist):
    """Each trace of Keras's train step costs ~0.3 s; a variable made during the first one (the
    optimizer's moments, when Keras builds them lazily) makes TensorFlow trace it again."""
    traced = []

    def counting(model):
        step = model.train_step
        model.train_step = lambda data: (traced.append(1), step(data))[1]  # runs only while tracing

    x = tiny_mnist.x_train.astype(np.float32) / 255
    for params in (PARAMS, {**PARAMS, "optimizer": "adam", "ema": True}):
        traced.clear()
        fit("mlp", {**params, "epochs": 2}, x, tiny_mnist.y_train, on_built=counting)
        assert len(traced) == 1, params


def test_the_arrays_a_process_trains_on_become_tensors_once_and_only_the_latest_few_are_kept():
    from mnist_sweep.training import _Tensors

    tensors = _Tensors(size=2)
    first, second, third = (np.full((3, 2), value, np.float32) for value in (1, 2, 3))
    assert tensors(first) is tensors(first)  # the second fit reuses the first one's copy
    assert np.array_equal(keras.ops.convert_to_numpy(tensors(second)), second)
    tensors(third)
    assert len(tensors.kept) == 2 and id(first) not in tensors.kept  # the oldest goes: memory stays bounded
