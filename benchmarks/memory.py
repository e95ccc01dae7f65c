"""Memory of a long sweep: resident memory after each trial, its growth, and the peak.

Runs `python -m mnist_sweep optuna` in a fresh folder, as a user would, then reads the
`rss_mb` every trial run logs to MLflow. With --compare it runs the sweep twice, with the
default memory budget and without one (the process never recycled). Targets: peak under
3 GiB, growth from trial 1 to the last under 200 MiB.

    python benchmarks/memory.py --data ../shared/data/mnist.npz --compare          # ~15 min
    python benchmarks/memory.py --data ../shared/data/mnist.npz --trials 12        # CI smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from machine import cpu, headline

PEAK_MB, GROWTH_MB = 3 * 1024, 200
QUICK = ["--train-limit", "10000", "--max-epochs", "2"]  # many models, little training: memory, not accuracy
# One process, so each trial's rss_mb and the sampled peak are of the process that trains
# (the budget is per process: with --workers 2 each worker keeps its own).
ONE = ["--workers", "1"]
NO_BUDGET = 10**6


def sweep(data: str, trials: int, recycle_mb: float | None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "mnist_sweep", "optuna", "--trials", str(trials), "--data", data,
                   "--study-name", "memory", *QUICK, *ONE, "--recycle-mb", str(recycle_mb or NO_BUDGET)]
        began = time.perf_counter()
        process = subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak = [0.0]
        watcher = threading.Thread(target=_watch, args=(process, peak), daemon=True)
        watcher.start()
        stderr = process.communicate()[1]
        if process.returncode != 0:
            sys.exit(f"the sweep failed: {stderr.strip().splitlines()[-1]}")
        rss = _rss_by_trial(Path(folder) / "mlruns" / "mlflow.db")
    return {"recycle_mb": recycle_mb, "trials": len(rss), "seconds": round(time.perf_counter() - began, 1),
            "rss_first_mb": rss[0], "rss_last_mb": rss[-1], "rss_max_mb": max(rss),
            # The sampler can miss the top just before a recycle; a trial's own reading is a floor.
            "growth_mb": round(rss[-1] - rss[0], 1), "peak_mb": round(max(peak[0], *rss), 1),
            "recycles": stderr.count("going on in a fresh process")}


def _watch(process: subprocess.Popen, peak: list[float]) -> None:
    """Sample the sweep's RSS twice a second: the kernel's high-water mark resets at each exec."""
    statm = Path(f"/proc/{process.pid}/statm")
    while process.poll() is None:
        try:
            peak[0] = max(peak[0], int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.5)


def _rss_by_trial(db: Path) -> list[float]:
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("mnist-sweep").experiment_id
    runs = client.search_runs([experiment], "tags.run_kind = 'trial'", max_results=10000)
    return [round(r.data.metrics["rss_mb"], 1) for r in sorted(runs, key=lambda r: int(r.data.tags["trial"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--recycle-mb", type=float, default=150.0, help="the sweep's memory budget (default: 150)")
    parser.add_argument("--compare", action="store_true", help="also run without a budget (first)")
    parser.add_argument("--out", default="benchmarks/results/memory.json")
    args = parser.parse_args()
    budgets = ([None] if args.compare else []) + [args.recycle_mb]
    results = [sweep(args.data, args.trials, budget) for budget in budgets]
    print(headline())
    print("RSS in MB after trial 1, after the last trial, the most after any trial, "
          "and the peak sampled twice a second")
    print(f"{'budget':>10s}{'trials':>8s}{'trial 1':>9s}{'last':>7s}{'max':>7s}{'growth':>8s}{'peak':>7s}"
          f"{'recycles':>10s}{'time':>8s}")
    for r in results:
        budget = "none" if r["recycle_mb"] is None else f"{r['recycle_mb']:g} MB"
        print(f"{budget:>10s}{r['trials']:8d}{r['rss_first_mb']:9.0f}{r['rss_last_mb']:7.0f}{r['rss_max_mb']:7.0f}"
              f"{r['growth_mb']:8.0f}{r['peak_mb']:7.0f}{r['recycles']:10d}{r['seconds']:7.0f}s")
    last = results[-1]
    met = last["peak_mb"] < PEAK_MB and last["growth_mb"] < GROWTH_MB
    print(f"with the budget: peak {last['peak_mb']:.0f} MB (target < {PEAK_MB}), growth {last['growth_mb']:.0f} MB "
          f"(target < {GROWTH_MB}): {'met' if met else 'NOT met'}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), "runs": results, "met": met}, indent=2))


if __name__ == "__main__":
    main()
