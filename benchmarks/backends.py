"""Keras's backends on a whole sweep: the trials a real sweep trained, replayed on each backend.

Keras 3 trains the same model on TensorFlow or JAX (PyTorch where installed). A whole sweep is
mostly short trials of models of new shapes, so what a backend saves on a steady epoch can be
lost to building and compiling at every trial. This replays every trial of a finished study
(its journal's parameters, for as many epochs as the trial trained before it finished or was
pruned) through the project's training path, `training.fit`, on the same search images, once
per backend, each in a fresh process on both cores, in turns (A B A B); the table gives each
backend's seconds for the whole replay, its fits alone, the best validation accuracy and how far
its per-trial accuracies lie from TensorFlow's. Optuna's and MLflow's bookkeeping is the same
on every backend and is left out.

    python -m mnist_sweep optuna --trials 50 --data ../shared/data/mnist.npz   # a study to replay
    python benchmarks/backends.py --data ../shared/data/mnist.npz --journal mlruns/optuna.journal
    python benchmarks/backends.py --data ../shared/data/mnist.npz --journal J --study cnn-optuna --kind cnn
    python benchmarks/backends.py --data ../shared/data/mnist.npz --journal J --quick   # CI smoke, ~30 s

JAX is not among the project's dependencies: `pip install jax` first (0.10.2 here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu, headline


def recorded_trials(journal: str, study: str) -> list[tuple[dict, int]]:
    """Each finished or pruned trial's parameters and the epochs it trained, in trial order."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(journal))
    trials = optuna.load_study(study_name=study, storage=storage).trials
    return [(t.user_attrs["params"], len(t.intermediate_values)) for t in trials
            if t.state.name in ("COMPLETE", "PRUNED") and t.intermediate_values]


def replay(args: argparse.Namespace) -> dict:
    """This process's backend (KERAS_BACKEND) on every recorded trial: seconds and accuracies."""
    began = time.perf_counter()
    import keras

    from mnist_sweep.data import load_mnist, search_data
    from mnist_sweep.training import fit

    images = 2000 if args.quick else args.trial_images
    data = search_data(load_mnist(args.data), 2000 if args.quick else 10000, args.seed, images)
    fits, epochs_run, accuracies = [], [], []
    for params, epochs in recorded_trials(args.journal, args.study)[:args.limit]:
        result = fit(args.kind, params, data.x_train, data.y_train, validation=(data.x_val, data.y_val),
                     seed=args.seed, epochs=epochs)
        fits.append(result.seconds)
        epochs_run.append(result.epochs_run)
        accuracies.append(result.history["val_accuracy"][-1])
    return {"backend": keras.backend.backend(), "wall_s": time.perf_counter() - began, "fit_s": sum(fits),
            "fits_s": fits, "epochs": epochs_run, "val_accuracy": accuracies}


def run_backend(backend: str, argv: list[str]) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, __file__, *argv, "--replay"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {backend} replay failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--journal", required=True, help="the finished study's Optuna journal")
    parser.add_argument("--study", default="mlp-optuna")
    parser.add_argument("--kind", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (its validation split)")
    parser.add_argument("--trial-images", type=int, default=None, help="the sweep's trial_images, if it set one")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N trials (a smoke run)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2,000 images, one round")
    parser.add_argument("--replay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/backends.json")
    args = parser.parse_args()
    if args.replay:
        print(json.dumps(replay(args)))
        return
    argv = [a for a in sys.argv[1:] if a != "--replay"]
    rounds = 1 if args.quick else args.rounds
    runs = [run_backend(b, argv) for _ in range(rounds) for b in args.backends.split(",")]
    print(headline())
    print(f"{len(runs[0]['fits_s'])} trials of study '{args.study}' ({args.kind}), "
          f"each backend {rounds} times, in turns")
    print(f"{'backend':<12}{'wall':>16}{'fits':>16}{'best val':>10}{'|val - tf|':>12}")
    reference = runs[0]["val_accuracy"]
    for backend in args.backends.split(","):
        mine = [r for r in runs if r["backend"] == backend]
        gap = statistics.mean(abs(a - b) for a, b in zip(mine[0]["val_accuracy"], reference))
        walls = ", ".join(f"{r['wall_s']:.0f}" for r in mine)
        fits = ", ".join(f"{r['fit_s']:.0f}" for r in mine)
        print(f"{backend:<12}{walls + ' s':>16}{fits + ' s':>16}{max(mine[0]['val_accuracy']):>10.4f}{gap:>12.4f}")
    wall = {b: statistics.median(r["wall_s"] for r in runs if r["backend"] == b) for b in args.backends.split(",")}
    first = args.backends.split(",")[0]
    print("median wall against " + first + ": " + ", ".join(f"{b} {wall[b] / wall[first]:.2f}x" for b in wall))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "study": args.study, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
