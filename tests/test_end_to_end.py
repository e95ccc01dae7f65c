"""The real CLI, in real processes, on the real MNIST file: what a user runs and then looks at."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import keras
import numpy as np
import optuna
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
import pytest
from mlflow.tracking import MlflowClient

from mnist_sweep.data import load_mnist, scale

pytestmark = pytest.mark.slow
# Few images and epochs, one process, one final model: start-ups cost CI minutes (each member of
# an ensemble retrains in a TensorFlow process of its own, ~6 s); the tests about workers and
# ensembles ask for them.
SMALL = ["--train-limit", "3000", "--validation-size", "2000", "--max-epochs", "2", "--final-models", "1"]
QUICK = [*SMALL, "--sampler", "random", "--pruner", "none", "--workers", "1"]


def cli(cwd: Path, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, "-m", "mnist_sweep", *args]
    if popen:
        return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)


def runs(cwd: Path, study: str) -> dict[str, list]:
    client = MlflowClient(f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("mnist-sweep").experiment_id],
                               f"tags.study = '{study}'")
    kinds: dict[str, list] = {"study": [], "trial": [], "final": []}
    for run in found:
        kinds[run.data.tags["run_kind"]].append(run)
    return kinds


def study_of(cwd: Path, name: str) -> optuna.Study:
    journal = JournalFileBackend(str(cwd / "mlruns" / "optuna.journal"))  # the default storage
    return optuna.load_study(study_name=name, storage=JournalStorage(journal))


def test_sweep_records_every_trial_and_exports_the_tested_model(real_data, tmp_path):
    """One sweep (a minute of CI), then each thing a user relies on, checked by its own function."""
    args = ["optuna", "--trials", "3", "--study-name", "e2e", "--data", str(real_data), *QUICK]
    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    mnist = load_mnist(str(real_data))
    kinds, study = runs(tmp_path, "e2e"), study_of(tmp_path, "e2e")  # as the sweep left them, read once
    _every_trial_is_a_finished_child_run_with_its_history(client, kinds, study, mnist)
    _the_export_reproduces_the_one_recorded_test_accuracy(client, kinds, study, tmp_path, mnist)
    _mlflow_holds_lineage_datasets_and_the_champion(client, kinds, study)
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN", "retracing", "\r"):
        assert noise not in done.stderr  # quiet: no TensorFlow start-up or retracing lines, no bar frames
    _the_final_step_again_shows_the_record_unless_forced(tmp_path, real_data, done)
    assert cli(tmp_path, *args).returncode == 0  # the same command resumes the study: it holds 3, none added
    assert len(study_of(tmp_path, "e2e").trials) == 3
    _export_writes_the_latest_final_model_again(tmp_path, mnist)
    _report_tabulates_draws_and_logs_on_the_parent(client, tmp_path)


def _every_trial_is_a_finished_child_run_with_its_history(client: MlflowClient, kinds: dict, study: optuna.Study,
                                                          mnist) -> None:
    (parent,), (final,) = kinds["study"], kinds["final"]
    assert len(kinds["trial"]) == 3 and parent.info.status == "FINISHED"
    assert final.data.tags["test_set"] == "the .npz's 10,000 test images"
    for run in kinds["trial"]:
        assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["data_digest"] == mnist.digest
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(1, int(run.data.params["epochs"]) + 1))
    best_value = max(r.data.metrics["val_accuracy"] for r in kinds["trial"])  # trials may tie
    by_trial = {r.data.tags["trial"]: r for r in kinds["trial"]}
    assert by_trial[parent.data.tags["best_trial"]].data.metrics["val_accuracy"] == pytest.approx(best_value)
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best_value)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3
    assert study.user_attrs["final"]["test_accuracy"] == pytest.approx(final.data.metrics["test_accuracy"])


def _the_export_reproduces_the_one_recorded_test_accuracy(client: MlflowClient, kinds: dict, study: optuna.Study,
                                                          cwd: Path, mnist) -> None:
    """Loaded with plain Keras in safe mode; the final step's one pass over the test set kept each
    image's digit, and the sweep's report drew the final model's test-set plots."""
    (final,) = kinds["final"]
    record = study.user_attrs["final"]
    export = cwd / "models" / "e2e"
    model = keras.saving.load_model(export / "model.keras", safe_mode=True)
    _, accuracy = model.evaluate(scale(mnist.x_test), mnist.y_test, verbose=0)
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1e-4)
    assert json.loads((export / "params.json").read_text()) == study.best_trial.user_attrs["params"]
    kept = np.load(client.download_artifacts(final.info.run_id, "test_results.npz", str(cwd)))
    predicted = kept["predicted"]
    assert np.array_equal(predicted, model.predict(scale(mnist.x_test), verbose=0).argmax(axis=1))
    assert (predicted == mnist.y_test).mean() == pytest.approx(record["test_accuracy"])
    assert np.array_equal(kept["wrong_images"], mnist.x_test[kept["wrong"]]) and len(kept["wrong"]) == 32
    assert {"confusion.png", "misclassified.png", "importances.png", "parallel.png", "report.html"} <= {
        p.name for p in (cwd / "reports" / "e2e").iterdir()}


