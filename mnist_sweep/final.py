"""The final step: retrain the chosen configurations on the training set, evaluate the test set once.

This is the only code path of a sweep that reads the test images (`baselines` tests the
notebooks' presets, on which nothing was chosen), and the study's record accounts for every
look, whatever kills the process when. In order:

1. the retrained model is saved in the study's folder of final models (`keep`);
2. the record counts the evaluation as started, before the test images are touched;
3. the test set is evaluated and the predicted digits saved beside the model;
4. the record takes the result, before any MLflow, registry, export or report call;
5. MLflow gets the result and the model, the registry a version with the alias `champion`.

A re-run after a kill before (4) evaluates again, and counts it: evaluation number 2. After
(4) it evaluates nothing: it logs the saved model and predictions it has (5). A final run that a
killed process left RUNNING is closed as KILLED. The step runs under the study's lock.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_sweep.budget import Choice
from mnist_sweep.data import MNIST, final_slices, scale
from mnist_sweep.members import train_members
from mnist_sweep.outcomes import Outcome
from mnist_sweep.studies import GRID_IMAGES, TEST_RESULTS, FinalRecord, Study, StudyRecord
from mnist_sweep.tracking import Tracker
from mnist_sweep.training import evaluate_with_predictions


@dataclass
class FinalResult:
    record: FinalRecord
    model: Any | None  # None when the recorded result was shown instead of retraining
    reused: bool


def run_final(study: Study, mnist: MNIST, tracker: Tracker, keep: Path, train_limit: int | None = None,
              force: bool = False, choose: Callable[[], Choice] | None = None) -> FinalResult:
    """The recorded result, or a new evaluation of what `choose()` gives (default: the best trial,
    once, for its own epochs): its members retrained (members.py) and, when several, averaged."""
    record = study.record()
    done = record.final
    unlogged = done is not None and done.model_uri is None  # killed after step 4: only step 5 is left
    _close_killed_runs(tracker, study.name, done.run_id if unlogged else None)
    if done is not None and not force:
        if not unlogged:
            return FinalResult(record=done, model=None, reused=True)
        model = keras.saving.load_model(done.model_file)  # served and compiled with Keras's own loss
        with np.load(_predictions_file(done.model_file)) as saved:
            predicted = saved["predicted"]
        return FinalResult(_log(study, tracker, mnist, done, model, predicted), model, reused=False)
    choice = choose() if choose is not None else Choice.whole(study.best())
    return _evaluate(study, record, mnist, tracker, keep, train_limit, force, choice)


def _evaluate(study: Study, record: StudyRecord, mnist: MNIST, tracker: Tracker, keep: Path,
              train_limit: int | None, force: bool, choice: Choice) -> FinalResult:
    x_train, y_train = mnist.x_train[:train_limit], mnist.y_train[:train_limit]
    best = choice.trial
    run_id = _start_run(study.name, record, tracker, choice, len(y_train), force, mnist.test_set)
    tracker.log_datasets(run_id, final_slices(mnist, train_limit))
    number = record.test_evaluations + 1
    with tracker.ended_on_error(run_id):
        members = keep / f"evaluation-{number}-members"
        try:
            model = train_members(record.space["model"], choice, record.settings.seed, x_train, y_train, members,
                                  lambda step, metrics: tracker.log_metrics(run_id, metrics, step=step))
        finally:  # the members' files only pass through, also when a member failed
            shutil.rmtree(members, ignore_errors=True)
        keep.mkdir(parents=True, exist_ok=True)
        model_file = keep / f"evaluation-{number}.keras"
        model.save(model_file)
        record = replace(record, test_evaluations=number)
        study.save(record)  # counted before the test images are touched
        test, predicted = evaluate_with_predictions(model, scale(mnist.x_test), mnist.y_test)
        np.savez_compressed(_predictions_file(str(model_file)), predicted=predicted)
        final = FinalRecord(
            trial=best.number, val_accuracy=best.value, params=best.params, epochs=choice.epochs,
            train_size=len(y_train), test_accuracy=test["accuracy"], test_loss=test["loss"], run_id=run_id,
            forced=force, evaluations=number, model_file=str(model_file), members=len(choice.members),
            member_trials=_member_trials(choice),
            member_epochs=tuple(m.epochs for m in choice.members) if len(choice.members) > 1 else None,
            evaluated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        study.save(record.with_final(final))  # the result, before anything else can fail
        return FinalResult(_log(study, tracker, mnist, final, model, predicted), model, reused=False)


def _log(study: Study, tracker: Tracker, mnist: MNIST, final: FinalRecord, model: Any,
         predicted: np.ndarray) -> FinalRecord:
    """MLflow's copy of a recorded evaluation: its result, its model and a registry version."""
    run_id = final.run_id
    tracker.reopen(run_id)
    wrong = np.flatnonzero(predicted != mnist.y_test)[:GRID_IMAGES]
    tracker.log_arrays(run_id, TEST_RESULTS, truth=mnist.y_test, predicted=predicted, wrong=wrong,
                       wrong_images=mnist.x_test[wrong])
    tracker.log_metrics(run_id, {"test_accuracy": final.test_accuracy, "test_loss": final.test_loss},
                        step=final.trained_epochs())
    model_uri = tracker.log_keras_model(run_id, model, scale(mnist.x_test[:2]))  # already served: ensemble()
    tracker.register(model_uri, f"mnist-sweep-{study.name}", run_id,
                     {"study": study.name, "test_accuracy": f"{final.test_accuracy:.4f}",
                      "evaluation": final.evaluations})
    final = replace(final, model_uri=model_uri)
    study.save(_replace_final(study.record(), final))
    tracker.end_run(run_id, Outcome.COMPLETED)
    return final


def _replace_final(record: StudyRecord, final: FinalRecord) -> StudyRecord:
    """The record with its evaluation of step 4 (found by its run), now carrying its model's URI; a
    kill between the writes of step 4 may have left it out of the history, where it is added."""
    history = tuple(f for f in record.final_history if f.run_id != final.run_id) + (final,)
    return replace(record, final=final, final_history=history)


def _member_trials(choice: Choice) -> tuple[int, ...] | None:
    """The trials an ensemble averages, where they are more than its best retrained again."""
    trials = tuple(m.trial.number for m in choice.members)
    return trials if len(set(trials)) > 1 else None


def _predictions_file(model_file: str) -> Path:
    return Path(model_file).with_suffix(".npz")


def _close_killed_runs(tracker: Tracker, study: str, resumed: str | None) -> None:
    """Final runs a killed process left RUNNING (the study's lock is held: none is alive)."""
    for run_id in tracker.running_finals(study):
        if run_id != resumed:
            tracker.end_run(run_id, Outcome.KILLED, "process stopped during the final step")


def _start_run(name: str, recorded: StudyRecord, tracker: Tracker, choice: Choice, train_size: int,
               force: bool, test_set: str) -> str:
    best = choice.trial
    params = {**best.params, "train_size": train_size, "epochs_run": choice.epochs}
    tags = {"run_kind": "final", "study": name, "best_trial": best.number,
            "forced": str(force).lower(), "data_digest": recorded.data_digest or "", "test_set": test_set}
    return tracker.start_child(recorded.parent_run_id, "final", params, {k: str(v) for k, v in tags.items()})
