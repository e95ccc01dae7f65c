"""`predict`: image files of digits in, the digit and its probability out."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from test_images import save


@pytest.fixture(scope="module")
def registered(real_data, tmp_path_factory):
    """A small MLP trained on real digits, saved as a file and registered in MLflow.

    Served first, as export and the final step save and register a model: a trained one names
    this project's optimizer, which plain Keras (and `mlflow models serve`) cannot load."""
    import keras

    from mnist_sweep.data import load_mnist, scale
    from mnist_sweep.models import build_model, serving_model
    from mnist_sweep.tracking import Tracker

    folder = tmp_path_factory.mktemp("model")
    mnist = load_mnist(str(real_data))
    keras.utils.set_random_seed(0)
    model = build_model("mlp", {"n_layers": 1, "units_l0": 256, "optimizer": "adam", "learning_rate": 1e-3})
    model.fit(scale(mnist.x_train[:20000]), mnist.y_train[:20000], batch_size=128, epochs=2, verbose=0)
    model = serving_model(model)
    model.save(folder / "model.keras")
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "mnist-sweep", folder / "artifacts")
    run = tracker.start_child(tracker.parent_run("p", {}), "final", {}, {})
    uri = tracker.log_keras_model(run, model, scale(mnist.x_test[:2]))
    tracker.register(uri, "mnist-sweep-p", run, {"study": "p"})
    images = mnist.x_test[:10]
    return folder, tracker.uri, images, model.predict(scale(images), verbose=0)


@pytest.mark.slow
def test_predict_gives_the_models_digit_for_files_and_for_the_registered_model(registered, tmp_path):
    folder, uri, images, expected = registered
    files = [str(save(tmp_path / f"{i}.png", x)) for i, x in enumerate(images)]
    sure = int(np.flatnonzero(expected.max(axis=1) > 0.99)[0])  # a digit the model is sure of
    paper = np.kron(255 - images[sure], np.ones((3, 3), np.uint8))  # 84x84, dark ink on light paper
    files += [str(save(tmp_path / "paper.png", paper))]

    def predict(*source):
        done = subprocess.run([sys.executable, "-m", "mnist_sweep", "predict", *files, *source,
                               "--tracking-uri", uri], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()

    lines = predict("--model", str(folder / "model.keras"))
    for line, p in zip(lines, expected):
        assert line.endswith(f": {int(p.argmax())} (probability {p.max():.3f})"), line
    assert lines[-1].startswith(f"{files[-1]}: {int(expected[sure].argmax())} ")
    assert predict("--model", "models:/mnist-sweep-p@champion") == lines  # the registry's alias of the newest


@pytest.mark.slow
def test_the_registered_model_answers_a_rest_request_from_mlflow_models_serve(registered):
    import json
    import os
    import socket
    import time
    import urllib.request

    folder, uri, images, expected = registered
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve",
                               "-m", "models:/mnist-sweep-p@champion",
                               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                              env={**os.environ, "MLFLOW_TRACKING_URI": uri}, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"inputs": (images / 255.0).tolist()}).encode()  # the model takes scaled pixels
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    predictions = np.array(json.load(response)["predictions"])
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow models serve did not answer"
                time.sleep(2)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert np.array_equal(predictions.argmax(axis=1), expected.argmax(axis=1))
    assert np.allclose(predictions, expected, atol=1e-5)