def _mlflow_holds_lineage_datasets_and_the_champion(client: MlflowClient, kinds: dict, study: optuna.Study) -> None:
    """As MLflow users expect: lineage on every run, the data each saw, the registry's alias, an example."""
    (parent,), (final,) = kinds["study"], kinds["final"]
    record = study.user_attrs["final"]
    assert {"params.json", "search_space.yaml", "metrics.json"} <= {
        f.path for f in client.list_artifacts(final.info.run_id)}
    (version,) = client.search_model_versions("name = 'mnist-sweep-e2e'")
    assert version.run_id == final.info.run_id
    for run in (parent, final, *kinds["trial"]):
        assert {"mlflow.user", "mlflow.source.name", "mlflow.source.type"} <= set(run.data.tags)
    contexts = {d.dataset.name: {t.value for t in d.tags if t.key == "mlflow.data.context"}
                for d in client.get_run(final.info.run_id).inputs.dataset_inputs}
    assert contexts == {"mnist-training": {"training"}, "mnist-test": {"testing"}}
    trial_inputs = client.get_run(kinds["trial"][0].info.run_id).inputs.dataset_inputs
    assert {d.dataset.name for d in trial_inputs} == {"mnist-search-training", "mnist-search-validation"}
    champion = client.get_model_version_by_alias("mnist-sweep-e2e", "champion")
    assert champion.version == version.version and champion.tags["study"] == "e2e"
    assert float(champion.tags["test_accuracy"]) == pytest.approx(final.data.metrics["test_accuracy"], abs=1e-4)
    assert _logged_model(client, record["model_uri"]).saved_input_example_info is not None


def _the_final_step_again_shows_the_record_unless_forced(cwd: Path, real_data: Path,
                                                        done: subprocess.CompletedProcess) -> None:
    """The test set is not used twice; --force evaluates again, recorded as such (a second final run)."""
    again = cli(cwd, "final", "--study-name", "e2e", "--data", str(real_data))
    assert again.returncode == 0 and "as recorded earlier" in again.stdout
    assert len(runs(cwd, "e2e")["final"]) == 1
    forced = cli(cwd, "final", "--study-name", "e2e", "--data", str(real_data), "--force",
                 "--train-limit", "3000", "--export-dir", "forced")
    assert forced.returncode == 0 and "evaluation number 2, forced" in forced.stdout
    assert "/step" not in done.stdout + forced.stdout  # no Keras progress bar from MLflow's example check
    finals = runs(cwd, "e2e")["final"]
    assert sorted(r.data.tags["forced"] for r in finals) == ["false", "true"]
    assert [r["forced"] for r in study_of(cwd, "e2e").user_attrs["final_history"]] == [False, True]


def _export_writes_the_latest_final_model_again(cwd: Path, mnist) -> None:
    """`export`: the latest final model (the forced one), elsewhere, from the MLflow record."""
    exported = cli(cwd, "export", "--study-name", "e2e", "--export-dir", "copy", "--format", "keras,tflite")
    assert exported.returncode == 0 and (cwd / "copy" / "model.tflite").stat().st_size > 0
    copy = keras.saving.load_model(cwd / "copy" / "model.keras", safe_mode=True)
    latest = keras.saving.load_model(cwd / "forced" / "model.keras", safe_mode=True)
    sample = scale(mnist.x_test[:200])
    assert np.array_equal(copy.predict(sample, verbose=0), latest.predict(sample, verbose=0))


