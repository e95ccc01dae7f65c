"""What the framework costs: the same trials by hand in plain Keras, and through mnist_sweep.

(a) a plain loop: clear the session, seed, build, `model.fit` with validation data, and the
    Keras callbacks the configuration asks for (annealing, early stopping), as a careful user
    would write it with the same settings (validation batch size included);
(b) the same configurations as enqueued trials of an Optuna study (the CLI's journal file),
    each a nested MLflow run (SQLite) with per-epoch metrics, through the progress display (no pruning, so both
    train every epoch).
Both run in this process on the same in-memory arrays, alternated a-b-b-a for each
configuration so that drift in the machine's speed falls on both within a minute; the ratio
of the totals is the overhead. Target: <= 1.05.

    python benchmarks/overhead.py --data ../shared/data/mnist.npz            # ~4 min
    python benchmarks/overhead.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~2 min
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import keras
from machine import cpu, headline
import optuna

from mnist_sweep.data import load_mnist, search_data
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines.optuna import Objective, optimize
from mnist_sweep.engines.optuna_samplers import make_pruner
from mnist_sweep.engines.optuna_storage import open_storage
from mnist_sweep.engines.optuna_study import finished_count
from mnist_sweep.runtime.memory import MemoryBudget
from mnist_sweep.models import build_model
from mnist_sweep.presets import load_presets
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import EVAL_BATCH, schedule_callbacks

TARGET = 1.05
optuna.logging.set_verbosity(optuna.logging.ERROR)  # as the CLI runs it: one line per trial, ours


def configurations(epochs: int) -> dict[str, dict]:
    """The notebooks' MLP presets that fit the MLP space, each cut to `epochs` epochs."""
    space = load_space("mlp")
    return {p.name: {**p.params, "epochs": epochs} for p in load_presets() if p.fits(space)}


def plain(params: dict, data, seed: int) -> float:
    """One configuration, as a careful user would train it by hand."""
    began = time.perf_counter()
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build_model("mlp", params)
    model.fit(data.x_train, data.y_train, batch_size=params["batch_size"], epochs=params["epochs"],
              validation_data=(data.x_val, data.y_val), validation_batch_size=EVAL_BATCH,
              callbacks=schedule_callbacks(params, True, None), verbose=0)
    return time.perf_counter() - began


class Framework:
    """A study holding every configuration twice, in the order the benchmark runs them."""

    def __init__(self, configs: list[dict], data, seed: int, folder: Path):
        tracker = Tracker(f"sqlite:///{folder / 'mlflow.db'}", "overhead", folder / "artifacts")
        self.study = optuna.create_study(storage=open_storage(str(folder / "optuna.journal")),
                                         direction="maximize", pruner=make_pruner("none", 0))
        for params in configs:
            self.study.enqueue_trial(params)
            self.study.enqueue_trial(params)
        parent = tracker.parent_run(self.study.study_name, {"engine": "optuna"})
        space = load_space("mlp").with_max_epochs(configs[0]["epochs"])
        self.objective = Objective(space, data, tracker, parent, {"engine": "optuna"}, seed)
        self.progress = Progress(2 * len(configs), 0)
        self.budget = MemoryBudget(None)

    def next_trial(self) -> float:
        """The next enqueued configuration as one trial: its number is its seed offset."""
        began = time.perf_counter()
        optimize(self.study, self.objective, finished_count(self.study) + 1, SearchEnds(), self.progress,
                 self.budget)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration (default: 3)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2 presets, 1 epoch on 2,000 images")
    parser.add_argument("--out", default="benchmarks/results/overhead.json")
    args = parser.parse_args()
    data = search_data(load_mnist(args.data), 10000, 0, 2000 if args.quick else None)
    named = configurations(1 if args.quick else args.epochs)
    names = list(named)[:2 if args.quick else None]
    configs = [named[name] for name in names]
    plain(configs[0], data, 0)  # warm-up: TensorFlow's first graph and thread pools
    times: dict[str, list[float]] = {"plain": [], "framework": []}
    with tempfile.TemporaryDirectory() as folder, (runner := Framework(configs, data, 0, Path(folder))).progress:
        for number, params in enumerate(configs):
            # a-b-b-a per configuration: the machine's drift over a minute falls on both alike.
            # The plain runs take the seeds of the framework's two trials of this configuration.
            times["plain"].append(plain(params, data, 2 * number))
            times["framework"] += [runner.next_trial(), runner.next_trial()]
            times["plain"].append(plain(params, data, 2 * number + 1))
        trials = finished_count(runner.study)  # one per timed framework run, or the ratio compares unlike work
    ratio = round(sum(times["framework"]) / sum(times["plain"]), 4)  # once: printed as recorded
    result = {"configurations": names, "framework_trials": trials, "epochs": configs[0]["epochs"],
              "train_images": len(data.y_train),
              "plain_s": times["plain"], "framework_s": times["framework"], "ratio": ratio,
              "target": TARGET, "met": ratio <= TARGET}
    print(headline())
    print(f"{'configuration':28s}{'plain':>16s}{'framework':>18s}{'ratio':>8s}")
    for i, name in enumerate(names):
        a, b = times["plain"][2 * i:2 * i + 2], times["framework"][2 * i:2 * i + 2]
        print(f"{name:28s}{a[0]:7.1f}s{a[1]:7.1f}s  {b[0]:7.1f}s{b[1]:7.1f}s{sum(b) / sum(a):8.3f}")
    print(f"{'total':28s}{sum(times['plain']):15.1f}s{sum(times['framework']):17.1f}s{ratio:8.3f}")
    print(f"framework / plain = {ratio:.3f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'NOT met'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), **result}, indent=2))


if __name__ == "__main__":
    main()
