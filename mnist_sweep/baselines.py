"""The notebooks' presets trained under the project's protocol, side by side with their claims.

Validation is cut from the training images as in a sweep; each preset is then evaluated once
per seed on the test set, which is fair here because nothing about a preset was chosen on it.
With several seeds (the weights' and the shuffling's; the split stays the sweep's), a notebook's
number is judged against the seed-to-seed spread of its own configuration.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass

import pandas as pd

from mnist_sweep.seeds import repeat
from mnist_sweep.data import MNIST, SearchData, scale
from mnist_sweep.outcomes import Outcome
from mnist_sweep.presets import Preset
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import evaluate, fit


@dataclass
class Run:
    """One preset trained with one seed."""

    preset: str
    seed: int
    val_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float


@dataclass
class Row:
    """A preset over its seeds: means, and the test accuracy's standard deviation."""

    preset: str
    notebook: str
    reported: float | None
    val_accuracy: float
    test_accuracy: float
    test_std: float | None  # None for a single seed
    seeds: int
    epochs: int
    seconds: float


def run_baselines(presets: list[Preset], mnist: MNIST, data: SearchData, tracker: Tracker, seed: int,
                  max_epochs: int | None = None, seeds: int = 1) -> list[Row]:
    """Each preset trained `seeds` times (seeds.repeat: `seed` to `seed + seeds - 1`), tested once per seed."""
    parent = tracker.start_run("baselines", {"run_kind": "baselines", "data_digest": mnist.digest})
    with tracker.ended_on_error(parent):
        rows = [summarise(preset, [_train(preset, mnist, data, tracker, parent, s, max_epochs)
                                   for s in (repeat(seed, k) for k in range(seeds))]) for preset in presets]
    tracker.end_run(parent, Outcome.COMPLETED)
    return rows


def _train(preset: Preset, mnist: MNIST, data: SearchData, tracker: Tracker, parent: str, seed: int,
           max_epochs: int | None) -> Run:
    params = dict(preset.params)
    if max_epochs is not None:
        params["epochs"] = min(params["epochs"], max_epochs)
    tags = {"preset": preset.name, "notebook": preset.notebook, "run_kind": "baseline",
            "data_digest": mnist.digest, "engine": "preset", "seed": str(seed)}
    run_id = tracker.start_child(parent, f"{preset.name}-seed{seed}", params, tags)
    with tracker.ended_on_error(run_id):
        result = fit(preset.model, params, data.x_train, data.y_train, validation=(data.x_val, data.y_val),
                     hook=lambda epoch, metrics: tracker.log_metrics(run_id, metrics, step=epoch), seed=seed)
        test = evaluate(result.model, scale(mnist.x_test), mnist.y_test)
    tracker.log_metrics(run_id, {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                                 "duration_s": result.seconds}, step=result.epochs_run)
    tracker.end_run(run_id, Outcome.COMPLETED)
    print(f"{preset.name} seed {seed}: val_accuracy {result.history['val_accuracy'][-1]:.4f}, "
          f"test_accuracy {test['accuracy']:.4f} ({result.seconds:.0f} s)", file=sys.stderr, flush=True)
    return Run(preset.name, seed, result.history["val_accuracy"][-1], test["accuracy"], result.epochs_run,
               result.seconds)


def summarise(preset: Preset, runs: list[Run]) -> Row:
    tests = [r.test_accuracy for r in runs]
    return Row(preset.name, preset.notebook, preset.reported, statistics.fmean(r.val_accuracy for r in runs),
               statistics.fmean(tests), statistics.stdev(tests) if len(tests) > 1 else None, len(runs),
               max(r.epochs for r in runs), statistics.fmean(r.seconds for r in runs))


def table(rows: list[Row]) -> str:
    frame = pd.DataFrame([vars(r) for r in rows])
    frame["reported"] = frame["reported"].map(lambda v: "-" if v is None or pd.isna(v) else f"{v:.4f}")
    frame["test_std"] = frame["test_std"].map(lambda v: "-" if v is None or pd.isna(v) else f"{v:.4f}")
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")