def _report_tabulates_draws_and_logs_on_the_parent(client: MlflowClient, cwd: Path) -> None:
    """`report`: the three trials in a table, the plots drawn and logged on the sweep's parent run."""
    reported = cli(cwd, "report", "--study-name", "e2e", "--report-dir", "again")
    assert reported.returncode == 0, reported.stderr[-2000:]
    folder = cwd / "again"
    drawn = {"history.png", "parameters.png", "curves.png", "importances.png", "parallel.png", "confusion.png",
             "misclassified.png"}
    assert drawn | {"trials.csv", "trials.md", "presets.md", "warnings.txt", "report.html"} <= {
        p.name for p in folder.iterdir()}
    assert len((folder / "trials.csv").read_text().splitlines()) == 1 + 3
    (parent,) = runs(cwd, "e2e")["study"]
    assert {f"report/{name}" for name in drawn} <= {
        f.path for f in client.list_artifacts(parent.info.run_id, "report")}


def test_the_search_stops_starting_trials_at_its_share_of_the_minutes_and_the_final_step_runs(real_data, tmp_path):
    # 50 trials would take minutes; 0.4 of half a minute (12 s, TensorFlow's start included) fits a few.
    args = ["optuna", "--trials", "50", "--study-name", "share", "--data", str(real_data), "--minutes", "0.5",
            "--search-share", "0.4", "--no-warm-start", *QUICK]
    began = time.monotonic()
    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    study = study_of(tmp_path, "share")
    assert 1 <= len(study.trials) < 50 and all(t.state.is_finished() for t in study.trials)
    assert study.user_attrs["final"]["evaluations"] == 1 and "test_accuracy" in done.stdout
    assert (f"the search stopped starting trials at its share of the minutes (search_share 0.4 of 0.5) with "
            f"{len(study.trials)} of 50 trials") in done.stdout
    assert time.monotonic() - began < 120


def test_an_ensemble_final_is_tested_once_logged_and_exported_as_one_model(real_data, tmp_path):
    args = ["optuna", "--trials", "2", "--study-name", "ens", "--data", str(real_data), *QUICK, "--final-models", "2"]
    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    (final,) = runs(tmp_path, "ens")["final"]
    record = study_of(tmp_path, "ens").user_attrs["final"]
    assert record["members"] == 2 and record["evaluations"] == 1
    # Two distinct configurations, the best first: not one configuration's number bet on twice.
    trials = {t.number: t for t in study_of(tmp_path, "ens").trials}
    assert record["member_trials"][0] == record["trial"] and len(set(record["member_trials"])) == 2
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    epochs = sum(len(trials[n].intermediate_values) for n in record["member_trials"])  # one member after the other
    assert ([m.step for m in client.get_metric_history(final.info.run_id, "train_accuracy")]
            == list(range(1, epochs + 1)))
    # The exported ensemble is one plain Keras model that reproduces the one recorded test accuracy.
    model = keras.saving.load_model(tmp_path / "models" / "ens" / "model.keras", safe_mode=True)
    mnist = load_mnist(str(real_data))
    predicted = model.predict(scale(mnist.x_test), verbose=0).argmax(axis=1)
    assert (predicted == mnist.y_test).mean() == pytest.approx(record["test_accuracy"])
    exported = cli(tmp_path, "export", "--study-name", "ens", "--export-dir", "copy", "--format", "savedmodel,tflite")
    assert exported.returncode == 0 and (tmp_path / "copy" / "model.tflite").stat().st_size > 0, exported.stderr[-2000:]
    # The same command again: the study is finished and its ensemble is not evaluated again.
    again = cli(tmp_path, *args)
    assert again.returncode == 0 and study_of(tmp_path, "ens").user_attrs["final"]["evaluations"] == 1


def _logged_model(client: MlflowClient, model_uri: str):
    """MLflow's MLmodel for `models:/<model id>`, read through this test's store (mlflow's fluent
    calls would read the process's default store, and setting it leaks into the CLI's environment)."""
    from mlflow.models import Model

    experiment = client.get_experiment_by_name("mnist-sweep").experiment_id
    (logged,) = [m for m in client.search_logged_models(experiment_ids=[experiment])
                 if m.model_id == model_uri.removeprefix("models:/")]
    return Model.load(urllib.parse.urlparse(logged.artifact_location).path)


