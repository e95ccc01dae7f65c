"""Accuracy per CPU-second: what each training technique does to a fixed network.

For each network (notebook 003's CNN as published, and a small batch-normalised CNN of the
CNN space), the same training run without and with each technique, one at a time, then all
together: batch normalisation, augmentation (rotation, zoom, shift), a cosine schedule with
one warm-up epoch, label smoothing 0.1, weight averaging (EMA) and, at evaluation only,
test-time augmentation (the validation images shifted by one pixel four ways and averaged).
Each trains on the sweep's 50,000 search images and is judged on its 10,000 validation
images (never the test set): the epochs and seconds to 99.5% validation accuracy, and the best
and last validation accuracy.

    python benchmarks/techniques.py --data ../shared/data/mnist.npz            # ~40 min
    python benchmarks/techniques.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from machine import cpu, headline

TARGET = 0.995
NETWORKS = {
    # Notebook 003 as published: three unpadded 3x3 convolutions, RMSprop, batch 64, a flat rate.
    "nb003": {"n_blocks": 3, "filters_l0": 32, "filters_l1": 64, "filters_l2": 64, "kernel_l0": 3, "kernel_l1": 3,
              "kernel_l2": 3, "convs_l0": 1, "convs_l1": 1, "convs_l2": 1, "pool_l0": True, "pool_l1": True,
              "pool_l2": False, "padding": "valid", "dense_units": 64, "optimizer": "rmsprop",
              "learning_rate": 1e-3, "batch_size": 64},
    # Two blocks of two padded 3x3 convolutions (32, 64) and a dense 128: about 4x its cost.
    "small": {"n_blocks": 2, "filters_l0": 32, "filters_l1": 64, "kernel_l0": 3, "kernel_l1": 3, "convs_l0": 2,
              "convs_l1": 2, "block_dropout_l0": 0.25, "block_dropout_l1": 0.25, "padding": "same",
              "dense_units": 128, "dense_dropout": 0.25, "optimizer": "adam", "learning_rate": 1e-3,
              "batch_size": 128},
    # The field's family (shared/notes/cnn-recipes.md), narrowed: two blocks of two padded 3x3
    # convolutions (24, 48), each block halved by a strided 5x5 convolution, dense 128, dropout
    # 0.4: 33 MFLOPs, about 6x notebook 003's network.
    "field": {"n_blocks": 2, "filters_l0": 24, "filters_l1": 48, "kernel_l0": 3, "kernel_l1": 3, "convs_l0": 2,
              "convs_l1": 2, "pool_l0": True, "pool_l1": True, "reduction": "strided", "padding": "same",
              "block_dropout_l0": 0.4, "block_dropout_l1": 0.4, "dense_units": 128, "dense_dropout": 0.4,
              "optimizer": "adam", "learning_rate": 3e-3, "batch_size": 128},
}
TECHNIQUES = {
    "none": {},
    "batch norm": {"batch_norm": True},
    "augmentation": {"augment": True, "rotation": 10.0, "zoom": 0.1, "shift": 0.1},
    "cosine + warm-up": {"schedule": "cosine", "warmup_epochs": 1},
    "label smoothing": {"label_smoothing": 0.1},
    "EMA": {"ema": True},
}


# Test-time augmentation: the image as it is and shifted by one pixel up, down, left and right.
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def predict_shifted(model: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities averaged over the image and its one-pixel shifts."""
    total = sum(model.predict(_shift(x, dy, dx), batch_size=1024, verbose=0) for dy, dx in SHIFTS)
    return total / len(SHIFTS)


