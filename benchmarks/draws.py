"""What a sweep's random draws look like within its cost limit: how wide the sampled networks are.

A sweep with `max_mflops` narrows each width to what the structure drawn before it leaves
(costs.CostBound), so a space whose structure is costly at the limit draws narrow networks. This
draws configurations the way the sweep does (Optuna's RandomSampler through SearchSpace.sample and
the sweep's bound) and reports the quartiles of each width, the share of draws whose every block
has at least `--wide` filters (notebook 003's narrowest), and the quartiles of their cost. No
training and no TensorFlow: it runs in seconds.

    python benchmarks/draws.py                          # the CNN sweep's space at its limit
    python benchmarks/draws.py --limits 12,24,70        # the same draws' shapes at other limits
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna

from mnist_sweep.config import load_settings
from mnist_sweep.costs import CostBound, mflops, unbuildable
from mnist_sweep.space import load_space

WIDTHS = ("filters_l0", "filters_l1", "dense_units")


def draw(space_name: str, limit: float, count: int, seed: int = 0) -> list[dict]:
    """`count` configurations drawn as the sweep draws them, those that make a network within `limit`."""
    space = load_space(space_name)
    bound = CostBound(space, limit)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(count):
        trial = study.ask()
        drawn.append(space.sample(trial, bound))
        study.tell(trial, 0.0)
    return [p for p in drawn if unbuildable(space.model, p) is None and mflops(space.model, p) <= limit]


def summary(kept: list[dict], count: int, wide: int) -> dict:
    def quartiles(values: list[float]) -> list[float]:
        ordered = sorted(values)
        return [round(ordered[int(q * (len(ordered) - 1))], 1) for q in (0.25, 0.5, 0.75)]

    every_block_wide = [p for p in kept if all(p[f"filters_l{i}"] >= wide for i in range(p["n_blocks"]))]
    return {"draws": count, "kept": len(kept),
            **{name: quartiles([p[name] for p in kept if name in p]) for name in WIDTHS},
            "mflops": quartiles([mflops("cnn", p) for p in kept]),
            "share_every_block_wide": round(len(every_block_wide) / max(1, len(kept)), 4)}


def main() -> None:
    sweep = load_settings("cnn-optuna", {})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=sweep.space)
    parser.add_argument("--limits", default=str(sweep.max_mflops), help="comma-separated MFLOPs per image")
    parser.add_argument("--draws", type=int, default=3000)
    parser.add_argument("--wide", type=int, default=32, help="filters a block needs to count as wide")
    parser.add_argument("--out", default="benchmarks/results/draws.json")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    results = {}
    print(f"{'MFLOPs':>7s} {'kept':>6s} {'filters_l0':>14s} {'filters_l1':>14s} {'dense':>14s} "
          f"{'every block >= ' + str(args.wide):>18s}")
    for limit in map(float, args.limits.split(",")):
        row = results[str(limit)] = summary(draw(args.space, limit, args.draws), args.draws, args.wide)
        print(f"{limit:7.0f} {row['kept']:6d} {str(row['filters_l0']):>14s} {str(row['filters_l1']):>14s} "
              f"{str(row['dense_units']):>14s} {row['share_every_block_wide']:18.1%}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"space": args.space, "wide": args.wide, "limits": results}, indent=2))


if __name__ == "__main__":
    main()