def completed_optuna(cwd: Path, study: str) -> int:
    try:
        return len(study_of(cwd, study).get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    except Exception:  # the study may not exist yet
        return 0


def completed_kerastuner(cwd: Path, study: str) -> int:
    outcomes = []
    for path in (cwd / "mlruns" / "keras-tuner" / study / "outcomes").glob("*.json"):  # one file per trial
        try:
            outcomes.append(json.loads(path.read_text())["outcome"])
        except (OSError, KeyError, ValueError):  # not written yet
            pass
    return outcomes.count("completed")


def running_optuna(cwd: Path, study: str) -> int:
    """Trials under way with their parameters sampled (a trial just created has none to retry with)."""
    try:
        running = study_of(cwd, study).get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    except Exception:  # the study may not exist yet
        return 0
    return sum(1 for t in running if t.params)


def wait_for_finished(cwd: Path, study: str, count: int, process: subprocess.Popen, limit: float = 600,
                      completed=completed_optuna, every: float = 0.5) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()[-2000:]
        if completed(cwd, study) >= count:
            return
        time.sleep(every)
    raise AssertionError(f"{count} trials did not finish in {limit} s")


@pytest.mark.parametrize("how, workers", [(signal.SIGINT, "2"), (signal.SIGTERM, "1"), (signal.SIGKILL, "2")],
                         ids=["ctrl-c-2-workers", "kill-1-worker", "kill-9-2-workers"])
def test_an_interrupted_sweep_resumes_without_losing_a_trial(real_data, tmp_path, how, workers):
    args = ["optuna", "--trials", "4", "--study-name", "stop", "--data", str(real_data), *QUICK,
            "--max-epochs", "3", "--workers", workers]
    process = cli(tmp_path, *args, popen=True)
    wait_for_finished(tmp_path, "stop", 2, process)
    # Into the third trial, polled often: a fixed sleep missed every trial once trials got faster.
    wait_for_finished(tmp_path, "stop", 1, process, completed=running_optuna, every=0.05)
    os.kill(process.pid, how)
    _, stderr = process.communicate(timeout=120)
    kept = {r.info.run_id for r in runs(tmp_path, "stop")["trial"] if r.info.status == "FINISHED"}
    assert len(kept) >= 2
    if how == signal.SIGKILL:  # no chance to close the trials: the workers died with the sweep's process
        stopped = study_of(tmp_path, "stop").get_trials(states=(optuna.trial.TrialState.RUNNING,))
        assert 1 <= len(stopped) <= 2
    if how in (signal.SIGINT, signal.SIGTERM):  # the trial and the parent run are closed, not left RUNNING
        assert process.returncode == 128 + how and "resume with: python -m mnist_sweep optuna" in stderr
        assert runs(tmp_path, "stop")["study"][0].info.status == "KILLED"
        stopped = study_of(tmp_path, "stop").get_trials(states=(optuna.trial.TrialState.FAIL,))  # failed by Optuna

    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    study = study_of(tmp_path, "stop")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
    kinds = runs(tmp_path, "stop")
    assert kept <= {r.info.run_id for r in kinds["trial"]}  # nothing finished was lost
    assert not [r for r in kinds["trial"] if r.info.status == "RUNNING"]  # the stopped trial was closed
    assert len(kinds["study"]) == 1 and kinds["study"][0].info.status == "FINISHED"
    assert len(kinds["final"]) == 1
    for trial in stopped:  # failed (by Optuna, or as its process is gone), and tried again
        assert study.trials[trial.number].state == optuna.trial.TrialState.FAIL
        retries = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number]
        # Tried again with what was drawn for it; a trial killed while its values were still being
        # drawn is completed by new draws (Optuna's retry fixes the values it has, samples the rest).
        assert retries and trial.params.items() <= retries[0].params.items()


