"""Training speed against the machine's limit, and what each TensorFlow setting does to it.

For the MLP 784-512-256-10 and notebook 003's CNN: training samples per second at batch
sizes 32-256, set against this CPU's float32 bound (a large matrix product measured here;
a model's training FLOPs per sample taken as three times its forward FLOPs). Then, at one
batch size, the effect of each setting: steps_per_execution, the input path (NumPy arrays
against a cached tf.data pipeline), the evaluation batch size, and TensorFlow's intra- and
inter-op threads (each thread setting in a fresh spawned process, as TensorFlow fixes them
at start-up). Each timing is a second epoch, after a first that traces the functions.

    python benchmarks/throughput.py --data ../shared/data/mnist.npz           # ~6 min
    python benchmarks/throughput.py --data ../shared/data/mnist.npz --quick   # CI smoke, ~1 min
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

MODELS = {
    "mlp-512-256": ("mlp", {"n_layers": 2, "units_l0": 512, "units_l1": 256, "dropout_l0": 0.2, "dropout_l1": 0.2,
                            "optimizer": "adam", "learning_rate": 1e-3, "augment": False}),
    "cnn-nb003": ("cnn", {"n_blocks": 3, "filters_l0": 32, "filters_l1": 64, "filters_l2": 64, "kernel": 3,
                          "pool_l2": False, "padding": "valid", "dense_units": 64, "optimizer": "rmsprop",
                          "learning_rate": 1e-3}),
}
BATCHES = (32, 64, 128, 256)
TUNE_BATCH = 64  # the batch size the settings are compared at (the notebooks' most common)


def peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large float32 matrix product: as fast as this CPU multiplies, in practice."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    tf.linalg.matmul(a, a).numpy()  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        result = tf.linalg.matmul(a, a)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - began)


class _EpochTimes:
    def __init__(self):
        import keras

        class Recorder(keras.callbacks.Callback):
            def on_epoch_begin(inner, epoch, logs=None):
                inner.began = time.perf_counter()

            def on_epoch_end(inner, epoch, logs=None):
                self.seconds.append(time.perf_counter() - inner.began)

        self.seconds: list[float] = []
        self.callback = Recorder()


def train_rate(name: str, x, y, batch: int, steps: int | None = None, dataset: bool = False) -> float:
    """Training samples per second in a second epoch of `x` (the first traces the functions)."""
    import keras
    import tensorflow as tf

    from mnist_sweep.models import STEPS_PER_EXECUTION, build_model, make_optimizer

    kind, params = MODELS[name]
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(kind, {**params, "batch_size": batch, "epochs": 2})
    model.compile(optimizer=make_optimizer(params["optimizer"], params["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps or STEPS_PER_EXECUTION)
    timer = _EpochTimes()
    if dataset:
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache().prefetch(tf.data.AUTOTUNE)
        model.fit(data, epochs=2, callbacks=[timer.callback], verbose=0)
    else:
        model.fit(x, y, batch_size=batch, epochs=2, callbacks=[timer.callback], verbose=0)
    return len(y) / timer.seconds[-1]


def eval_rate(name: str, x, y, batch: int) -> float:
    """Evaluation samples per second (the validation pass of every epoch), after a warm-up pass."""
    import keras

    from mnist_sweep.models import build_model

    kind, params = MODELS[name]
    keras.backend.clear_session()
    model = build_model(kind, {**params, "batch_size": 64, "epochs": 1})
    model.evaluate(x, y, batch_size=batch, verbose=0)
    began = time.perf_counter()
    model.evaluate(x, y, batch_size=batch, verbose=0)
    return len(y) / (time.perf_counter() - began)


def train_flops(name: str) -> float:
    import keras

    from mnist_sweep.models import build_model, forward_mflops

    kind, params = MODELS[name]
    keras.backend.clear_session()
    return 3 * forward_mflops(build_model(kind, {**params, "batch_size": 64, "epochs": 1})) * 1e6


def _images(data_path: str, count: int):
    from mnist_sweep.data import load_mnist, scale

    mnist = load_mnist(data_path)
    return scale(mnist.x_train[:count]), mnist.y_train[:count]


def _sizes(name: str, quick: bool) -> int:
    return (1000 if quick else 20000) if name.startswith("mlp") else (500 if quick else 5000)


def threaded(intra: int, inter: int, data_path: str, quick: bool, out: mp.Queue) -> None:
    """In a fresh process: set the threads first, then measure each model at TUNE_BATCH."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    out.put({name: train_rate(name, *_images(data_path, _sizes(name, quick)), TUNE_BATCH) for name in MODELS})


def thread_rates(data_path: str, quick: bool) -> dict[str, dict[str, float]]:
    context = mp.get_context("spawn")
    rates = {}
    settings = ((1, 1), (2, 2)) if quick else ((1, 1), (2, 1), (2, 2), (0, 0))  # 0: TensorFlow's own choice
    for intra, inter in settings:
        out = context.Queue()
        process = context.Process(target=threaded, args=(intra, inter, data_path, quick, out))
        process.start()
        rates[f"intra {intra} inter {inter}"] = out.get()
        process.join()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the MNIST .npz")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: small slices of the data, two thread settings")
    parser.add_argument("--out", default="benchmarks/results/throughput.json")
    args = parser.parse_args()
    peak = peak_flops(512 if args.quick else 2048)
    print(f"float32 matrix product: {peak / 1e9:.1f} GFLOP/s")
    result = {"peak_gflops": round(peak / 1e9, 2), "models": {}}
    for name in MODELS:
        x, y = _images(args.data, _sizes(name, args.quick))
        flops = train_flops(name)
        rates = {b: train_rate(name, x, y, b) for b in BATCHES}
        settings = {"steps_per_execution 1": train_rate(name, x, y, TUNE_BATCH, steps=1),
                    "tf.data cached": train_rate(name, x, y, TUNE_BATCH, dataset=True)}
        evals = {b: eval_rate(name, x, y, b) for b in (32, 1024)}
        result["models"][name] = {"train_mflops_per_sample": round(flops / 1e6, 3),
                                  "samples_per_s": {b: round(r) for b, r in rates.items()},
                                  "share_of_peak": {b: round(r * flops / peak, 3) for b, r in rates.items()},
                                  f"at batch {TUNE_BATCH}": {k: round(v) for k, v in settings.items()},
                                  "eval_samples_per_s": {b: round(r) for b, r in evals.items()}}
        print(f"\n{name}: {flops / 1e6:.2f} training MFLOPs per sample")
        print(f"{'batch':>8s}{'samples/s':>12s}{'of peak':>10s}")
        for b, r in rates.items():
            print(f"{b:8d}{r:12.0f}{r * flops / peak:10.1%}")
        base = rates[TUNE_BATCH]
        for label, value in settings.items():
            print(f"  batch {TUNE_BATCH}, {label}: {value:.0f} samples/s ({value / base:.2f}x the default "
                  f"steps_per_execution 32 on NumPy arrays)")
        print(f"  evaluation: batch 32 {evals[32]:.0f}, batch 1024 {evals[1024]:.0f} samples/s")
    threads = thread_rates(args.data, args.quick)
    result["threads"] = {k: {m: round(v) for m, v in r.items()} for k, r in threads.items()}
    print(f"\nthreads, batch {TUNE_BATCH} (samples/s):")
    for label, rates in threads.items():
        print(f"  {label:18s}" + "".join(f"{m} {v:7.0f}   " for m, v in rates.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
