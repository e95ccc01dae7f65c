"""Search efficiency: the best validation accuracy after 10, 20 and 50 trials, per sampler.

TPE (the default), random search and quasi-Monte Carlo, each with three seeds, on the MLP
space with the default median pruner. To fit nine 50-trial sweeps in under 20 minutes on
two cores, trials train on 5,000 images for at most 3 epochs (--train-limit, --max-epochs):
what is compared is how fast each sampler finds good regions, on a cheap proxy of the task.

    python benchmarks/samplers.py --data ../shared/data/mnist.npz           # ~17 min
    python benchmarks/samplers.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from sweeps import run_sweep

from mnist_sweep.data import load_mnist, search_data

SAMPLERS = ("tpe", "random", "qmc")
CHECKPOINTS = (10, 20, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=5000, help="training images per trial")
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1 seed, 6 trials of 1 epoch on 1,000 images")
    parser.add_argument("--out", default="benchmarks/results/samplers.json")
    args = parser.parse_args()
    seeds, limit, epochs, checkpoints = ((1, 1000, 1, (3, 6)) if args.quick
                                         else (args.seeds, args.train_limit, args.max_epochs, CHECKPOINTS))
    data = search_data(load_mnist(args.data), 10000, 0, limit)
    runs = [run_sweep(data, checkpoints[-1], sampler, "median", seed, epochs)
            for sampler in SAMPLERS for seed in range(seeds)]
    table = {s: {n: statistics.mean(r["best_after"][n - 1] for r in runs if r["sampler"] == s) for n in checkpoints}
             for s in SAMPLERS}
    print(f"\nbest validation accuracy, mean of {seeds} seeds ({limit} training images, epochs up to {epochs})")
    print(f"{'sampler':10s}" + "".join(f"{f'after {n}':>10s}" for n in checkpoints) + f"{'time':>9s}")
    for s in SAMPLERS:
        seconds = sum(r["seconds"] for r in runs if r["sampler"] == s) / seeds
        print(f"{s:10s}" + "".join(f"{table[s][n]:10.4f}" for n in checkpoints) + f"{seconds:8.0f}s")
    best = max(SAMPLERS, key=lambda s: (table[s][checkpoints[-1]], table[s][checkpoints[0]]))
    print(f"best after {checkpoints[-1]} trials: {best}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"train_images": limit, "max_epochs": epochs, "mean_best": table,
                                          "best": best, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