def test_a_killed_worker_is_replaced_and_its_trial_runs_again(real_data, tmp_path):
    args = ["optuna", "--trials", "6", "--study-name", "w", "--data", str(real_data), *QUICK,
            "--max-epochs", "3", "--workers", "2", "--no-warm-start"]
    process = cli(tmp_path, *args, popen=True)
    wait_for_finished(tmp_path, "w", 2, process)
    victim = None
    while victim is None:  # a trial in progress, and the worker process running it
        assert process.poll() is None
        running = study_of(tmp_path, "w").get_trials(states=(optuna.trial.TrialState.RUNNING,))
        victim = next((t for t in running if "params" in t.user_attrs), None)  # sampled: training
        time.sleep(0.2)
    worker = victim.user_attrs["worker"]
    os.kill(int(worker.split(":")[1]), signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    assert "ended with exit -9; its trial is queued again and a new worker takes its place" in stderr

    study = study_of(tmp_path, "w")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 6 and len({t.number for t in complete}) == 6
    # The trial the killed process was running: the one seen running, or its next where that one
    # ended in the moment between the look and the kill (trials of 3 epochs on 2,000 images are short).
    (failed,) = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert failed.user_attrs["worker"] == worker and failed.number >= victim.number
    retries = [t for t in complete if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == failed.number]
    assert len(retries) == 1 and retries[0].params == failed.params
    assert len({t.user_attrs["worker"] for t in complete}) >= 2  # trials ran in more than one process
    kinds = runs(tmp_path, "w")
    finished = [r for r in kinds["trial"] if r.info.status == "FINISHED"]
    assert sorted(int(r.data.tags["trial"]) for r in finished) == sorted(t.number for t in complete)  # each once
    (killed,) = [r for r in kinds["trial"] if r.info.status != "FINISHED"]
    assert killed.info.status == "FAILED" and int(killed.data.tags["trial"]) == failed.number
    assert len(kinds["study"]) == 1 and kinds["study"][0].info.status == "FINISHED" and len(kinds["final"]) == 1


def test_a_killed_kerastuner_sweep_resumes_and_ends_like_an_optuna_one(real_data, tmp_path):
    args = ["kerastuner", "--tuner", "hyperband", "--trials", "6", "--study-name", "kt", "--data", str(real_data),
            *SMALL, "--max-epochs", "3"]
    process = cli(tmp_path, *args, popen=True)
    wait_for_finished(tmp_path, "kt", 2, process, completed=completed_kerastuner)
    time.sleep(1.5)  # into the third trial
    process.kill()
    process.communicate(timeout=60)
    kept = {r.info.run_id for r in runs(tmp_path, "kt")["trial"] if r.info.status == "FINISHED"}
    assert len(kept) >= 2

    done = cli(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert completed_kerastuner(tmp_path, "kt") == 6
    kinds = runs(tmp_path, "kt")
    assert kept <= {r.info.run_id for r in kinds["trial"]}  # nothing finished was lost
    assert {r.data.tags["engine"] for r in kinds["trial"]} == {"keras-tuner"}
    finished = [r for r in kinds["trial"] if r.info.status == "FINISHED"]
    killed = [r for r in kinds["trial"] if r.info.status != "FINISHED"]
    assert len(finished) == 6 and killed and all(r.info.status == "FAILED" for r in killed)
    retried = {r.data.tags["trial"] for r in finished}
    assert all(r.data.tags["trial"] in retried for r in killed)  # Keras Tuner ran it again
    (parent,), (final,) = kinds["study"], kinds["final"]
    assert parent.info.status == "FINISHED" and final.data.metrics["test_accuracy"] > 0.8
    model = keras.saving.load_model(tmp_path / "models" / "kt" / "model.keras", safe_mode=True)
    assert model.count_params() > 0
    again = cli(tmp_path, "final", "--study-name", "kt", "--data", str(real_data))
    assert again.returncode == 0 and "as recorded earlier" in again.stdout


@pytest.mark.parametrize("engine", ["optuna", "kerastuner"])
def test_a_sweep_past_its_memory_budget_goes_on_in_a_fresh_process_and_loses_nothing(real_data, tmp_path, engine):
    quick = QUICK if engine == "optuna" else ["--tuner", "random", *SMALL]
    one = ["--workers", "1"] if engine == "optuna" else []  # one process: the sweep's own recycles
    process = cli(tmp_path, engine, "--trials", "4", "--study-name", "mem", "--data", str(real_data), *quick,
                  "--recycle-mb", "0.01", "--no-warm-start", *one, popen=True)  # any growth after trial 1 recycles
    _, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-2000:]
    assert f"going on in a fresh process, same pid {process.pid}" in stderr  # replaced itself: no orphan
    kinds = runs(tmp_path, "mem")
    assert len(kinds["study"]) == 1 and kinds["study"][0].info.status == "FINISHED"  # one parent, resumed
    assert len(kinds["trial"]) == 4 and all(r.info.status == "FINISHED" for r in kinds["trial"])
    assert len(kinds["final"]) == 1


def test_ui_serves_the_project_store_on_localhost(tmp_path):
    import socket
    import urllib.request

    from mnist_sweep.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker(uri, "ui-check", tmp_path / "artifacts")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mnist_sweep", "ui", "--tracking-uri", uri, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ui-check"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert json.load(response)["experiment"]["name"] == "ui-check"
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the UI did not come up"
                time.sleep(1)
        rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        listening = {row[1] for row in rows if row[3] == "0A"}  # local address of LISTEN sockets
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_baselines_command_trains_a_preset_on_real_data(real_data, tmp_path):
    done = cli(tmp_path, "baselines", "--only", "nb002-mlp-32-64", "--data", str(real_data),
               "--max-epochs", "2", "--train-limit", "5000")
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("nb002-mlp-32-64"))
    reported, val_accuracy, test_accuracy = (float(v) for v in row.split()[2:5])
    assert reported == 0.96 and val_accuracy > 0.85 and test_accuracy > 0.85


