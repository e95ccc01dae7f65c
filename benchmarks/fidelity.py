"""Do trials on fewer images rank CNN configurations as trials on all of them do?

Random configurations of the CNN space (with the sweep's cost limit) each train for the same
few epochs on 10,000 and on all 50,000 search images; the Spearman rank correlation of their
validation accuracies says whether the cheap trials of sweeps/cnn-optuna.yaml pick the same
winners, and the time ratio what they save.

    python benchmarks/fidelity.py --data ../shared/data/mnist.npz            # ~15 min
    python benchmarks/fidelity.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from machine import cpu, headline


def ranks(values: list[float]) -> np.ndarray:
    order = np.argsort(values)
    out = np.empty(len(values))
    out[order] = np.arange(len(values))
    return out


def spearman(a: list[float], b: list[float]) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def configurations(count: int, seed: int, max_mflops: float) -> list[dict]:
    """Random points of the CNN space that train (buildable, within the cost limit)."""
    import optuna

    from mnist_sweep.costs import mflops, unbuildable
    from mnist_sweep.space import load_space

    space, study, found = load_space("cnn"), optuna.create_study(sampler=optuna.samplers.RandomSampler(seed)), []
    while len(found) < count:
        params = space.sample(study.ask())
        if unbuildable("cnn", params) is None and mflops("cnn", params) <= max_mflops:
            found.append(params)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--configurations", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--few", type=int, default=10000, help="the cheap trials' training images")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 3 configurations, 1 epoch, 2,000 images")
    parser.add_argument("--out", default="benchmarks/results/fidelity.json")
    args = parser.parse_args()

    from mnist_sweep.config import load_settings
    from mnist_sweep.data import load_mnist, search_data
    from mnist_sweep.training import fit

    count, epochs, few, full = (3, 1, 1000, 2000) if args.quick else (args.configurations, args.epochs, args.few, None)
    data = search_data(load_mnist(args.data), 2000 if args.quick else 10000, 0, full)
    configs = configurations(count, 0, load_settings("cnn-optuna", {}).max_mflops)
    rows = []
    print(headline())
    for number, params in enumerate(configs):
        row = {"params": params}
        for name, limit in (("few", few), ("all", len(data.y_train))):
            began = time.perf_counter()
            result = fit("cnn", {**params, "epochs": epochs}, data.x_train[:limit], data.y_train[:limit],
                         validation=(data.x_val, data.y_val), seed=number)
            row[name] = {"val_accuracy": result.history["val_accuracy"][-1], "seconds": time.perf_counter() - began}
        rows.append(row)
        print(f"configuration {number}: {few} images {row['few']['val_accuracy']:.4f} ({row['few']['seconds']:.0f} s), "
              f"{len(data.y_train)} images {row['all']['val_accuracy']:.4f} ({row['all']['seconds']:.0f} s)",
              flush=True)
    rho = spearman([r["few"]["val_accuracy"] for r in rows], [r["all"]["val_accuracy"] for r in rows])
    saved = sum(r["all"]["seconds"] for r in rows) / sum(r["few"]["seconds"] for r in rows)
    print(f"Spearman rank correlation, {few} against {len(data.y_train)} images after {epochs} epochs: {rho:.2f}; "
          f"the full trials took {saved:.1f}x as long")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "epochs": epochs, "few": few, "spearman": rho,
                                          "time_ratio": saved, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