def _shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images moved by (dy, dx) pixels, the uncovered border black (MNIST's background)."""
    out = np.roll(x, (dy, dx), axis=(1, 2))
    if dy:
        out[:, 0 if dy > 0 else -1, :] = 0
    if dx:
        out[:, :, 0 if dx > 0 else -1] = 0
    return out


def train(params: dict, data, epochs: int) -> dict:
    """Per epoch: validation accuracy and seconds so far; at the end, the accuracy with TTA."""
    from mnist_sweep.training import fit

    history: list[tuple[float, float]] = []
    began = time.perf_counter()

    def hook(epoch: int, metrics: dict) -> None:
        history.append((metrics["val_accuracy"], time.perf_counter() - began))

    result = fit("cnn", {**params, "epochs": epochs}, data.x_train, data.y_train,
                 validation=(data.x_val, data.y_val), hook=hook, seed=0)
    tta = float((predict_shifted(result.model, data.x_val).argmax(axis=1) == data.y_val).mean())
    reached = next((i for i, (acc, _) in enumerate(history) if acc >= TARGET), None)
    return {"val_accuracy": [round(a, 4) for a, _ in history], "seconds": [round(s, 1) for _, s in history],
            "epochs_to_target": None if reached is None else reached + 1,
            "seconds_to_target": None if reached is None else history[reached][1],
            "best": max(a for a, _ in history), "last": history[-1][0], "last_with_tta": tta}


def ensemble(params: dict, data, epochs: int, seeds: int) -> dict:
    """The same network trained with `seeds` seeds: each one's validation accuracy, and their
    average's (the mean of their class probabilities), for 1, 2, ... members."""
    from mnist_sweep.training import fit

    probabilities, single, seconds = [], [], 0.0
    for seed in range(seeds):
        result = fit("cnn", {**params, "epochs": epochs}, data.x_train, data.y_train, seed=seed)
        seconds += result.seconds
        probabilities.append(result.model.predict(data.x_val, batch_size=1024, verbose=0))
        single.append(float((probabilities[-1].argmax(axis=1) == data.y_val).mean()))
    averaged = [float((np.mean(probabilities[:k], axis=0).argmax(axis=1) == data.y_val).mean())
                for k in range(1, seeds + 1)]
    return {"single": single, "ensemble_of": averaged, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--networks", default=",".join(NETWORKS), help=f"of {', '.join(NETWORKS)}")
    parser.add_argument("--techniques", help="comma-separated names to run (default: all, one at a time and together)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1 epoch on 2,000 images, two techniques")
    parser.add_argument("--ensemble", type=int, help="instead: train the network with all techniques (or the one "
                                                       "--techniques names) under K seeds and compare each with "
                                                       "their average")
    parser.add_argument("--out", default="benchmarks/results/techniques.json")
    args = parser.parse_args()

    from mnist_sweep.data import load_mnist, search_data

    data = search_data(load_mnist(args.data), 2000 if args.quick else 10000, 0, 2000 if args.quick else None)
    epochs = 1 if args.quick else args.epochs
    techniques = dict(list(TECHNIQUES.items())[:2]) if args.quick else TECHNIQUES
    combined = {k: v for t in techniques.values() for k, v in t.items()}
    techniques = {**techniques, "all": combined,
                  "all but batch norm": {k: v for k, v in combined.items() if k != "batch_norm"}}
    if args.techniques:
        techniques = {name: techniques[name] for name in args.techniques.split(",")}
    results: dict = {"cpu": cpu(), "epochs": epochs, "target": TARGET, "networks": {}}
    print(headline())
    if args.ensemble:
        for network in args.networks.split(","):
            name = next(iter(techniques)) if args.techniques else "all"  # --techniques names the one to train
            run = ensemble({**NETWORKS[network], **techniques[name]}, data, epochs, args.ensemble)
            results["networks"][network] = {"ensemble": run}
            print(f"{network}: single {' '.join(f'{v:.4f}' for v in run['single'])}; average of 1..{args.ensemble}: "
                  f"{' '.join(f'{v:.4f}' for v in run['ensemble_of'])} ({run['seconds']:.0f} s of training)")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
        return
    print(f"{'network':8s} {'technique':18s} {'epochs to 99.5%':>16s} {'seconds':>8s} {'best':>7s} {'last':>7s} "
          f"{'+TTA':>7s} {'s/epoch':>8s}")
    for network in args.networks.split(","):
        results["networks"][network] = {}
        for name, extra in techniques.items():
            run = train({**NETWORKS[network], **extra}, data, epochs)
            results["networks"][network][name] = run
            reached = "-" if run["epochs_to_target"] is None else str(run["epochs_to_target"])
            seconds = "-" if run["seconds_to_target"] is None else f"{run['seconds_to_target']:.0f}"
            print(f"{network:8s} {name:18s} {reached:>16s} {seconds:>8s} {run['best']:7.4f} {run['last']:7.4f} "
                  f"{run['last_with_tta']:7.4f} {run['seconds'][-1] / epochs:8.1f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
