"""Against what users write by hand: a plain Optuna sweep of the same MLP space, then the default sweep.

The peer is what a user writes from optuna-examples (keras/keras_simple.py, mlflow/keras_mlflow.py):
an objective that builds the model from `trial.suggest_*`, TPE, the median pruner through
optuna_integration's KerasPruningCallback, MLflowCallback for the runs, 50 trials in one process,
and a final retrain of the best on all 60,000 training images tested once. It searches the
parameters of search_spaces/mlp.yaml with their ranges, in plain Keras (none of this project's
code). Then `python -m mnist_sweep optuna --trials 50` runs as a user runs it. Both run one
after the other on the same machine, each from an empty folder; the table gives their wall
time, epochs trained, best validation and test accuracy, and the ratio of the wall times.
Target: the default sweep takes at most 0.25x the peer's time at a test accuracy at least 0.2
points above it.

    pip install -e '.[peer]'                                              # optuna-integration, for the peer
    python benchmarks/peer.py --data ../shared/data/mnist.npz            # ~25 min
    python benchmarks/peer.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~2 min
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu, headline

TARGET_RATIO, TARGET_POINTS = 0.25, 0.2
ROOT = Path(__file__).resolve().parents[1]


def create_model(trial, keras):
    """The model of one trial, from the MLP space's parameters, as optuna-examples builds one."""
    layers = [keras.Input((28, 28))]
    if trial.suggest_categorical("augment", [False, True]):
        shift = trial.suggest_float("shift", 0.02, 0.12)
        layers += [keras.layers.Reshape((28, 28, 1)),
                   keras.layers.RandomTranslation(shift, shift, fill_mode="constant")]
    layers.append(keras.layers.Flatten())
    for i in range(trial.suggest_int("n_layers", 1, 3)):
        layers.append(keras.layers.Dense(trial.suggest_int(f"n_units_l{i}", 16, 1024, log=True), activation="relu"))
        layers.append(keras.layers.Dropout(trial.suggest_float(f"dropout_l{i}", 0.0, 0.5)))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[
        trial.suggest_categorical("optimizer", ["rmsprop", "adam"])](learning_rate=rate)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def callbacks(trial, keras) -> list:
    chosen = []
    if trial.suggest_categorical("anneal", [False, True]):
        chosen.append(keras.callbacks.ReduceLROnPlateau(factor=trial.suggest_float("anneal_factor", 0.1, 0.5),
                                                        patience=trial.suggest_int("anneal_patience", 1, 3),
                                                        min_lr=1e-5))
    if trial.suggest_categorical("early_stopping", [False, True]):
        chosen.append(keras.callbacks.EarlyStopping(patience=trial.suggest_int("patience", 2, 5)))
    return chosen


