"""MLflow, and the only module that imports it: a parent run per study, a nested run per trial.

Runs are written through MlflowClient with explicit run ids rather than the fluent API's
global "active run", so an interrupted trial can always be closed by id.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from mnist_sweep.config import sqlite_file
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder
from mnist_sweep.errors import Recycle
from mnist_sweep.outcomes import Outcome
from mnist_sweep.runtime import precision

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the report's reads are tiny
# MLflow announces on stderr each time it creates or checks its SQLite tables: noise here.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)

CHAMPION = "champion"  # the registry alias of a study's newest final model (stages are deprecated)
# A trial's outcome is both a tag and the run's status, so the UI can filter on either.
STATUS = {Outcome.COMPLETED: "FINISHED", Outcome.PRUNED: "KILLED", Outcome.REFUSED: "KILLED",
          Outcome.FAILED: "FAILED", Outcome.KILLED: "KILLED"}


def failure(err: BaseException) -> tuple[Outcome, str]:
    """The outcome and reason to record for a run that `err` stopped."""
    return (Outcome.FAILED if isinstance(err, Exception) else Outcome.KILLED), f"{type(err).__name__}: {err}"


def run_outcome(run: Any) -> Outcome:
    """How a trial's run ended, as its `outcome` tag says.

    Runs of 0.1.0 and of main before issue 34 tag a refused trial pruned; it never trained, where
    a pruned trial is judged on an epoch at least, so its `epochs_run` of 0 tells it apart."""
    tag = run.data.tags.get("outcome")
    if tag is None:  # the tag is written as the run ends
        return Outcome.RUNNING
    if tag == Outcome.PRUNED and run.data.metrics.get("epochs_run", 1) == 0:
        return Outcome.REFUSED
    return Outcome(tag)


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
        # The tags a fluent run gets (source, user, git commit), and the number format this process
        # trains in (chosen before any command opens a tracker): the same for every run here, the
        # trials', the final step's and the baselines' alike.
        self.context = {**resolve_tags(), "precision": precision.current().value}
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
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as err:
            # Two machines starting one study at once: the other created it first, so use theirs.
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

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
        return self.client.create_run(self.experiment_id, run_name=name, tags={**self.context, **tags}).info.run_id

    def start_child(self, parent_id: str, name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self.experiment_id, run_name=name, tags={**self.context, **tags, MLFLOW_PARENT_RUN_ID: parent_id})
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def log_datasets(self, run_id: str, slices: tuple[Any, ...]) -> None:
        """The images a run saw as MLflow dataset inputs (the UI's Datasets column), with their context."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [DatasetInput(Dataset(name=s.name, digest=s.digest, source_type="local",
                                       source=json.dumps({"uri": s.source}),
                                       profile=json.dumps({"num_rows": s.rows})),
                               tags=[InputTag("mlflow.data.context", s.context)]) for s in slices]
        self.client.log_inputs(run_id, datasets=inputs)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        """All of one step's metrics in a single call: one database write per epoch."""
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def end_run(self, run_id: str, outcome: Outcome, reason: str | None = None) -> None:
        outcome = Outcome(outcome)  # a stray word fails here, before any tag is written
        tags = {"outcome": outcome.value, **({outcome.reason_key: reason[:5000]} if reason else {})}
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

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def running_finals(self, study: str) -> list[str]:
        """The study's final runs still RUNNING: under the study's lock, left by killed processes."""
        runs = self.runs(f"tags.study = '{study}' and tags.run_kind = 'final' and attributes.status = 'RUNNING'")
        return [run.info.run_id for run in runs]

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

    def log_keras_model(self, run_id: str, model: Any, example: Any) -> str:
        """Log the model to `run_id` with its signature and an input example; return its URI."""
        import keras
        import mlflow.keras
        import tensorflow as tf

        requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}"]
        signature = mlflow.models.infer_signature(example, model.predict(example, verbose=0))

        def save_model(path: str, **kwargs: Any) -> Any:
            # MLflow 3.17's Keras flavor writes the input example into the model's folder before it
            # makes the folder (mlflow/mlflow#16183, open): made here first, then saved as always.
            os.makedirs(path, exist_ok=True)
            return mlflow.keras.save_model(path=path, **kwargs)

        flavor = SimpleNamespace(__name__=mlflow.keras.__name__, save_model=save_model)
        # MLflow checks the input example by predicting it at Keras's default verbosity: without
        # this, a progress bar ("1/1 ━━━ 0s 63ms/step") lands in the command's output.
        keras.config.disable_interactive_logging()
        with mlflow.start_run(run_id=run_id):
            info = mlflow.models.Model.log(artifact_path=None, name="model", flavor=flavor, model=model,
                                           signature=signature, input_example=example,
                                           pip_requirements=requirements)
        return info.model_uri

    def register(self, model_uri: str, name: str, run_id: str, tags: dict[str, Any]) -> str:
        """A version of `name` for the model, tagged, with the alias `champion` moved to it.

        The version a killed attempt already made from the same run is reused, not doubled."""
        found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        version = found[0].version if found else mlflow.register_model(model_uri, name).version
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, str(value))
        self.client.set_registered_model_alias(name, CHAMPION, version)
        return f"models:/{name}@{CHAMPION}"

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
        with tempfile.TemporaryDirectory() as folder, \
                np.load(self.client.download_artifacts(run_id, name, folder)) as f:
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
