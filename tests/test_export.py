"""Every export format, loaded back with its own runtime, gives the Keras model's digits."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_sweep.export import FILES, FORMATS, write_export

# A CNN with what makes export hard: augmentation layers (training only) and batch normalisation.
CNN = {"n_blocks": 2, "filters_l0": 8, "filters_l1": 16, "dense_units": 32, "batch_norm": True, "augment": True,
       "rotation": 5.0, "zoom": 0.05, "shift": 0.05, "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128}


def run_tflite(path, x):
    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT's own: tf.lite.Interpreter is deprecated
    except (ImportError, AttributeError):  # at the floors, TensorFlow 2.16's ml_dtypes is too old for it
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter

    interpreter = Interpreter(str(path))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_savedmodel(path, x):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept: its variables die with it
    return loaded.serve(x).numpy()


def run_keras(path, x):
    import keras

    return keras.saving.load_model(path, safe_mode=True).predict(x, verbose=0)


def test_tflite_is_keras_own_litert_export_and_runs_on_the_litert_interpreter(tmp_path, monkeypatch):
    import keras

    formats, export = [], keras.Model.export

    def noted(self, *args, **kwargs):
        formats.append(kwargs.get("format"))
        return export(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "export", noted)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, "softmax")])
    folder = write_export(tmp_path / "m", model, {}, {}, {}, formats=("tflite",))
    from mnist_sweep.export import keras_has_litert

    # One export, Keras's own, not a SavedModel fed to TFLiteConverter, where Keras has it (3.13).
    assert formats == (["litert"] if keras_has_litert() else ["tf_saved_model"])
    x = np.random.default_rng(0).random((8, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(run_tflite(folder / FILES["tflite"], x), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_every_format_round_trips_with_the_same_digits_on_1000_test_images(real_data, tmp_path):
    import keras

    from mnist_sweep.data import load_mnist, scale
    from mnist_sweep.models import build_model

    mnist = load_mnist(str(real_data))
    keras.utils.set_random_seed(0)
    model = build_model("cnn", CNN)
    model.fit(scale(mnist.x_train[:5000]), mnist.y_train[:5000], batch_size=128, epochs=1, verbose=0)
    x = scale(mnist.x_test[:1000])
    digits = model.predict(x, verbose=0).argmax(axis=1)

    folder = write_export(tmp_path, model, CNN, {"model": "cnn"}, {}, FORMATS)
    runtimes = {"keras": run_keras, "savedmodel": run_savedmodel, "tflite": run_tflite, "onnx": run_onnx}
    for name in FORMATS:
        assert np.array_equal(runtimes[name](folder / FILES[name], x).argmax(axis=1), digits), name
