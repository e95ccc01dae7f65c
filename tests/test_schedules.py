"""The learning-rate schedule and the loss a model trains with besides its layers (schedules.py)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mnist_sweep.schedules import SmoothedCrossentropy, WarmupCosine, learning_rate, loss


def test_a_recorded_schedule_replays_over_fewer_or_more_epochs_as_the_same_curve():
    from mnist_sweep.schedules import stretched

    rates = [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert stretched(rates, 3) == [1.0, 0.5, 0.1]
    assert stretched(rates, 6) == rates
    assert stretched([1.0, 0.1], 4) == [1.0, 1.0, 0.1, 0.1]


def test_the_cosine_warms_up_to_its_peak_then_ends_at_a_thousandth_of_it_not_at_zero():
    rate = WarmupCosine(0.01, total_steps=100, warmup_steps=10)
    at = [float(rate(step)) for step in range(101)]
    assert at[0] == pytest.approx(0.001) and at[4] == pytest.approx(0.005)  # a tenth more of the peak each step
    assert at[9] == at[10] == pytest.approx(0.01) and max(at) == pytest.approx(0.01)
    assert at[55] == pytest.approx(0.005, rel=0.01)  # half-way down the cosine, half the peak
    assert all(a > b for a, b in zip(at[10:], at[11:]))  # only down after the warm-up
    assert at[100] == pytest.approx(1e-5) and float(rate(1000)) == pytest.approx(1e-5)  # the last steps still learn


def test_a_constant_rate_is_a_number_and_a_warm_up_longer_than_the_run_still_leaves_the_cosine_its_last_epoch():
    params = {"learning_rate": 0.01, "epochs": 3, "schedule": "constant"}
    assert learning_rate(params, 10) == 0.01 and learning_rate({**params, "schedule": "cosine"}, None) == 0.01
    rate = learning_rate({**params, "schedule": "cosine", "warmup_epochs": 5}, 10)  # 30 steps in all
    assert float(rate(19)) == pytest.approx(0.01)  # warmed up over two epochs, not five
    assert float(rate(29)) < 0.001  # and annealed by the last step


def test_label_smoothing_trains_against_a_tenth_of_s_for_each_wrong_digit():
    predicted = np.full((1, 10), 0.05, dtype=np.float32)
    predicted[0, 3] = 0.55
    target = np.full(10, 0.01)  # s = 0.1: 1 - s + s/10 for the true digit, s/10 for the nine others
    target[3] = 0.91
    expected = -float(np.sum(target * np.log(predicted[0])))
    assert float(loss({"label_smoothing": 0.1})(np.array([3]), predicted)) == pytest.approx(expected, rel=1e-5)
    assert loss({"label_smoothing": 0.0}) == "sparse_categorical_crossentropy"
    assert float(SmoothedCrossentropy(0.0)(np.array([3]), predicted)) == pytest.approx(-math.log(0.55), rel=1e-5)


def test_a_saved_model_names_its_schedule_and_loss_and_loads_back_with_them(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(WarmupCosine(0.01, 100, 10)), loss=SmoothedCrossentropy(0.1))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.001)  # the warm-up's first step, not a constant
    loaded.optimizer.iterations.assign(10)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.01)
    assert isinstance(loaded.loss, SmoothedCrossentropy) and loaded.loss.smoothing == 0.1
