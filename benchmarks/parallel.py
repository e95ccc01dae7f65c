"""Parallel trials on one machine: two processes of one thread each against one process of two.

The same configurations, drawn at random from the MLP space (seeded), are trained by
(a) one spawned process with two TensorFlow threads, one trial at a time, and
(b) two spawned processes with one thread each, taking the next configuration from a shared
    queue as they finish (as sweep workers do).
Each trial is the framework's training path (`training.fit`, validation included) without
tracking, whose cost the overhead benchmark measures. The modes run a b b a, so drift in
the machine's speed falls on both; the result is trials per hour and the ratio b/a.

    python benchmarks/parallel.py --data ../shared/data/mnist.npz            # ~15 min
    python benchmarks/parallel.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~2 min
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from pathlib import Path

from machine import cpu, headline

CORES = 2


def configurations(count: int, epochs: int, seed: int) -> list[dict]:
    """`count` random points of the MLP space, epochs cut to `epochs`, early stopping off."""
    import optuna

    from mnist_sweep.space import load_space

    space = load_space("mlp")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(count):
        params = space.sample(study.ask())
        configs.append({**params, "epochs": epochs, "early_stopping": False})  # every trial trains all epochs
    return configs


def worker(threads: int, data_path: str, limit: int | None, queue: mp.Queue, done: mp.Queue) -> None:
    """Train configurations from `queue` until it is empty, with `threads` TensorFlow threads."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mnist_sweep.data import load_mnist, search_data
    from mnist_sweep.training import fit

    data = search_data(load_mnist(data_path), 10000, 0, limit)
    while True:
        item = queue.get()
        if item is None:
            return
        number, params = item
        result = fit("mlp", params, data.x_train, data.y_train, validation=(data.x_val, data.y_val), seed=number)
        done.put((number, result.seconds))


def run(processes: int, configs: list[dict], data_path: str, limit: int | None) -> float:
    """Wall seconds for `processes` spawned workers, CORES // processes threads each, to train all."""
    context = mp.get_context("spawn")  # a fresh interpreter: TensorFlow's threads are set before it starts
    queue, done = context.Queue(), context.Queue()
    for item in enumerate(configs):
        queue.put(item)
    for _ in range(processes):
        queue.put(None)
    workers = [context.Process(target=worker, args=(CORES // processes, data_path, limit, queue, done))
               for _ in range(processes)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if any(w.exitcode for w in workers):
        raise SystemExit(f"a worker failed (exit codes {[w.exitcode for w in workers]})")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--trials", type=int, default=10, help="configurations per run (default: 10)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per configuration (default: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 2 trials of 1 epoch on 2,000 images, each mode once")
    parser.add_argument("--out", default="benchmarks/results/parallel.json")
    args = parser.parse_args()
    count, epochs, limit = (2, 1, 2000) if args.quick else (args.trials, args.epochs, None)
    configs = configurations(count, epochs, seed=0)
    modes = {"1 process x 2 threads": 1, "2 processes x 1 thread": 2}
    times: dict[str, list[float]] = {name: [] for name in modes}
    for name in [*modes] if args.quick else [*modes, *reversed(modes)]:  # a b b a
        times[name].append(run(modes[name], configs, os.path.abspath(args.data), limit))
        print(f"{name}: {times[name][-1]:.1f} s for {count} trials", flush=True)
    per_hour = {name: 3600 * count * len(t) / sum(t) for name, t in times.items()}
    one, two = per_hour.values()
    result = {"trials": count, "epochs": epochs, "train_images": limit or 50000, "seconds": times,
              "trials_per_hour": {k: round(v, 1) for k, v in per_hour.items()}, "ratio": round(two / one, 3),
              "faster": max(per_hour, key=per_hour.get)}
    print(headline())
    print(f"{'':26s}{'trials/hour':>12s}")
    for name, value in per_hour.items():
        print(f"{name:26s}{value:12.1f}")
    print(f"two processes / one process = {two / one:.3f}; faster: {result['faster']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), **result}, indent=2))


if __name__ == "__main__":
    main()
