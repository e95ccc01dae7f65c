"""Search efficiency: the best validation accuracy after 10, 20 and 50 trials, per sampler.

TPE, random search (the default sweep's) and quasi-Monte Carlo, each with three seeds, on the MLP
space with the default sweep's pruner. To fit nine 50-trial sweeps in under 20 minutes on
two cores, trials train on 5,000 images for at most 3 epochs (--train-limit, --max-epochs)
and the sweeps run in two processes of one thread: what is compared is how fast each sampler
finds good regions, on a cheap proxy of the task.

    python benchmarks/samplers.py --data ../shared/data/mnist.npz           # 13 min
    python benchmarks/samplers.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
"""

from __future__ import annotations

import os
import statistics

from machine import headline
from sweeps import default_settings, run_sweeps, sweep_parser, validation_size, write_json

from mnist_sweep.config import SAMPLERS

CHECKPOINTS = (10, 20, 50)


def main() -> None:
    parser = sweep_parser(__doc__, "samplers", 5000, 3,
                          "1 seed, 4 trials of 1 epoch on 1,000 images, 2,000 validation images")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds, limit, epochs, checkpoints = ((1, 1000, 1, (2, 4)) if args.quick
                                         else (args.seeds, args.train_limit, args.max_epochs, CHECKPOINTS))
    pruner = default_settings().pruner
    jobs = [(checkpoints[-1], sampler, pruner, seed, epochs) for sampler in SAMPLERS for seed in range(seeds)]
    runs = run_sweeps(os.path.abspath(args.data), validation_size(args.quick), limit, jobs)
    table = {s: {n: statistics.mean(r["best_after"][n - 1] for r in runs if r["sampler"] == s) for n in checkpoints}
             for s in SAMPLERS}
    print(f"\nbest validation accuracy, mean of {seeds} seeds ({limit} training images, epochs up to {epochs}, "
          f"pruner {pruner})")
    print(headline())
    print(f"{'sampler':10s}" + "".join(f"{f'after {n}':>10s}" for n in checkpoints) + f"{'time':>9s}")
    for s in SAMPLERS:
        seconds = sum(r["seconds"] for r in runs if r["sampler"] == s) / seeds
        print(f"{s:10s}" + "".join(f"{table[s][n]:10.4f}" for n in checkpoints) + f"{seconds:8.0f}s")
    best = max(SAMPLERS, key=lambda s: (table[s][checkpoints[-1]], table[s][checkpoints[0]]))
    print(f"best after {checkpoints[-1]} trials: {best}")
    write_json(args.out, {"train_images": limit, "max_epochs": epochs, "pruner": pruner, "mean_best": table,
                          "best": best, "runs": runs})


if __name__ == "__main__":
    main()
