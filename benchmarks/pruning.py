"""Pruning: the same seeded MLP sweep without pruning, with Hyperband and with successive halving.

The sweeps use the default sweep's sampler (random search) with the same seed on the same data,
so each draws the same configurations and what differs is what the pruner stopped (TPE, with
--sampler tpe, also follows what was pruned); the table gives the epochs trained,
the wall time and the best validation accuracy. Target: Hyperband trains at most 40% of the
epochs and its best validation accuracy is within 0.15 points of the unpruned sweep's
(successive halving, Hyperband's most aggressive bracket alone, is held to the same).
To finish in under 20 minutes on two cores, trials train on 10,000 of the 50,000 search
images with epochs up to 10 (--train-limit, --max-epochs); the ranking of pruners is what
is measured, not the best accuracy the full sweep reaches.

    python benchmarks/pruning.py --data ../shared/data/mnist.npz           # ~8 min
    python benchmarks/pruning.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
"""

from __future__ import annotations

from machine import headline
from sweeps import default_settings, run_sweep, sweep_parser, validation_size, write_json

from mnist_sweep.config import SAMPLERS
from mnist_sweep.data import load_mnist, search_data

EPOCH_SHARE = 0.40
ACCURACY_POINTS = 0.15


def main() -> None:
    parser = sweep_parser(__doc__, "pruning", 10000, 10,
                          "4 trials of up to 2 epochs on 1,000 images, 2,000 validation images")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--pruners", default="none,hyperband,halving", help="compared, the first as the reference")
    parser.add_argument("--sampler", choices=SAMPLERS, help="default: the default sweep's")
    args = parser.parse_args()
    trials, limit, epochs = (4, 1000, 2) if args.quick else (args.trials, args.train_limit, args.max_epochs)
    data = search_data(load_mnist(args.data), validation_size(args.quick), 0, limit)
    sampler = args.sampler or default_settings().sampler
    runs = [run_sweep(data, trials, sampler, pruner, 0, epochs) for pruner in args.pruners.split(",")]
    reference = runs[0]
    print(f"\n{trials} trials, {sampler} sampler seed 0, {limit} training images, epochs up to {epochs}")
    print(headline())
    print(f"{'pruner':12s}{'epochs':>8s}{'share':>8s}{'wall':>9s}{'best val':>10s}{'diff':>8s}")
    for run in runs:
        run["epoch_share"] = round(run["epochs"] / reference["epochs"], 3)
        run["points_below"] = round(100 * (reference["best"] - run["best"]), 2)
        run["met"] = run["epoch_share"] <= EPOCH_SHARE and run["points_below"] <= ACCURACY_POINTS
        print(f"{run['pruner']:12s}{run['epochs']:8d}{run['epoch_share']:8.0%}{run['seconds']:8.0f}s"
              f"{run['best']:10.4f}{-run['points_below']:+8.2f}")
    for run in runs[1:]:
        print(f"{run['pruner']}: {run['epoch_share']:.0%} of the epochs (target <= {EPOCH_SHARE:.0%}), "
              f"{run['points_below']:.2f} points below (target <= {ACCURACY_POINTS}): "
              f"{'met' if run['met'] else 'NOT met'}")
    write_json(args.out, {"trials": trials, "sampler": sampler, "train_images": limit, "max_epochs": epochs,
                          "runs": runs})


if __name__ == "__main__":
    main()
