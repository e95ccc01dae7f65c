"""The final step: retrain the best configuration on the training set, evaluate the test set once.

This is the only code path that reads the test images. The study records that it did, so
running the step again shows the recorded result instead of evaluating again (unless forced).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import optuna

from mnist_sweep.data import MNIST, scale
from mnist_sweep.errors import UserError
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import evaluate, fit


@dataclass
class FinalResult:
    record: dict[str, Any]
    model: Any | None  # None when the recorded result was shown instead of retraining
    reused: bool


def run_final(study: optuna.Study, mnist: MNIST, tracker: Tracker, train_limit: int | None = None,
              force: bool = False) -> FinalResult:
    recorded = study.user_attrs.get("final")
    if recorded and not force:
        return FinalResult(record=recorded, model=None, reused=True)
    best = _best_trial(study)
    params, epochs = best.user_attrs["params"], int(best.user_attrs["epochs_run"])
    x_train, y_train = mnist.x_train[:train_limit], mnist.y_train[:train_limit]
    run_id = _start_run(study, tracker, best, len(y_train), force)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(run_id, metrics, step=epoch)

    with tracker.ended_on_error(run_id):
        result = fit(study.user_attrs["space"]["model"], params, scale(x_train), y_train, hook=on_epoch,
                     seed=study.user_attrs["settings"]["seed"] + best.number, epochs=epochs,
                     learning_rates=best.user_attrs.get("learning_rates"))
        test = evaluate(result.model, scale(mnist.x_test), mnist.y_test)
    tracker.log_metrics(run_id, {"test_accuracy": test["accuracy"], "test_loss": test["loss"]}, step=epochs)
    record = _record(study, best, run_id, test, epochs, len(y_train), force)
    record["model_uri"] = tracker.log_keras_model(run_id, result.model, f"mnist-sweep-{study.study_name}",
                                                  scale(mnist.x_test[:2]))
    tracker.end_run(run_id, "completed")
    study.set_user_attr("final", record)
    study.set_user_attr("final_history", study.user_attrs.get("final_history", []) + [record])
    return FinalResult(record=record, model=result.model, reused=False)


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    try:
        return study.best_trial
    except ValueError:
        raise UserError(f"study '{study.study_name}' has no completed trial yet; run the sweep first") from None


def _start_run(study: optuna.Study, tracker: Tracker, best: Any, train_size: int, force: bool) -> str:
    parent_id = study.user_attrs["mlflow_parent_run_id"]
    params = {**best.user_attrs["params"], "train_size": train_size, "epochs_run": best.user_attrs["epochs_run"]}
    tags = {"run_kind": "final", "study": study.study_name, "best_trial": best.number,
            "forced": str(force).lower(), "data_digest": study.user_attrs.get("data_digest", "")}
    return tracker.start_child(parent_id, "final", params, {k: str(v) for k, v in tags.items()})


def _record(study: optuna.Study, best: Any, run_id: str, test: dict[str, float], epochs: int,
            train_size: int, force: bool) -> dict[str, Any]:
    return {
        "trial": best.number, "val_accuracy": best.value, "params": best.user_attrs["params"],
        "epochs": epochs, "train_size": train_size, "test_accuracy": test["accuracy"],
        "test_loss": test["loss"], "run_id": run_id, "forced": force,
        "evaluations": len(study.user_attrs.get("final_history", [])) + 1,
        "evaluated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
