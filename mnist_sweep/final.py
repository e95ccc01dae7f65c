"""The final step: retrain the best configuration on the training set, evaluate the test set once.

This is the only code path that reads the test images. The study records that it did, so
running the step again shows the recorded result instead of evaluating again (unless forced).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mnist_sweep.data import MNIST, scale
from mnist_sweep.studies import GRID_IMAGES, TEST_RESULTS, FinalRecord, Study, StudyRecord, TrialOutcome
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import evaluate_with_predictions, fit



@dataclass
class FinalResult:
    record: FinalRecord
    model: Any | None  # None when the recorded result was shown instead of retraining
    reused: bool


def run_final(study: Study, mnist: MNIST, tracker: Tracker, train_limit: int | None = None,
              force: bool = False) -> FinalResult:
    recorded = study.record()
    if recorded.final and not force:
        return FinalResult(record=recorded.final, model=None, reused=True)
    best = study.best()
    x_train, y_train = mnist.x_train[:train_limit], mnist.y_train[:train_limit]
    run_id = _start_run(study.name, recorded, tracker, best, len(y_train), force, mnist.test_set)

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        tracker.log_metrics(run_id, metrics, step=epoch)

    with tracker.ended_on_error(run_id):
        result = fit(recorded.space["model"], best.params, scale(x_train), y_train, hook=on_epoch,
                     seed=recorded.settings.seed + best.number, epochs=best.epochs,
                     learning_rates=best.learning_rates or None)
        test, predicted = evaluate_with_predictions(result.model, scale(mnist.x_test), mnist.y_test)
    wrong = np.flatnonzero(predicted != mnist.y_test)[:GRID_IMAGES]
    tracker.log_arrays(run_id, TEST_RESULTS, truth=mnist.y_test, predicted=predicted, wrong=wrong,
                       wrong_images=mnist.x_test[wrong])
    tracker.log_metrics(run_id, {"test_accuracy": test["accuracy"], "test_loss": test["loss"]}, step=best.epochs)
    final = _record(recorded, best, run_id, test, len(y_train), force)
    final = replace(final, model_uri=tracker.log_keras_model(run_id, result.model, f"mnist-sweep-{study.name}",
                                                             scale(mnist.x_test[:2])))
    tracker.end_run(run_id, "completed")
    study.save(recorded.with_final(final))
    return FinalResult(record=final, model=result.model, reused=False)


def _start_run(name: str, recorded: StudyRecord, tracker: Tracker, best: TrialOutcome, train_size: int,
               force: bool, test_set: str) -> str:
    params = {**best.params, "train_size": train_size, "epochs_run": best.epochs}
    tags = {"run_kind": "final", "study": name, "best_trial": best.number,
            "forced": str(force).lower(), "data_digest": recorded.data_digest or "", "test_set": test_set}
    return tracker.start_child(recorded.parent_run_id, "final", params, {k: str(v) for k, v in tags.items()})


def _record(recorded: StudyRecord, best: TrialOutcome, run_id: str, test: dict[str, float], train_size: int,
            force: bool) -> FinalRecord:
    return FinalRecord(
        trial=best.number, val_accuracy=best.value, params=best.params, epochs=best.epochs,
        train_size=train_size, test_accuracy=test["accuracy"], test_loss=test["loss"], run_id=run_id,
        forced=force, evaluations=len(recorded.final_history) + 1,
        evaluated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
