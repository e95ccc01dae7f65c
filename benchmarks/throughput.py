"""Training speed against the machine's own limit.

First the machine: its CPU and vector flags, and its float32 bound, the best of a large matrix
product in NumPy and in TensorFlow (and TensorFlow's bfloat16 product where the CPU has
bfloat16 instructions). Then the MLP 784-512-256-10 and notebook 003's CNN, each trained on the
sweep's 50,000 search images for several epochs through the project's own path
(`training.fit`, with the 10,000 validation images), at batch sizes 32 to 256: training
samples per second (the median epoch after the first, which traces the functions; its training
alone, as `training.fit` times it, the validation pass not counted), and the
share of the float32 bound that is (training FLOPs per sample taken as three times the
forward FLOPs). Each training is measured in a fresh process with a thread per core, as a
`--workers 1` trial runs: measured in the process that had just run the bounds' products, the
MLP trained at 10,436 samples/s at batch 64, against 18,022 in a fresh one (2026-12-06, Intel
Xeon). Last, TensorFlow's threads, each setting in a fresh process.

Keras's backend is whatever KERAS_BACKEND says: `KERAS_BACKEND=jax python benchmarks/throughput.py`
measures the same models on JAX.
`--xla` also times the MLP at its largest batch with Keras's `jit_compile=True` (TensorFlow's XLA;
Keras leaves it off on a CPU), in a fresh process as the rest. The models train in the number
format a sweep would use on this machine (`--precision auto`, runtime/precision.py: bfloat16 on a
CPU with AMX); in bfloat16, each model is timed once more in float32, and the share of the float32
bound is still what is reported, so the two formats are measured against one yardstick.

    python benchmarks/throughput.py --data ../shared/data/mnist.npz           # ~8 min
    python benchmarks/throughput.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
    python benchmarks/throughput.py --data ../shared/data/mnist.npz --xla     # and the MLP through XLA
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from machine import cpu, headline
from mnist_sweep.runtime import precision
from mnist_sweep.runtime.precision import Precision
from mnist_sweep.runtime.parallel import ChildDied, run_each

MODELS = {
    "mlp-512-256": ("mlp", {"n_layers": 2, "units_l0": 512, "units_l1": 256, "dropout_l0": 0.2, "dropout_l1": 0.2,
                            "optimizer": "adam", "learning_rate": 1e-3, "augment": False}),
    "cnn-nb003": ("cnn", {"n_blocks": 3, "filters_l0": 32, "filters_l1": 64, "filters_l2": 64, "kernel": 3,
                          "pool_l2": False, "padding": "valid", "dense_units": 64, "optimizer": "rmsprop",
                          "learning_rate": 1e-3}),
}
BATCHES = (32, 64, 128, 256)
# The smoke run (CI) takes every path once: the smallest and largest batch, and the thread
# settings on the MLP alone; each measurement is a fresh process that imports TensorFlow.
QUICK_BATCHES = (32, 256)
TUNE_BATCH = 64  # the batch the thread settings are compared at (the notebooks' most common)


def bounds(size: int, repeats: int) -> dict[str, float]:
    """GFLOP/s of a square matrix product: NumPy and TensorFlow in float32, TensorFlow in bfloat16."""
    import tensorflow as tf

    def timed(product, a) -> float:
        product(a)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            product(a)
            best = min(best, time.perf_counter() - began)
        return 2 * size**3 / best / 1e9

    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    found = {"numpy float32": timed(lambda m: m @ m, a),
             "tensorflow float32": timed(lambda m: tf.linalg.matmul(m, m).numpy(), tf.constant(a))}
    if {"avx512_bf16", "amx_bf16"} & set(cpu()["flags"]):
        found["tensorflow bfloat16"] = timed(lambda m: tf.linalg.matmul(m, m).numpy(), tf.cast(a, tf.bfloat16))
    return found


def train_flops(name: str) -> float:
    import keras

    from mnist_sweep.models import build_model, forward_mflops

    kind, params = MODELS[name]
    keras.backend.clear_session()
    return 3 * forward_mflops(build_model(kind, {**params, "batch_size": 64, "epochs": 1})) * 1e6


def train_rate(name: str, data, batch: int, epochs: int) -> float:
    """Training samples per second through training.fit: its median epoch of training alone (the
    validation pass not counted) after the first, which traces the functions."""
    from mnist_sweep.training import fit

    kind, params = MODELS[name]
    result = fit(kind, {**params, "batch_size": batch, "epochs": epochs}, data.x_train, data.y_train,
                 validation=(data.x_val, data.y_val))
    return len(data.y_train) / statistics.median(result.train_seconds[1:])


def _data(data_path: str, quick: bool):
    from mnist_sweep.data import load_mnist, search_data

    return search_data(load_mnist(data_path), 2000 if quick else 10000, 0, 2000 if quick else None)


def threaded(job: tuple[str, bool, int, str, int, bool, str]) -> tuple[float, int]:
    """In a fresh process whose threads are set (runtime.parallel): one model at one batch size."""
    data_path, quick, epochs, name, batch, xla, number_format = job
    precision.use(number_format)
    compiled: list[bool] = []
    if xla:  # every model this process compiles, the project's included, through XLA
        import keras

        plain = keras.Model.compile

        def compile(model, *args, **kwargs):
            plain(model, *args, **{**kwargs, "jit_compile": True})
            compiled.append(model.jit_compile)  # Keras falls back silently where a layer cannot

        keras.Model.compile = compile
    data = _data(data_path, quick)
    rate = train_rate(name, data, batch, epochs)
    if xla and not (compiled and all(compiled)):
        raise RuntimeError(f"{name}: Keras did not compile it through XLA")
    return rate, len(data.y_train)


def fresh_rate(intra: int, data_path: str, quick: bool, epochs: int, name: str, batch: int,
               number_format: str, xla: bool = False) -> tuple[float, int]:
    """Samples per second of `name` at `batch`, and the images it trained on, in a fresh process
    of `intra` threads: the final step's way of running a job, so a process that dies ends the
    script at once."""
    try:
        return next(run_each(threaded, [(data_path, quick, epochs, name, batch, xla, number_format)], 1, intra))
    except ChildDied as died:
        raise SystemExit(f"{name} at batch {batch}: {died}") from None


def thread_rates(data_path: str, quick: bool, epochs: int, number_format: str) -> dict[str, dict[str, float]]:
    names = list(MODELS)[:1] if quick else list(MODELS)
    return {f"intra {intra} inter {intra}": {
        name: fresh_rate(intra, data_path, quick, epochs, name, TUNE_BATCH, number_format)[0] for name in names}
        for intra in (1, 2)}


def share_of(samples_per_s: float, flops_per_sample: float, bound_gflops: float) -> float:
    """The share of the float32 bound that a training rate is: every figure's one yardstick."""
    return samples_per_s * flops_per_sample / (bound_gflops * 1e9)


