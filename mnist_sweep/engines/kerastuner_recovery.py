"""The MLflow runs of Keras Tuner trials whose process died, which Keras Tuner runs again."""

from __future__ import annotations

import keras_tuner as kt

from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime.workers import alive
from mnist_sweep.tracking import Tracker


def fail_runs_of_trials_run_again(oracle: kt.Oracle, tracker: Tracker, parent_id: str,
                                  again: set[int] | None = None) -> None:
    """Close the MLflow runs of trials whose process died, so each completed trial has one
    finished run. Keras Tuner runs such a trial again: on resume every trial whose end it had not
    saved (its state's `retry_queue`), in a distributed search the dead worker's trial (`again`). Its old run
    is failed whether it was still RUNNING (killed during the trial) or FINISHED (killed just
    after it, before Keras Tuner saved its end; a CI run caught that)."""
    again = again if again is not None else {int(t) for t in oracle.get_state()["retry_queue"]}
    for run in tracker.trial_runs(parent_id):
        status, number = run.info.status, int(run.data.tags["trial"])
        pid = run.data.tags.get("worker", ":").partition(":")[2]
        if status == "RUNNING" and not (pid.isdigit() and alive(int(pid))):
            tracker.end_run(run.info.run_id, Outcome.FAILED, "process stopped during the trial")
        elif status == "FINISHED" and number in again:
            tracker.end_run(run.info.run_id, Outcome.FAILED, "process stopped before Keras Tuner saved the trial's end")
