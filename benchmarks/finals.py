"""How many models the final step should average: the same finished study's final step with 1, 2
and 3 members, one after the other, judged on validation images only.

Each variant is what `final_models: K` does (budget.choose, then members.train_members: the K
best distinct configurations side by side, one process per core, or the best alone on all
cores), under the sweep's `final_minutes` or `minutes`. It retrains on the search's training images (50,000)
and is scored on the search's 10,000 validation images: the test set is never read, so choosing
K here spends none of it. The table gives each variant's members, wall seconds and validation
accuracy and loss; a variant that does not pay for its seconds is not the sweep file's choice.

    python -m mnist_sweep optuna --space cnn --trials 30 --data ../shared/data/mnist.npz   # a study
    python benchmarks/finals.py --data ../shared/data/mnist.npz --study cnn-optuna --sweep cnn-optuna
    python benchmarks/finals.py --data ../shared/data/mnist.npz --study mlp-optuna --sweep mlp-optuna --members 1,2
    python benchmarks/finals.py --data ... --study cnn-optuna --sweep cnn-optuna --members 2,4 --final-minutes 21.7
    python benchmarks/finals.py --data ... --study S --journal J --quick   # CI smoke run: 3,000 images, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from machine import cpu, headline


def variant(study, budget: float | None, data, members: int, quick: bool) -> dict:
    """The final step with `members` models under `budget` minutes, on the search's images; its
    validation result."""
    import numpy as np

    from mnist_sweep.budget import choose, study_images
    from mnist_sweep.members import train_members
    from mnist_sweep.outcomes import Outcome
    from mnist_sweep.training import evaluate

    record = study.record()
    completed = [o for o in study.outcomes() if o.outcome == Outcome.COMPLETED]
    images = study_images(record.settings, len(data.y_train) + len(data.y_val), len(data.y_train))
    choice = choose(completed, budget, images, os.cpu_count() or 1, members,
                    record.settings.trial_epochs)
    if quick:  # one epoch each: the smoke run checks the path, not the accuracy
        choice = replace(choice, members=tuple(replace(m, epochs=1) for m in choice.members))
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        pixels = np.rint(data.x_train * 255).astype(np.uint8)  # the search's images are scaled; members scale their own
        model = train_members(record.space["model"], choice, record.settings.seed, pixels, data.y_train, Path(folder))
    seconds = time.perf_counter() - began
    scores = evaluate(model, data.x_val, data.y_val)
    return {"asked": members, "members": [[m.trial.number, m.epochs] for m in choice.members],
            "seconds": round(seconds, 1), "val_accuracy": scores["accuracy"], "val_loss": scores["loss"],
            "note": choice.note()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--study", required=True, help="a finished study's name")
    parser.add_argument("--journal", default=None, help="its Optuna journal (default: mlruns/optuna.journal)")
    parser.add_argument("--sweep", default=None, help="the sweep file whose final_minutes apply")
    parser.add_argument("--members", default="1,2,3", help="the final_models values to compare")
    parser.add_argument("--final-minutes", type=float, default=None,
                        help="each variant's budget, e.g. what the study's own final step had (default: the sweep's)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 3,000 images, one epoch a member")
    parser.add_argument("--out", default="benchmarks/results/finals.json")
    args = parser.parse_args()

    from mnist_sweep import engines
    from mnist_sweep.budget import final_minutes
    from mnist_sweep.config import load_settings
    from mnist_sweep.data import load_mnist, search_data

    settings = load_settings(args.sweep, {"study_name": args.study, "storage": args.journal, "engine": "optuna"})
    study = engines.find(settings)
    recorded = study.record().settings
    limit = 3000 if args.quick else recorded.train_limit
    data = search_data(load_mnist(args.data), 1000 if args.quick else recorded.validation_size, recorded.seed, limit)
    # The sweep's final_minutes, or its whole command's `minutes` less the reserve, taken once for every
    # variant (a final step with no search before it: a sweep's had less, by its search's time).
    budget = args.final_minutes if args.final_minutes is not None else final_minutes(settings, time.time())
    runs = [variant(study, budget, data, int(k), args.quick) for k in args.members.split(",")]
    print(headline())
    print(f"study '{args.study}': the final step on {len(data.y_train)} search images, judged on "
          f"{len(data.y_val)} validation images (budget {budget} minutes)")
    print(f"{'final_models':>12}  {'members (trial, epochs)':<34}{'seconds':>9}{'val acc':>9}{'val loss':>10}")
    for r in runs:
        members = ", ".join(f"{t}x{e}" for t, e in r["members"])
        print(f"{r['asked']:>12}  {members:<34}{r['seconds']:>9.0f}{r['val_accuracy']:>9.4f}{r['val_loss']:>10.4f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "study": args.study, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