def float32_rates(result: dict, cores: int, data_path: str, quick: bool, epochs: int,
                  batches: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Each model again in float32 at one batch (the MLP's largest, the CNN's TUNE_BATCH): what the
    number format buys, measured in the same run."""
    found = {}
    print("\nthe same in float32:")
    for name, batch in zip(MODELS, (batches[-1], TUNE_BATCH if not quick else batches[0])):
        rate = fresh_rate(cores, data_path, quick, epochs, name, batch, Precision.FLOAT32)[0]
        chosen = result["models"][name]["samples_per_s"][batch]
        share = share_of(rate, result["models"][name]["train_mflops_per_sample"] * 1e6, result["peak_gflops"])
        found[name] = {"batch": batch, "samples_per_s": round(rate), "share_of_peak": round(share, 3)}
        print(f"  {name} at batch {batch}: {rate:.0f} samples/s ({share:.1%} of the float32 bound); "
              f"{result['precision']} trained {chosen / rate:.2f}x that")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--epochs", type=int, default=4, help="per measurement; the first is not counted")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: 2,000 images, 2 epochs, 2 batches, small products")
    parser.add_argument("--xla", action="store_true", help="also the MLP at the largest batch through XLA")
    parser.add_argument("--precision", choices=precision.CHOICES, default=Precision.AUTO.value,
                        help="the number format to train in (default: auto, as a sweep trains on this machine); "
                             "with bfloat16, each model is also timed in float32 at one batch")
    parser.add_argument("--out", default="benchmarks/results/throughput.json")
    args = parser.parse_args()
    import keras

    epochs = 2 if args.quick else args.epochs
    chosen = precision.resolve(args.precision)
    found = bounds(512 if args.quick else 4096, 3 if args.quick else 10)
    bound = max(v for k, v in found.items() if "float32" in k)
    print(headline())
    print(f"Keras backend: {keras.backend.backend()}; " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in found.items()))
    print(f"training in {chosen} (--precision {args.precision})")
    result = {"cpu": cpu(), "backend": keras.backend.backend(), "precision": chosen,
              "bounds_gflops": {k: round(v, 1) for k, v in found.items()},
              "peak_gflops": round(bound, 1), "epochs": epochs, "models": {}}
    cores = os.cpu_count() or 1
    batches = QUICK_BATCHES if args.quick else BATCHES
    for name in MODELS:
        flops = train_flops(name)
        measured = {b: fresh_rate(cores, args.data, args.quick, epochs, name, b, chosen) for b in batches}
        rates, images = {b: r for b, (r, _) in measured.items()}, measured[batches[0]][1]
        result["models"][name] = {"train_mflops_per_sample": round(flops / 1e6, 3),
                                  "samples_per_s": {b: round(r) for b, r in rates.items()},
                                  "share_of_peak": {b: round(share_of(r, flops, bound), 3) for b, r in rates.items()}}
        print(f"\n{name}: {flops / 1e6:.2f} training MFLOPs per sample, {images} images, "
              f"median of epochs 2 to {epochs}, a fresh process of {cores} threads")
        print(f"{'batch':>8s}{'samples/s':>12s}{'GFLOP/s':>10s}{'of the float32 bound':>22s}")
        for b, r in rates.items():
            print(f"{b:8d}{r:12.0f}{r * flops / 1e9:10.1f}{share_of(r, flops, bound):22.1%}")
    if args.xla:
        mlp, batch = next(iter(MODELS)), batches[-1]
        plain = result["models"][mlp]["samples_per_s"][batch]
        rate = fresh_rate(cores, args.data, args.quick, epochs, mlp, batch, chosen, xla=True)[0]
        result["xla"] = {"model": mlp, "batch": batch, "samples_per_s": round(rate)}
        print(f"\n{mlp} at batch {batch} through XLA (jit_compile=True): {rate:.0f} samples/s, "
              f"{rate / plain:.2f}x the same without")
    if chosen != Precision.FLOAT32:
        result["float32"] = float32_rates(result, cores, args.data, args.quick, epochs, batches)
    threads = thread_rates(args.data, args.quick, epochs, chosen)
    result["threads"] = {k: {m: round(v) for m, v in r.items()} for k, r in threads.items()}
    print(f"\nTensorFlow threads, batch {TUNE_BATCH} (samples/s):")
    for label, rates in threads.items():
        print(f"  {label:18s}" + "".join(f"{m} {v:7.0f}   " for m, v in rates.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
