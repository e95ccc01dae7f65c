"""The notebooks' presets trained under the project's protocol, side by side with their claims.

Validation is cut from the training images as in a sweep; each preset is then evaluated once
on the test set, which is fair here because nothing about a preset was chosen on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mnist_sweep.data import MNIST, SearchData, scale
from mnist_sweep.presets import Preset
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import evaluate, fit


@dataclass
class Row:
    preset: str
    notebook: str
    reported: float | None
    val_accuracy: float
    test_accuracy: float
    epochs: int
    seconds: float


def run_baselines(presets: list[Preset], mnist: MNIST, data: SearchData, tracker: Tracker,
                  seed: int, max_epochs: int | None = None) -> list[Row]:
    parent = tracker.start_run("baselines", {"run_kind": "baselines", "data_digest": mnist.digest})
    with tracker.ended_on_error(parent):
        rows = [_train(preset, mnist, data, tracker, parent, seed, max_epochs) for preset in presets]
    tracker.end_run(parent, "completed")
    return rows


def _train(preset: Preset, mnist: MNIST, data: SearchData, tracker: Tracker, parent: str, seed: int,
           max_epochs: int | None) -> Row:
    params = dict(preset.params)
    if max_epochs is not None:
        params["epochs"] = min(params["epochs"], max_epochs)
    tags = {"preset": preset.name, "notebook": preset.notebook, "run_kind": "baseline",
            "data_digest": mnist.digest, "engine": "preset"}
    run_id = tracker.start_child(parent, preset.name, params, tags)
    with tracker.ended_on_error(run_id):
        result = fit(preset.model, params, data.x_train, data.y_train, validation=(data.x_val, data.y_val),
                     hook=lambda epoch, metrics: tracker.log_metrics(run_id, metrics, step=epoch), seed=seed)
        test = evaluate(result.model, scale(mnist.x_test), mnist.y_test)
    tracker.log_metrics(run_id, {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                                 "duration_s": result.seconds}, step=result.epochs_run)
    tracker.end_run(run_id, "completed")
    return Row(preset.name, preset.notebook, preset.reported, result.history["val_accuracy"][-1],
               test["accuracy"], result.epochs_run, result.seconds)


def table(rows: list[Row]) -> str:
    frame = pd.DataFrame([vars(r) for r in rows])
    frame["reported"] = frame["reported"].map(lambda v: "-" if v is None or pd.isna(v) else f"{v:.4f}")
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")
