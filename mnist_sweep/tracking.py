"""MLflow, and the only module that imports it: a parent run per study, a nested run per trial.

Runs are written through MlflowClient with explicit run ids rather than the fluent API's
global "active run", so an interrupted trial can always be closed by id.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from mnist_sweep.config import sqlite_file
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.errors import Recycle

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the report's reads are tiny
# MLflow announces on stderr each time it creates or checks its SQLite tables: noise here.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

# A trial's outcome is both a tag and the run's status, so the UI can filter on either.
STATUS = {"completed": "FINISHED", "pruned": "KILLED", "failed": "FAILED", "killed": "KILLED"}


def failure(err: BaseException) -> tuple[str, str]:
    """The outcome and reason to record for a run that `err` stopped."""
    return ("failed" if isinstance(err, Exception) else "killed"), f"{type(err).__name__}: {err}"


def _reason(message: str) -> str:
    """MLflow's error, cut to what fits one line."""
    return message.splitlines()[0].split(". ")[0][:200]


def _check_server(uri: str) -> None:
    """Fail in seconds, not after MLflow's minutes of retries, when no server is there."""
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10).close()
    except (OSError, ValueError) as err:
        raise UserError(f"tracking URI {uri}: no MLflow server answers ({getattr(err, 'reason', err)}); "
                        "start it or pass another --tracking-uri") from None


class Tracker:
    """One MLflow experiment, reached through `uri`."""

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None):
        if (path := sqlite_file(uri)) is not None:
            make_folder(path.parent, "--tracking-uri")
        if uri.startswith(("http://", "https://")):
            _check_server(uri)
        mlflow.set_tracking_uri(uri)
        self.uri = uri
        try:
            self.client = MlflowClient(uri)
            self.experiment_id = self._experiment(experiment, artifact_root)
        except MlflowException as err:
            raise UserError(f"tracking URI {uri}: {_reason(err.message)}; pass a writable --tracking-uri") from None

    def _experiment(self, name: str, artifact_root: Path | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        location = (artifact_root / name).resolve().as_uri() if artifact_root else None
        return self.client.create_experiment(name, artifact_location=location)

    def parent_run(self, study: str, tags: dict[str, str]) -> str:
        """The study's parent run, reopened if it exists, so a resumed sweep keeps one parent."""
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.study = '{study}' and tags.run_kind = 'study'",
            max_results=1)
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        return self.start_run(study, {**tags, "study": study, "run_kind": "study"})

    def start_run(self, name: str, tags: dict[str, str]) -> str:
        """A new top-level run."""
        return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id

    def start_child(self, parent_id: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={**tags, MLFLOW_PARENT_RUN_ID: parent_id})
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        """All of one step's metrics in a single call: one database write per epoch."""
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_run(self, run_id: str, outcome: str, reason: str | None = None) -> None:
        key = "prune_reason" if outcome == "pruned" else "fail_reason"
        tags = {"outcome": outcome, **({key: reason[:5000]} if reason else {})}
        self.set_tags(run_id, tags)
        self.client.set_terminated(run_id, status=STATUS[outcome])

    @contextmanager
    def ended_on_error(self, run_id: str) -> Iterator[None]:
        """If the block raises, end the run as failed (an error) or killed (Ctrl-C, SIGTERM).

        A recycle is no end: the fresh process resumes the same run."""
        try:
            yield
        except Recycle:
            raise
        except BaseException as err:
            self.end_run(run_id, *failure(err))
            raise

    def running_children(self, parent_id: str) -> dict[int, str]:
        """Trial number -> run id of the parent's trial runs that are still RUNNING."""
        runs = self.client.search_runs(
            [self.experiment_id], max_results=1000,
            filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and tags.run_kind = 'trial' "
                          "and attributes.status = 'RUNNING'")
        return {int(run.data.tags["trial"]): run.info.run_id for run in runs}

    def record_best(self, parent_id: str, number: int, value: float, params: dict[str, Any],
                    finished: int) -> None:
        """Tags (not params) because the best trial changes as a study resumes and grows."""
        tags = {"best_trial": number, **{f"best.{k}": v for k, v in params.items()}}
        self.set_tags(parent_id, tags)
        self.log_metrics(parent_id, {"best_val_accuracy": value, "finished_trials": finished}, step=finished)

    def log_keras_model(self, run_id: str, model: Any, registered_name: str, example: Any) -> str:
        """Log the model to `run_id`, register a new version, and return the model's URI."""
        import keras
        import mlflow.keras
        import tensorflow as tf

        requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"]
        # A signature rather than an input example: MLflow cannot save a 3-D example array.
        signature = mlflow.models.infer_signature(example, model.predict(example, verbose=0))
        with mlflow.start_run(run_id=run_id):
            info = mlflow.keras.log_model(model, name="model", signature=signature,
                                          registered_model_name=registered_name,
                                          pip_requirements=requirements)
        return info.model_uri

    def log_files(self, run_id: str, paths: list[Path], folder: str | None = None) -> None:
        for path in paths:
            self.client.log_artifact(run_id, str(path), folder)

    def log_arrays(self, run_id: str, name: str, **arrays: Any) -> None:
        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            np.savez_compressed(Path(folder) / name, **arrays)
            self.client.log_artifact(run_id, str(Path(folder) / name))

    def load_arrays(self, run_id: str, name: str) -> dict[str, Any] | None:
        """The arrays `log_arrays` saved, or None when the run has none (runs from older versions)."""
        import numpy as np

        if name not in {f.path for f in self.client.list_artifacts(run_id)}:
            return None
        with tempfile.TemporaryDirectory() as folder, np.load(self.client.download_artifacts(run_id, name, folder)) as f:
            return dict(f)

    def runs(self, filter_string: str) -> list[Any]:
        return self.client.search_runs([self.experiment_id], filter_string, max_results=10000)

    def trial_runs(self, parent_id: str) -> list[Any]:
        """The parent's trial runs, as MLflow gives them (params as text)."""
        return self.runs(f"tags.mlflow.parentRunId = '{parent_id}' and tags.run_kind = 'trial'")

    def history(self, run_id: str, metric: str) -> list[float]:
        return [m.value for m in sorted(self.client.get_metric_history(run_id, metric), key=lambda m: m.step)]

    def load_keras_model(self, model_uri: str) -> Any:
        import mlflow.keras

        return mlflow.keras.load_model(model_uri)
