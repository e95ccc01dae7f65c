"""The CNN sweep's sampler and pruner, chosen by measurement: random search and TPE, each with
successive halving and with Optuna's Hyperband, two seeds each, 30 trials on the CNN space.

What is compared is the best validation accuracy a search finds and the time it takes, on a
proxy of the real sweep that nine such searches fit in under half an hour: trials train on
5,000 images for at most 9 epochs (the first three rungs of halving: 1, 3 and 9 epochs) and
are judged on 5,000 validation images, with the sweep's cost limit (sweeps/cnn-optuna.yaml).
The searches run in two processes of one thread, as the sweep's two workers do.

    python benchmarks/cnn_search.py --data ../shared/data/mnist.npz           # ~25 min
    python benchmarks/cnn_search.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~2 min
"""

from __future__ import annotations

import os
import statistics

from machine import headline
from sweeps import run_sweeps, sweep_parser, write_json

from mnist_sweep.config import load_settings

COMBINATIONS = (("random", "halving"), ("tpe", "halving"), ("random", "hyperband"), ("tpe", "hyperband"))


def main() -> None:
    parser = sweep_parser(__doc__, "cnn_search", 5000, 9, "1 seed, 2 combinations, 3 trials of 1 epoch on 1,000 images")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    cnn = load_settings("cnn-optuna", {})
    seeds, trials, limit, epochs, combos = ((1, 3, 1000, 1, COMBINATIONS[:2]) if args.quick else
                                            (args.seeds, args.trials, args.train_limit, args.max_epochs, COMBINATIONS))
    jobs = [(trials, sampler, pruner, seed, epochs, "cnn", cnn.max_mflops) for sampler, pruner in combos
            for seed in range(seeds)]
    runs = run_sweeps(os.path.abspath(args.data), 2000 if args.quick else 5000, limit, jobs)
    print(f"\n{headline()}\n{trials} trials on the CNN space, {limit} training images, epochs up to {epochs}, "
          f"{seeds} seeds, two processes of one thread")
    print(f"{'sampler':8s}{'pruner':11s}{'best val (mean)':>16s}{'per seed':>22s}{'epochs':>8s}{'seconds':>9s}")
    table = {}
    for sampler, pruner in combos:
        mine = [r for r in runs if (r["sampler"], r["pruner"]) == (sampler, pruner)]
        table[f"{sampler}+{pruner}"] = mean = statistics.fmean(r["best"] for r in mine)
        per_seed = " ".join(f"{r['best']:.4f}" for r in mine)
        print(f"{sampler:8s}{pruner:11s}{mean:16.4f}{per_seed:>22s}{statistics.fmean(r['epochs'] for r in mine):8.0f}"
              f"{statistics.fmean(r['seconds'] for r in mine):9.0f}")
    best = max(table, key=table.get)
    print(f"best: {best}")
    write_json(args.out, {"trials": trials, "train_images": limit, "max_epochs": epochs, "mean_best": table,
                          "best": best, "runs": runs})


if __name__ == "__main__":
    main()
