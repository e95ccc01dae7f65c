"""One in-process Optuna sweep as the CLI runs it, for the benchmarks that compare sweeps.

The search only: the same Objective, MLflow logging and pruners as `python -m mnist_sweep
optuna`, on throwaway stores, without the final retrain (which would cost the same in
every variant compared).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import optuna
from machine import cpu

from mnist_sweep.config import Settings, load_settings
from mnist_sweep.data import load_mnist, search_data
from mnist_sweep.deadlines import SearchEnds
from mnist_sweep.engines.optuna import Objective, optimize
from mnist_sweep.engines.optuna_samplers import make_pruner, make_sampler
from mnist_sweep.engines.optuna_storage import open_storage
from mnist_sweep.engines.optuna_study import FINISHED
from mnist_sweep.runtime.memory import MemoryBudget
from mnist_sweep.runtime.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker
from mnist_sweep.runtime.workers import threads_per_worker, use_threads

optuna.logging.set_verbosity(optuna.logging.ERROR)


def run_sweep(data, trials: int, sampler: str, pruner: str, seed: int, max_epochs: int, bar: bool = True,
              space_name: str = "mlp", max_mflops: float | None = None) -> dict:
    """Epochs trained, wall seconds, and the best validation accuracy after each finished trial."""
    space = load_space(space_name).with_max_epochs(max_epochs)
    with tempfile.TemporaryDirectory() as folder:
        tracker = Tracker(f"sqlite:///{Path(folder) / 'mlflow.db'}", "benchmark", Path(folder) / "artifacts")
        study = optuna.create_study(storage=open_storage(str(Path(folder) / "optuna.journal")), direction="maximize",
                                    sampler=make_sampler(sampler, seed), pruner=make_pruner(pruner, max_epochs))
        parent = tracker.parent_run(study.study_name, {"engine": "optuna"})
        objective = Objective(space, data, tracker, parent, {"engine": "optuna"}, seed, max_mflops)
        began = time.perf_counter()
        with Progress(trials, 0, bar=bar) as shown:
            optimize(study, objective, trials, SearchEnds(), shown, MemoryBudget(None))
        seconds = time.perf_counter() - began
        finished = [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]
    best, so_far = [], float("-inf")
    for t in finished:  # pruned trials count as trials, but only completed ones can be the best
        so_far = max(so_far, t.value) if t.state == optuna.trial.TrialState.COMPLETE else so_far
        best.append(so_far)
    return {"sampler": sampler, "pruner": pruner, "seed": seed, "trials": len(finished),
            "completed": sum(t.state == optuna.trial.TrialState.COMPLETE for t in finished),
            "epochs": sum(len(t.intermediate_values) for t in finished), "seconds": round(seconds, 1),
            "best": round(best[-1], 4), "best_after": best}


def run_sweeps(data_path: str, validation: int, limit: int, jobs: list[tuple], processes: int = 2) -> list[dict]:
    """`run_sweep(data, *job)` for each job, in `processes` spawned processes that split the cores
    (two sweeps of one thread each do 1.9 times the work of one of two threads, benchmarks/parallel.py);
    the results come back in the jobs' order."""
    context = mp.get_context("spawn")  # a fresh interpreter: TensorFlow's threads are set before it starts
    with context.Pool(processes, _load_data, (data_path, validation, limit, threads_per_worker(processes))) as pool:
        return pool.starmap(_sweep, jobs, chunksize=1)


_DATA = None  # each pool process's search data, loaded once


def _load_data(data_path: str, validation: int, limit: int, threads: int) -> None:
    global _DATA
    use_threads(threads)
    _DATA = search_data(load_mnist(data_path), validation, 0, limit)


def _sweep(*job) -> dict:
    """One job: (trials, sampler, pruner, seed, max_epochs[, space, max_mflops])."""
    result = run_sweep(_DATA, *job[:5], False, *job[5:])
    print(f"{result['sampler']} seed {result['seed']}: best {result['best']:.4f} in {result['seconds']:.0f} s",
          flush=True)
    return result


def default_settings() -> Settings:
    """The default MLP sweep's settings (sweeps/mlp-optuna.yaml, found as the CLI finds it), so a
    benchmark compares against the sampler or pruner a user actually gets."""
    return load_settings("mlp-optuna", {})


def validation_size(quick: bool) -> int:
    """The CLI's 10,000 validation images; 2,000 in a smoke run, where each trial's evaluation dominates."""
    return 2000 if quick else 10000


def sweep_parser(doc: str, name: str, train_limit: int, max_epochs: int, quick: str) -> argparse.ArgumentParser:
    """The options every sweep-comparing benchmark takes; each adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--train-limit", type=int, default=train_limit, help="training images per trial")
    parser.add_argument("--max-epochs", type=int, default=max_epochs)
    parser.add_argument("--quick", action="store_true", help=f"CI smoke run: {quick}")
    parser.add_argument("--out", default=f"benchmarks/results/{name}.json")
    return parser


def write_json(path: str, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"cpu": cpu(), **result}, indent=2))
