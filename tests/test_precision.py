"""runtime/precision.py: bfloat16 where the CPU has it in hardware; a served model in float32 whatever trained it."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from mnist_sweep.runtime import precision

CNN = {"n_blocks": 2, "filters_l0": 8, "filters_l1": 8, "kernel": 3, "batch_norm": True, "dense_units": 16,
       "optimizer": "adam", "learning_rate": 3e-3, "batch_size": 32, "epochs": 3, "augment": True, "rotation": 10.0}


@pytest.mark.parametrize("flags, gpus, chosen", [({"avx512f", "amx_bf16", "amx_tile"}, 0, "bfloat16"),
                                                 ({"avx512f", "avx512_bf16"}, 0, "float32"),  # bfloat16 in software
                                                 ({"amx_bf16"}, 1, "float32")])  # a GPU trains, not the CPU
def test_auto_chooses_bfloat16_only_on_a_cpu_with_amx_and_no_gpu(monkeypatch, flags, gpus, chosen):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.resolve("auto", gpus) == chosen
    assert precision.resolve("float32", 0) == "float32" and precision.resolve("bfloat16", 1) == "bfloat16"


def test_a_model_trained_in_bfloat16_learns_and_is_served_and_saved_in_float32(tiny_mnist, tmp_path):
    import keras

    from mnist_sweep.models import ensemble
    from mnist_sweep.training import evaluate, fit

    precision.use("bfloat16")
    x, x_test = tiny_mnist.x_train.astype(np.float32) / 255, tiny_mnist.x_test.astype(np.float32) / 255
    trained = fit("cnn", CNN, x, tiny_mnist.y_train).model  # a new model, after clear_session, as each trial's
    computes = {layer.name: layer.compute_dtype for layer in trained.layers if layer.weights}
    assert set(list(computes.values())[:-1]) == {"bfloat16"} and list(computes.values())[-1] == "float32"

    served = ensemble([trained, trained])  # the Average of two served copies: every container is saved
    assert {layer.compute_dtype for layer in served.layers} == {"float32"}
    expected = trained.predict(x_test, verbose=0)
    assert np.abs(served.predict(x_test, verbose=0) - expected).max() < 0.05  # bfloat16 keeps 8 bits
    assert evaluate(served, x_test, tiny_mnist.y_test)["accuracy"] > 0.8
    served.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as saved:  # what plain Keras rebuilds the model from
        assert "bfloat16" not in saved.read("config.json").decode()
    precision.use("float32")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert np.allclose(loaded.predict(x_test, verbose=0), served.predict(x_test, verbose=0), atol=1e-6)


def _chosen_here(_: object) -> str:
    return precision.current()


def test_the_processes_a_command_starts_train_in_its_number_format():
    from mnist_sweep.runtime.parallel import run_each

    precision.use("bfloat16")
    assert list(run_each(_chosen_here, [None], 1, 1)) == ["bfloat16"]  # as the final step's members


def test_a_float32_block_gives_back_the_policy_it_found_even_within_another():
    import keras

    precision.use("bfloat16")
    with precision.in_float32():
        with precision.in_float32():  # as a served ensemble serves its members
            pass
        assert keras.mixed_precision.global_policy().name == "float32"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
