"""What the framework costs: the same trials by hand in plain Keras, and through mnist_sweep.

(a) a plain loop: clear the session, seed, build, `model.fit` with validation data, and the
    Keras callbacks the configuration asks for (annealing, early stopping), as a careful user
    would write it with the same settings (validation batch size included);
(b) the same configurations as enqueued trials of an Optuna study on SQLite, each a nested
    MLflow run with per-epoch metrics, through the progress display (no pruning, so both
    train every epoch).
Both run in this process on the same in-memory arrays, alternated (a b b a) so drift in the
machine's speed falls on both; the ratio of the totals is the overhead. Target: <= 1.05.

    python benchmarks/overhead.py --data ../shared/data/mnist.npz            # ~10 min
    python benchmarks/overhead.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~2 min
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
import optuna

from mnist_sweep.data import load_mnist, search_data
from mnist_sweep.engines.optuna import Objective, make_pruner, open_storage, optimize
from mnist_sweep.memory import MemoryBudget
from mnist_sweep.models import build_model
from mnist_sweep.presets import load_presets
from mnist_sweep.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import EVAL_BATCH, schedule_callbacks

TARGET = 1.05
optuna.logging.set_verbosity(optuna.logging.ERROR)  # as the CLI runs it: one line per trial, ours


def configurations(epochs: int) -> list[dict]:
    """The notebooks' MLP presets that fit the MLP space, each cut to `epochs` epochs."""
    chosen = [p.params for p in load_presets() if p.fits(load_space("mlp"))]
    return [{**params, "epochs": epochs} for params in chosen]


def plain(configs: list[dict], data, seed: int) -> float:
    began = time.perf_counter()
    for number, params in enumerate(configs):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed + number)
        model = build_model("mlp", params)
        model.fit(data.x_train, data.y_train, batch_size=params["batch_size"], epochs=params["epochs"],
                  validation_data=(data.x_val, data.y_val), validation_batch_size=EVAL_BATCH,
                  callbacks=schedule_callbacks(params, True, None), verbose=0)
    return time.perf_counter() - began


def framework(configs: list[dict], data, seed: int, folder: Path) -> float:
    tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "overhead", folder / "artifacts")
    study = optuna.create_study(storage=open_storage(str(folder / "optuna.journal")), direction="maximize",
                                pruner=make_pruner("none", 0))
    for params in configs:
        study.enqueue_trial(params)
    parent = tracker.parent_run(study.study_name, {"engine": "optuna"})
    space = load_space("mlp").with_max_epochs(configs[0]["epochs"])
    objective = Objective(space, data, tracker, parent, {"engine": "optuna"}, seed)
    began = time.perf_counter()
    with Progress(len(configs), 0) as progress:
        optimize(study, objective, len(configs), None, progress, MemoryBudget(None))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration (default: 3)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2 presets, 1 epoch on 2,000 images")
    parser.add_argument("--out", default="benchmarks/results/overhead.json")
    args = parser.parse_args()
    data = search_data(load_mnist(args.data), 10000, 0, 2000 if args.quick else None)
    configs = configurations(1)[:2] if args.quick else configurations(args.epochs)
    plain(configs[:1], data, 0)  # warm-up: TensorFlow's first graph and thread pools
    times = {"plain": [], "framework": []}
    for order in (("plain", "framework"), ("framework", "plain")):
        for kind in order:
            with tempfile.TemporaryDirectory() as folder:
                run = plain(configs, data, 0) if kind == "plain" else framework(configs, data, 0, Path(folder))
            times[kind].append(run)
    ratio = sum(times["framework"]) / sum(times["plain"])
    result = {"configurations": len(configs), "epochs": configs[0]["epochs"], "train_images": len(data.y_train),
              "plain_s": times["plain"], "framework_s": times["framework"], "ratio": round(ratio, 4),
              "target": TARGET, "met": ratio <= TARGET}
    print(f"{'':12s}{'run 1':>9s}{'run 2':>9s}")
    for kind, runs in times.items():
        print(f"{kind:12s}" + "".join(f"{t:8.1f}s" for t in runs))
    print(f"framework / plain = {ratio:.3f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'NOT met'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