KT_QUICK = ["--tuner", "random", *SMALL, "--no-warm-start"]


def test_keras_tuner_on_two_workers_runs_each_trial_once_in_two_processes(real_data, tmp_path):
    done = cli(tmp_path, "kerastuner", "--trials", "6", "--workers", "2", "--study-name", "ktw",
               "--data", str(real_data), *KT_QUICK)
    assert done.returncode == 0, done.stderr[-2000:]
    kinds = runs(tmp_path, "ktw")
    assert sorted(int(r.data.tags["trial"]) for r in kinds["trial"]) == list(range(6))  # each logged once
    assert all(r.info.status == "FINISHED" for r in kinds["trial"])  # none left RUNNING
    workers = {r.data.tags["worker"] for r in kinds["trial"]}
    assert len(workers) == 2 and all(w.partition(":")[2].isdigit() for w in workers)  # host:pid
    (parent,), (final,) = kinds["study"], kinds["final"]
    assert parent.info.status == final.info.status == "FINISHED"
    assert completed_kerastuner(tmp_path, "ktw") == 6


def running_trial_run(cwd: Path, study: str, process: subprocess.Popen):
    """A trial run in progress in one of the sweep's workers, once there is one."""
    while True:
        assert process.poll() is None, process.stderr.read()[-2000:]
        try:
            running = [r for r in runs(cwd, study)["trial"] if r.info.status == "RUNNING"]
        except Exception:  # the store is not created yet
            running = []
        if running:
            return running[0]
        time.sleep(0.2)


def test_a_killed_keras_tuner_worker_is_replaced_and_its_trial_runs_again(real_data, tmp_path):
    args = ["kerastuner", "--trials", "6", "--workers", "2", "--study-name", "ktk", "--data", str(real_data),
            *KT_QUICK, "--train-limit", "10000", "--max-epochs", "3"]
    process = cli(tmp_path, *args, popen=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    while True:  # kill a worker in the middle of a trial (the run was still RUNNING once its process was gone)
        victim = running_trial_run(tmp_path, "ktk", process)
        os.kill(int(victim.data.tags["worker"].partition(":")[2]), signal.SIGKILL)
        time.sleep(0.5)
        if client.get_run(victim.info.run_id).info.status in ("RUNNING", "FAILED"):
            break
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    assert "ended with exit -9" in stderr
    kinds = runs(tmp_path, "ktk")
    finished = sorted(int(r.data.tags["trial"]) for r in kinds["trial"] if r.info.status == "FINISHED")
    assert finished == list(range(6))  # the search completed, each trial finished once
    killed = client.get_run(victim.info.run_id)
    assert killed.info.status == "FAILED" and killed.data.tags["trial"] in {str(n) for n in finished}  # run again
    assert not [r for r in kinds["trial"] if r.info.status == "RUNNING"]
    assert len(kinds["final"]) == 1 and kinds["study"][0].info.status == "FINISHED"
