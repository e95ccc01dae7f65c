"""A trial's fixed cost: what a one-epoch trial costs against a steady epoch of the same model.

In the default sweep most trials train one epoch (successive halving's first rung), so what a
trial costs besides its epochs decides the sweep's speed. For the MLP 512-512 at batch 128 on
the 50,000 search images (10,000 validation images): a steady epoch (the median of epochs 2 to
4 of one fit), then one-epoch trials as the sweep runs them (Optuna's journal, MLflow's SQLite
store, the shared trial runner), and where their extra time goes: building and compiling, the
first epoch's tracing, MLflow's and Optuna's bookkeeping. Target: a one-epoch trial costs at
most 1.3x a steady epoch.

    python benchmarks/startup.py --data ../shared/data/mnist.npz           # ~2 min
    python benchmarks/startup.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu, headline

TARGET = 1.3
PARAMS = {"n_layers": 2, "units_l0": 512, "units_l1": 512, "dropout_l0": 0.2, "dropout_l1": 0.2, "optimizer": "adam",
          "learning_rate": 1e-3, "batch_size": 128, "epochs": 1, "schedule": "constant", "anneal": False,
          "label_smoothing": 0.0, "ema": False, "augment": False, "early_stopping": False}


def steady_epoch(data) -> float:
    from mnist_sweep.training import fit

    ends: list[float] = []
    began = time.perf_counter()
    fit("mlp", {**PARAMS, "epochs": 4}, data.x_train, data.y_train, validation=(data.x_val, data.y_val),
        hook=lambda epoch, metrics: ends.append(time.perf_counter()))
    return float(statistics.median(np.diff([began, *ends])[1:]))


def trials(data, folder: Path, count: int) -> dict:
    """One-epoch trials through the sweep's objective, each timed whole and in its parts."""
    import optuna

    from mnist_sweep.engines.optuna import Objective
    from mnist_sweep.engines.optuna_store import open_storage
    from mnist_sweep.models import build_model, fresh_session
    from mnist_sweep.space import load_space
    from mnist_sweep.tracking import Tracker

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "startup", folder / "artifacts")
    study = optuna.create_study(storage=open_storage(str(folder / "optuna.journal")), direction="maximize")
    objective = Objective(load_space("mlp"), data, tracker, tracker.parent_run("s", {}), {"engine": "optuna"}, 0)
    whole, inside, build = [], [], []
    for _ in range(count):
        study.enqueue_trial(PARAMS)
        began = time.perf_counter()
        study.optimize(objective, n_trials=1)
        whole.append(time.perf_counter() - began)
        inside.append(study.trials[-1].user_attrs["seconds"])  # the runner's own time: run, fit, logging
        began = time.perf_counter()
        fresh_session()
        build_model("mlp", PARAMS, steps_per_epoch=391)
        build.append(time.perf_counter() - began)
    return {"trial_s": whole, "runner_s": inside, "build_s": build}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2,000 images, 2 trials")
    parser.add_argument("--out", default="benchmarks/results/startup.json")
    args = parser.parse_args()
    from mnist_sweep.data import load_mnist, search_data

    data = search_data(load_mnist(args.data), 2000 if args.quick else 10000, 0, 2000 if args.quick else None)
    steady = steady_epoch(data)
    with tempfile.TemporaryDirectory() as folder:
        found = trials(data, Path(folder), 2 if args.quick else args.trials)
    trial, runner = statistics.median(found["trial_s"][1:]), statistics.median(found["runner_s"][1:])
    ratio = trial / steady
    print(headline())
    print(f"MLP 512-512, batch 128, {len(data.y_train)} images: steady epoch {steady:.2f} s; one-epoch trial "
          f"{trial:.2f} s (the runner {runner:.2f} s, Optuna's own {trial - runner:.2f} s; building and compiling "
          f"{statistics.median(found['build_s']):.2f} s): {ratio:.2f}x a steady epoch (target <= {TARGET})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "steady_epoch_s": steady, **found, "ratio": ratio,
                                          "target": TARGET, "met": bool(ratio <= TARGET)}, indent=2))


if __name__ == "__main__":
    main()
