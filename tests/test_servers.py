"""Several machines on one study, against the real servers: PostgreSQL for Optuna's storage and an
MLflow tracking server backed by PostgreSQL, both reached over TCP as other machines reach them.

`.ci/servers start` starts them and exports their URLs; each test gets a fresh database, its own
study and its own MLflow experiment, and each "machine" its own working folder.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from tests.test_end_to_end import QUICK, cli

pytestmark = pytest.mark.slow


@pytest.fixture
def servers() -> tuple[str, str]:
    """(a fresh PostgreSQL database URL for Optuna, the MLflow server's URL)."""
    pg, server = os.environ.get("MNIST_SWEEP_POSTGRES"), os.environ.get("MNIST_SWEEP_MLFLOW")
    if not (pg and server):
        if os.environ.get("CI"):
            pytest.fail('no servers: .ci/run starts them with eval "$(.ci/servers start)"')
        pytest.skip('no servers; start them with eval "$(.ci/servers start)"')
    import sqlalchemy as sa

    name = f"optuna_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    return f"{pg}/{name}", server


def unique(name: str) -> str:
    """A study and experiment name of this test alone: the MLflow server outlives the tests."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def machine_args(real_data: Path, storage: str, server: str, study: str, workers: int, trials: int) -> list[str]:
    return ["optuna", "--trials", str(trials), "--study-name", study, "--experiment", study, "--storage", storage,
            "--tracking-uri", server, "--data", str(real_data), *QUICK, "--no-warm-start", "--workers", str(workers)]


def check_study(storage: str, server: str, study_name: str, trials: int) -> optuna.Study:
    """What a user checks with Optuna's and MLflow's own clients after a sweep of several workers."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == trials
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(study_name).experiment_id
    kinds = {kind: client.search_runs([experiment], f"tags.run_kind = '{kind}'")
             for kind in ("study", "trial", "final")}
    finished = [int(r.data.tags["trial"]) for r in kinds["trial"] if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(t.number for t in complete)  # every trial logged, and once
    (parent,), (final,) = kinds["study"], kinds["final"]
    assert parent.info.status == "FINISHED" and final.data.metrics["test_accuracy"] > 0.8
    (version,) = client.search_model_versions(f"name = 'mnist-sweep-{study_name}'")
    assert version.run_id == final.info.run_id
    assert study.user_attrs["final"]["run_id"] == final.info.run_id
    return study


def test_two_machines_with_three_workers_on_a_postgres_study_run_each_trial_once_and_the_final_step_once(
        real_data, servers, tmp_path):
    """Two workers (in one command) are the next test's; here 1 + 2 in two commands."""
    storage, server = servers
    name = unique("machines")
    processes = []
    for index, count in enumerate((1, 2)):  # the same command on each "machine", started together
        folder = tmp_path / f"machine-{index}"
        folder.mkdir()
        processes.append(cli(folder, *machine_args(real_data, storage, server, name, count, 6), popen=True))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-2000:]

    check_study(storage, server, name, 6)  # which machine ran how many trials is up to their speed
    shown = sorted("as recorded earlier" in stdout for stdout, _ in outputs)
    assert shown == [False, True]  # one machine tested the model, the other showed its result


def test_a_worker_killed_mid_trial_on_postgres_is_failed_by_its_heartbeat_and_run_again(
        real_data, servers, tmp_path):
    storage, server = servers
    name = unique("killed")
    process = cli(tmp_path, *machine_args(real_data, storage, server, name, 2, 6), "--max-epochs", "3",
                  popen=True)
    victim = None
    while victim is None:  # a worker in the middle of a trial
        assert process.poll() is None, process.stderr.read()[-2000:]
        try:
            running = optuna.load_study(study_name=name, storage=storage).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # not created yet
            running = []
        victim = next((t for t in running if "params" in t.user_attrs), None)  # sampled: training
        time.sleep(0.2)
    os.kill(int(victim.user_attrs["worker"].split(":")[1]), signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]

    study = check_study(storage, server, name, 6)
    failed = study.trials[victim.number]
    assert failed.state == TrialState.FAIL
    retries = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == victim.number]
    assert len(retries) == 1 and retries[0].params == failed.params
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(name).experiment_id
    (killed,) = client.search_runs([experiment], f"tags.trial = '{victim.number}' and attributes.status = 'FAILED'")
    assert killed.data.tags["run_kind"] == "trial"


def test_a_postgres_url_that_does_not_answer_is_a_one_line_error(real_data, tmp_path):
    done = cli(tmp_path, "optuna", "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:9/none",
               "--data", str(real_data))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "postgresql://nobody@127.0.0.1:9/none: cannot open" in done.stderr.strip().splitlines()[-1]
