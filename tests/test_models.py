import numpy as np
import pytest

from mnist_sweep.models import build_model
from mnist_sweep.training import TrainingDiverged, evaluate, fit

PARAMS = {"n_layers": 2, "units_l0": 32, "units_l1": 16, "dropout_l0": 0.5, "dropout_l1": 0.0,
          "optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 32, "epochs": 1}


def test_mlp_has_one_dense_layer_per_hidden_layer_and_ten_outputs():
    model = build_model("mlp", PARAMS)
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    dropout = [layer for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert [d.units for d in dense] == [32, 16, 10]
    assert len(dropout) == 1  # a rate of 0 adds no layer
    assert model.predict(np.ones((4, 28, 28), np.float32), verbose=0).shape == (4, 10)


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
