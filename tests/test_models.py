"""build_model: the networks each kind of trial builds (sizes, layers, augmentation) and their ensemble."""

import warnings

import keras
import numpy as np
import pytest

from mnist_sweep.models import build_model, forward_mflops
from mnist_sweep.training import fit

PARAMS = {"n_layers": 2, "units_l0": 32, "units_l1": 16, "dropout_l0": 0.5, "dropout_l1": 0.0,
          "optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 32, "epochs": 1}


def test_mlp_has_one_dense_layer_per_hidden_layer_and_ten_outputs():
    model = build_model("mlp", PARAMS)
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.units for d in dense] == [32, 16, 10]
    assert len(dropout) == 1  # a rate of 0 adds no layer
    assert model.predict(np.ones((4, 28, 28), np.float32), verbose=0).shape == (4, 10)


CNN = {"n_blocks": 2, "filters_l0": 8, "filters_l1": 16, "kernel_l0": 5, "kernel_l1": 3, "convs_l0": 2,
       "convs_l1": 1, "block_dropout_l0": 0.25, "block_dropout_l1": 0.0, "dense_units": 32,
       "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32, "epochs": 1}


def layer_names(model):
    return [layer.__class__.__name__ for layer in model.layers]


def test_cnn_blocks_follow_the_per_block_parameters():
    model = build_model("cnn", CNN)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size) for c in convs] == [(8, (5, 5)), (8, (5, 5)), (16, (3, 3))]
    assert layer_names(model).count("MaxPooling2D") == 2 and layer_names(model).count("FastDropout") == 1
    assert model.output_shape == (None, 10)
    normalised = build_model("cnn", {**CNN, "batch_norm": True})
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in normalised.layers) == 3


def test_the_notebook_003_network_has_its_published_size():
    params = {"n_blocks": 3, "filters_l0": 32, "filters_l1": 64, "filters_l2": 64, "kernel": 3, "pool_l2": False,
              "padding": "valid", "dense_units": 64, "optimizer": "rmsprop", "learning_rate": 1e-3,
              "batch_size": 64, "epochs": 5}
    model = build_model("cnn", params)
    assert model.count_params() == 93_322  # as its model.summary() printed
    # Multiply-adds by hand: 26x26x(3x3x32) + 11x11x(3x3x32x64) + 3x3x(3x3x64x64) + 576x64 + 64x10.
    assert forward_mflops(model) == pytest.approx(2 * 2_794_240 / 1e6)


def test_augmentation_moves_digits_but_never_flips_them():
    params = {**CNN, "augment": True, "rotation": 10.0, "zoom": 0.1, "shift": 0.1}
    model = build_model("cnn", params)
    random_layers = [layer for layer in model.layers if layer.__class__.__name__.startswith("Random")]
    assert [layer.__class__.__name__ for layer in random_layers] == ["RandomRotation", "RandomZoom",
                                                                     "RandomTranslation"]
    image = np.zeros((64, 28, 28, 1), np.float32)
    image[:, 3:25, 5:12] = 1.0  # a thick "L": both of its mirror images differ from it
    image[:, 18:25, 5:23] = 1.0
    out = image
    for layer in random_layers:
        out = keras.ops.convert_to_numpy(layer(out, training=True))
    assert not np.allclose(out, image)  # it did transform the digits

    def similarity(a, b):  # cosine similarity, best over the shifts augmentation may apply
        best = np.zeros(len(a))
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                moved = np.roll(b, (dy, dx), axis=(1, 2))
                cos = (a * moved).sum(axis=(1, 2, 3)) / np.sqrt((a * a).sum(axis=(1, 2, 3))
                                                                * (moved * moved).sum(axis=(1, 2, 3)))
                best = np.maximum(best, cos)
        return best

    assert (similarity(out, image) > similarity(out, image[:, :, ::-1])).all()
    assert (similarity(out, image) > similarity(out, image[:, ::-1, :])).all()
    inference = keras.ops.convert_to_numpy(model.layers[2](image, training=False))
    assert np.array_equal(inference, image)  # validation, test and export see the digit unchanged


def test_a_batch_normalised_cnn_is_judged_fairly_after_its_first_short_epoch():
    # Hyperband ranks trials after epoch 1; the moving statistics validation uses must have
    # caught up by then, or every batch-normalised model looks broken and is pruned.
    from conftest import synthetic_arrays

    arrays = synthetic_arrays(n_train=1500, n_test=500)
    x, y = arrays["x_train"].astype(np.float32) / 255, arrays["y_train"]
    x_val, y_val = arrays["x_test"].astype(np.float32) / 255, arrays["y_test"]
    params = {**CNN, "batch_norm": True, "epochs": 1}
    result = fit("cnn", params, x, y, validation=(x_val, y_val))
    # Measured: with Keras's default momentum (0.99) val_loss was 1.53 against 0.61 in training.
    assert result.history["val_loss"][0] < result.history["train_loss"][0]


def test_an_ensemble_averages_its_members_and_saves_as_one_plain_keras_model(tiny_mnist, tmp_path):
    from mnist_sweep.models import ensemble

    x = tiny_mnist.x_train.astype(np.float32) / 255
    trained = {**CNN, "augment": True, "shift": 0.1, "label_smoothing": 0.1, "batch_norm": True}
    members = [fit("cnn", trained, x, tiny_mnist.y_train, seed=seed).model for seed in (0, 1)]
    model = ensemble(members)
    expected = np.mean([m.predict(x[:20], verbose=0) for m in members], axis=0)
    assert np.allclose(model.predict(x[:20], verbose=0), expected, atol=1e-6)
    model.save(tmp_path / "ensemble.keras")
    import zipfile  # plain Keras reads it: it names no class of this project's (loss, layers, optimizer)
    assert "mnist_sweep" not in zipfile.ZipFile(tmp_path / "ensemble.keras").read("config.json").decode()
    with warnings.catch_warnings(record=True) as caught:  # each member's unbuilt optimizer warned on load
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "ensemble.keras", safe_mode=True)  # no project code needed
    assert [str(w.message) for w in caught] == []
    assert np.allclose(loaded.predict(x[:20], verbose=0), expected, atol=1e-6)
