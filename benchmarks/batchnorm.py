"""What batch normalisation costs a CNN epoch: none, Keras's own layer, and this project's fused one.

The field's network (benchmarks/techniques.py's `field`, with augmentation, a warm-up cosine over 12
epochs, smoothing and EMA, as sweeps/cnn-optuna.yaml enqueued it until 87842e7) on one TensorFlow thread,
as a final-step member trains, over 10,000 search images: epochs timed in turns (none, Keras,
fused, again and again) so that a drift of the machine falls on all three, each model built and
traced before it is timed, with its validation accuracy beside it.

    python benchmarks/batchnorm.py --data ../shared/data/mnist.npz            # ~4 min
    python benchmarks/batchnorm.py --data ../shared/data/mnist.npz --quick    # CI smoke, ~30 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path
from unittest import mock

from machine import cpu, headline
from techniques import NETWORKS, TECHNIQUES

VARIANTS = ("none", "keras", "fused")
FIELD = {**NETWORKS["field"], **{k: v for t in TECHNIQUES.values() for k, v in t.items()}, "epochs": 12}


def network(variant: str, steps_per_epoch: int):
    import keras

    from mnist_sweep import models

    params = {**FIELD, "batch_norm": variant != "none"}
    # Keras's own layer where the project builds its fused one.
    swap = (mock.patch.object(models, "FusedBatchNormalization", keras.layers.BatchNormalization)
            if variant == "keras" else contextlib.nullcontext())
    with swap:
        return models.build_model("cnn", params, steps_per_epoch), params["batch_size"]


def epoch(variant: str, data, found: dict) -> float:
    model, batch = network(variant, len(data.y_train) // 128)
    model.fit(data.x_train[:batch * 4], data.y_train[:batch * 4], batch_size=batch, epochs=1, verbose=0)  # trace
    began = time.perf_counter()
    model.fit(data.x_train, data.y_train, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - began
    found.setdefault(f"{variant}_val_accuracy", []).append(
        float(model.evaluate(data.x_val, data.y_val, batch_size=1024, verbose=0)[1]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1,000 images, 1 round")
    parser.add_argument("--out", default="benchmarks/results/batchnorm.json")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # as a final-step member trains
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from mnist_sweep.data import load_mnist, search_data

    data = search_data(load_mnist(args.data), 1000 if args.quick else 10000, 0, 1000 if args.quick else None)
    found: dict[str, list[float]] = {}
    for _ in range(1 if args.quick else args.rounds):
        for variant in VARIANTS:
            found.setdefault(f"{variant}_s", []).append(epoch(variant, data, found))
    median = {v: statistics.median(found[f"{v}_s"]) for v in VARIANTS}
    print(headline())
    print(f"the field network, 1 thread, one epoch of {len(data.y_train)} images, medians of {len(found['none_s'])}: "
          + ", ".join(f"{v} {median[v]:.2f} s ({median[v] / median['none']:.2f}x)" for v in VARIANTS)
          + f"; fused against Keras's: {median['keras'] / median['fused']:.2f}x faster")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"cpu": cpu(), **found, "median_s": median}, indent=2))


if __name__ == "__main__":
    main()