def run_peer(data_path: str, trials: int, limit: int | None, folder: Path, max_epochs: int = 30) -> dict:
    """The hand-written sweep, in this process: its time, epochs, best validation, test accuracy."""
    import keras
    import numpy as np
    import optuna
    from optuna_integration import KerasPruningCallback, MLflowCallback

    began = time.perf_counter()
    with np.load(data_path) as npz:
        x, y, x_test, y_test = (npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    x, x_test = x.astype("float32") / 255, x_test.astype("float32") / 255
    x_train, y_train, x_val, y_val = x[:50000][:limit], y[:50000][:limit], x[50000:], y[50000:]
    epochs_trained = []

    def objective(trial):
        keras.backend.clear_session()
        model = create_model(trial, keras)
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), verbose=0,
                            batch_size=trial.suggest_categorical("batch_size", [32, 64, 100, 128, 256]),
                            epochs=min(trial.suggest_int("epochs", 3, 30), max_epochs),
                            callbacks=[KerasPruningCallback(trial, "val_accuracy"), *callbacks(trial, keras)])
        epochs_trained.append(len(history.history["loss"]))
        return history.history["val_accuracy"][-1]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner())
    tracking = MLflowCallback(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", metric_name="val_accuracy")
    study.optimize(objective, n_trials=trials, callbacks=[tracking])
    best = optuna.trial.FixedTrial(study.best_params)
    keras.backend.clear_session()
    model = create_model(best, keras)
    model.fit(x[:limit], y[:limit], batch_size=study.best_params["batch_size"],
              epochs=min(study.best_params["epochs"], max_epochs),
              verbose=0)  # without a validation set: no annealing or early stopping on it
    _, test = model.evaluate(x_test, y_test, verbose=0)
    return {"seconds": round(time.perf_counter() - began, 1), "epochs": sum(epochs_trained),
            "best_val": round(study.best_value, 4), "test": round(float(test), 4),
            "completed": sum(t.state.name == "COMPLETE" for t in study.trials)}


def run_default(data_path: str, trials: int, extra: list[str], folder: Path) -> dict:
    """`python -m mnist_sweep optuna --trials N`, as a user runs it, from an empty folder."""
    from mnist_sweep.outcomes import Outcome  # the word the progress lines print for a completed trial

    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mnist_sweep", "optuna", "--trials", str(trials), "--data", data_path,
                           *extra], cwd=folder, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - began
    test = float(re.search(r"test_accuracy (\d\.\d+)", done.stdout).group(1))
    # A line per trial, on stderr beside the progress bar (the sweep's own process prints them all).
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("trial ")]
    epochs = sum(int(re.search(r"epochs\s+(\d+)", line).group(1)) for line in lines)
    scored = (re.search(rf"{Outcome.COMPLETED}\s+val_acc (\d\.\d+)", line) for line in lines)
    best = max(float(m.group(1)) for m in scored if m)
    # What the final step retrained, and on what budget: with two workers one seed's test accuracy
    # moves from run to run with the time the search leaves it.
    final = [line for line in done.stdout.splitlines() if line.startswith(("the final step", "final model"))]
    return {"seconds": round(seconds, 1), "epochs": epochs, "best_val": best, "test": test,
            "completed": sum(f" {Outcome.COMPLETED} " in line for line in lines), "final_step": final}


def _require_peer(parser: argparse.ArgumentParser) -> None:
    """optuna-integration is an extra (peer): missing, say so in one line before anything runs."""
    from mnist_sweep.errors import UserError, require_extra

    try:
        require_extra("optuna_integration", "peer", "the hand-written sweep (KerasPruningCallback, MLflowCallback)")
    except UserError as err:
        parser.exit(2, f"peer.py: error: {err}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 3 trials of at most 1 epoch on 2,000 images")
    parser.add_argument("--out", default="benchmarks/results/peer.json")
    args = parser.parse_args()
    _require_peer(parser)
    data = os.path.abspath(args.data)
    trials, limit, epochs = (3, 2000, 1) if args.quick else (args.trials, None, 30)
    # The smoke run checks the path: few images, one process, one final model (no member processes).
    extra = (["--train-limit", "3000", "--max-epochs", "1", "--workers", "1", "--final-models", "1"]
             if args.quick else [])
    with tempfile.TemporaryDirectory() as peer_folder, tempfile.TemporaryDirectory() as ours_folder:
        peer = run_peer(data, trials, limit, Path(peer_folder), epochs)
        ours = run_default(data, trials, extra, Path(ours_folder))
    # Rounded once, as recorded: the line printed then says what the file holds.
    ratio, points = round(ours["seconds"] / peer["seconds"], 3), round(100 * (ours["test"] - peer["test"]), 2)
    print(headline())
    print(f"{'sweep':34s}{'wall':>8s}{'epochs':>8s}{'completed':>11s}{'best val':>10s}{'test':>8s}")
    for name, run in (("hand-written Optuna (peer)", peer), ("python -m mnist_sweep optuna", ours)):
        print(f"{name:34s}{run['seconds']:7.0f}s{run['epochs']:8d}{run['completed']:11d}{run['best_val']:10.4f}"
              f"{run['test']:8.4f}")
    met = ratio <= TARGET_RATIO and points >= TARGET_POINTS
    print(f"mnist_sweep / peer = {ratio:.2f} of the wall time (target <= {TARGET_RATIO}), {points:+.2f} test points "
          f"(target >= +{TARGET_POINTS}): {'met' if met else 'NOT met'}")
    print("the default sweep's final step:", *ours["final_step"], sep="\n  ")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "trials": trials, "peer": peer, "mnist_sweep": ours,
                                          "ratio": ratio, "test_points": points, "met": met},
                                         indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
