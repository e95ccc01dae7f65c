"""Studies written by version 0.1.0 (tests/fixtures) resume, report and export with today's code."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tarfile
from pathlib import Path

import keras
import optuna
import pytest

from mnist_sweep.data import load_mnist, scale
from tests.test_end_to_end import cli, runs, study_of

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"
WRITTEN_AT = "/tmp/legacy"  # where the fixture's store was made: MLflow keeps absolute artifact paths


def unpack(folder: Path) -> None:
    """The fixture's mlruns/ in `folder`, its MLflow paths moved there as `mlflow` would see them."""
    with tarfile.open(FIXTURES / "legacy-studies.tar.gz") as archive:
        archive.extractall(folder, filter="data")
    shutil.copy(FIXTURES / "legacy-tiny-mlp.yaml", folder / "tiny-mlp.yaml")
    with sqlite3.connect(folder / "mlruns" / "mlflow.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            columns = [row[1] for row in info if row[2].upper() == "TEXT" or row[2].upper().startswith("VARCHAR")]
            for column in columns:
                db.execute(f"UPDATE {table} SET {column} = REPLACE({column}, ?, ?)", (WRITTEN_AT, str(folder)))


def quick(real_data: Path) -> list[str]:
    return ["--data", str(real_data), "--space", "tiny-mlp.yaml", "--train-limit", "2000", "--validation-size", "1000",
            "--max-epochs", "1", "--no-warm-start"]


def check_report_and_export(folder: Path, study: str, real_data: Path) -> None:
    reported = cli(folder, "report", "--study-name", study, "--report-dir", "report")
    assert reported.returncode == 0, reported.stderr[-2000:]
    assert len((folder / "report" / "trials.csv").read_text().splitlines()) == 1 + 3
    exported = cli(folder, "export", "--study-name", study, "--export-dir", "copy")
    assert exported.returncode == 0, exported.stderr[-2000:]
    metrics = json.loads((folder / "copy" / "metrics.json").read_text())
    assert metrics["study"] == study and metrics["trial"] in (0, 1)  # the final model version 0.1.0 trained
    model = keras.saving.load_model(folder / "copy" / "model.keras", safe_mode=True)
    mnist = load_mnist(str(real_data))
    _, accuracy = model.evaluate(scale(mnist.x_test), mnist.y_test, verbose=0)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-4)


def test_a_legacy_optuna_study_resumes_reports_and_exports(real_data, tmp_path):
    unpack(tmp_path)
    done = cli(tmp_path, "optuna", "--trials", "3", "--study-name", "legacy-optuna", "--workers", "1",
               "--sampler", "random", "--pruner", "none", *quick(real_data))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "as recorded earlier" in done.stdout  # its test result from version 0.1.0 stands
    study = study_of(tmp_path, "legacy-optuna")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3
    kinds = runs(tmp_path, "legacy-optuna")
    assert len(kinds["study"]) == 1 and kinds["study"][0].info.status == "FINISHED"
    assert len(kinds["trial"]) == 3 and len(kinds["final"]) == 1
    check_report_and_export(tmp_path, "legacy-optuna", real_data)


def test_a_legacy_keras_tuner_project_resumes_reports_and_exports(real_data, tmp_path):
    unpack(tmp_path)
    done = cli(tmp_path, "kerastuner", "--tuner", "random", "--trials", "3", "--study-name", "legacy-kt",
               *quick(real_data))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "as recorded earlier" in done.stdout
    kinds = runs(tmp_path, "legacy-kt")
    finished = sorted(int(r.data.tags["trial"]) for r in kinds["trial"] if r.info.status == "FINISHED")
    assert finished == [0, 1, 2]  # the two trials of version 0.1.0, and one more
    assert len(kinds["study"]) == 1 and kinds["study"][0].info.status == "FINISHED" and len(kinds["final"]) == 1
    check_report_and_export(tmp_path, "legacy-kt", real_data)
