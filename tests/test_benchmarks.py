"""The benchmark scripts run from a clean clone in their short form (CI's smoke run).

Their numbers are not asserted: speed is measured by the scripts, not by timed tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


def test_the_overhead_benchmark_runs_both_ways_and_writes_its_ratio(real_data, tmp_path):
    out = tmp_path / "overhead.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--data", str(real_data),
                           "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert len(result["configurations"]) == 2 and len(result["plain_s"]) == len(result["framework_s"]) == 4
    assert result["framework_trials"] == 4  # one trial per timed framework run, no more
    assert f"framework / plain = {result['ratio']:.3f}" in done.stdout  # the figure printed is the one recorded


def test_the_memory_benchmark_reads_every_trials_memory_from_mlflow(real_data, tmp_path):
    out = tmp_path / "memory.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--data", str(real_data),
                           "--trials", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = json.loads(out.read_text())["runs"]
    # No recycle is forced here: since fits stopped copying the arrays (726930f) a quick sweep may
    # not grow at all after its first trial (CI: none in 8 trials under a 0.01 MB budget). That a
    # sweep past its budget recycles is test_end_to_end's test_a_sweep_past_its_memory_budget_...
    assert run["trials"] == 3
    assert 0 < run["rss_first_mb"] <= run["rss_max_mb"] <= run["peak_mb"] < 8 * 1024


def quick(script: str, data: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / f"{script}.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--data", str(data),
                           "--quick", "--out", str(out), *extra], capture_output=True, text=True, timeout=900,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert f"CPU: {result['cpu']['model']}" in done.stdout  # a figure is only read beside its machine
    return done, result


def test_the_parallel_benchmark_trains_every_trial_both_ways(real_data, tmp_path):
    done, result = quick("parallel", real_data, tmp_path)
    assert {k: len(v) for k, v in result["seconds"].items()} == {
        "1 process x 2 threads": 1, "2 processes x 1 thread": 1}
    assert result["faster"] in result["trials_per_hour"] and "faster:" in done.stdout


def test_the_throughput_benchmark_sets_each_model_against_the_measured_peak(real_data, tmp_path):
    _, result = quick("throughput", real_data, tmp_path, "--xla", "--precision", "bfloat16")
    assert result["xla"]["samples_per_s"] > 0  # the script stops if Keras fell back from XLA
    assert result["precision"] == "bfloat16"  # and each model was timed in float32 too, to compare
    assert {name: r["batch"] for name, r in result["float32"].items()} == {"mlp-512-256": 256, "cnn-nb003": 32}
    assert result["peak_gflops"] > 0 and set(result["models"]) == {"mlp-512-256", "cnn-nb003"}
    mlp = result["models"]["mlp-512-256"]
    assert mlp["train_mflops_per_sample"] == pytest.approx(3 * 2 * (784 * 512 + 512 * 256 + 256 * 10) / 1e6, abs=1e-3)
    assert set(mlp["samples_per_s"]) == {"32", "256"} and 0 < max(mlp["share_of_peak"].values()) < 1
    assert {k: set(v) for k, v in result["threads"].items()} == {"intra 1 inter 1": {"mlp-512-256"},
                                                                 "intra 2 inter 2": {"mlp-512-256"}}


def test_the_pruning_benchmark_counts_the_epochs_each_sweep_trained(real_data, tmp_path):
    _, result = quick("pruning", real_data, tmp_path)
    none, *pruned = result["runs"]
    assert [r["pruner"] for r in pruned] == ["hyperband", "halving"]
    assert none["trials"] == 4 and none["completed"] == 4  # nothing pruned without a pruner
    # The same seeded random draws in each sweep: the same configurations, so pruning only takes epochs away.
    for run in pruned:
        assert run["trials"] == 4 and 0 < run["epochs"] <= none["epochs"] <= 4 * 2


def test_the_sampler_benchmark_tracks_the_best_value_of_each_sampler(real_data, tmp_path):
    _, result = quick("samplers", real_data, tmp_path)
    runs = result["runs"]
    assert {r["sampler"] for r in runs} == {"tpe", "random", "qmc"} and all(r["trials"] == 4 for r in runs)
    # The sampler it names is the one whose sweeps ended best (one seed here: its run's last best).
    last = {r["sampler"]: r["best_after"][-1] for r in runs}
    assert last[result["best"]] == max(last.values())


def test_the_peer_benchmark_sets_the_default_sweep_against_a_hand_written_one(real_data, tmp_path):
    done, result = quick("peer", real_data, tmp_path)
    assert result["cpu"]["model"] in done.stdout
    for run in (result["peer"], result["mnist_sweep"]):
        assert run["seconds"] > 0 and 0.1 < run["test"] <= 1 and run["completed"] >= 1
    assert result["peer"]["epochs"] <= 3  # the smoke run's cap of one epoch per trial holds for the peer too
    assert f"mnist_sweep / peer = {result['ratio']:.2f}" in done.stdout  # the figure printed is the one recorded
    final = result["mnist_sweep"]["final_step"]  # kept, to tell why one seed tests differently from run to run
    assert any(line.startswith("final model") and "test_accuracy" in line for line in final)


def test_the_startup_benchmark_sets_a_one_epoch_trial_against_a_steady_epoch(real_data, tmp_path):
    _, result = quick("startup", real_data, tmp_path)
    assert len(result["trial_s"]) == len(result["runner_s"]) == 2 and len(result["steady_epochs_s"]) == 2
    assert result["steady_epoch_s"] > 0
    assert all(runner <= whole for runner, whole in zip(result["runner_s"], result["trial_s"]))
    assert isinstance(result["met"], bool) and result["met"] == (result["ratio"] <= result["target"])


def test_the_techniques_benchmark_trains_the_network_without_and_with_each_technique(real_data, tmp_path):
    done, result = quick("techniques", real_data, tmp_path, "--networks", "nb003")
    runs = result["networks"]["nb003"]
    assert {"none", "all", "all but batch norm"} < set(runs) and result["cpu"]["model"] in done.stdout
    for run in runs.values():
        assert len(run["val_accuracy"]) == result["epochs"] == 1 and 0 < run["best"] <= 1
        assert (run["epochs_to_target"] is None) == (run["best"] < result["target"])


def test_the_fidelity_benchmark_ranks_the_same_configurations_on_few_and_all_images(real_data, tmp_path):
    _, result = quick("fidelity", real_data, tmp_path)
    from scipy.stats import spearmanr  # the ranking agreement as SciPy computes it, not as the script does

    rows = result["rows"]
    assert len(rows) == 3 and all(0 < row[k]["val_accuracy"] <= 1 for row in rows for k in ("few", "all"))
    expected = spearmanr([r["few"]["val_accuracy"] for r in rows], [r["all"]["val_accuracy"] for r in rows]).statistic
    assert result["spearman"] == pytest.approx(expected, abs=1e-6)


def test_the_cnn_search_benchmark_names_the_sampler_and_pruner_it_measured_best(real_data, tmp_path):
    done, result = quick("cnn_search", real_data, tmp_path)
    assert f"best: {result['best']}" in done.stdout
    # The combination it names is the one whose sweeps ended best (one seed each here).
    ended = {f"{r['sampler']}+{r['pruner']}": r["best"] for r in result["runs"]}
    assert len(ended) == 2 and ended[result["best"]] == max(ended.values())


def test_the_backend_benchmark_replays_each_recorded_trial_for_the_epochs_it_trained(real_data, tmp_path):
    import optuna
    from optuna.distributions import IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState, create_trial

    params = {"n_layers": 1, "units_l0": 32, "dropout_l0": 0.0, "optimizer": "adam", "learning_rate": 1e-3,
              "batch_size": 256, "epochs": 3, "schedule": "constant", "anneal": False, "label_smoothing": 0.0,
              "ema": False, "augment": False, "early_stopping": False}
    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="mlp-optuna", storage=JournalStorage(JournalFileBackend(str(journal))))
    # One trial pruned after its first epoch, one finished after all three, one that failed untrained.
    for state, epochs in ((TrialState.PRUNED, 1), (TrialState.COMPLETE, 3), (TrialState.FAIL, 0)):
        study.add_trial(create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None,
                                     params={"units_l0": 32}, distributions={"units_l0": IntDistribution(16, 64)},
                                     user_attrs={"params": params},
                                     intermediate_values={e: 0.5 for e in range(1, epochs + 1)}))
    done, result = quick("backends", real_data, tmp_path, "--journal", str(journal), "--backends", "tensorflow")
    (run,) = result["runs"]
    assert run["backend"] == "tensorflow" and run["epochs"] == [1, 3]  # the failed trial is not replayed
    assert len(run["val_accuracy"]) == 2 and all(0 < a <= 1 for a in run["val_accuracy"])
    assert "tensorflow 1.00x" in done.stdout


def test_the_finals_benchmark_judges_each_ensemble_size_on_validation_images_only(real_data, tmp_path):
    sweep = [sys.executable, "-m", "mnist_sweep", "optuna", "--trials", "3", "--study-name", "fin", "--data",
             str(real_data), "--train-limit", "3000", "--validation-size", "1000", "--max-epochs", "1",
             "--sampler", "random", "--pruner", "none", "--workers", "1", "--no-warm-start", "--final-models", "1"]
    assert subprocess.run(sweep, capture_output=True, text=True, timeout=900, cwd=tmp_path).returncode == 0
    out = tmp_path / "finals.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "finals.py"), "--data", str(real_data),
                           "--study", "fin", "--journal", str(tmp_path / "mlruns" / "optuna.journal"),
                           "--members", "1,2", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = json.loads(out.read_text())["runs"]
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="fin", storage=JournalStorage(JournalFileBackend(
        str(tmp_path / "mlruns" / "optuna.journal"))))
    assert len(one["members"]) == 1 and len({t for t, _ in two["members"]}) == 2  # two distinct configurations
    # The best configuration retrained as its trial was trained (one epoch, the same images) scores
    # about what its trial did on the same validation images: the benchmark judges real retrains.
    best = max(t.value for t in study.trials if t.value is not None)
    assert one["val_accuracy"] > best - 0.08 and two["val_accuracy"] > best - 0.08
    assert study.user_attrs["test_evaluations"] == 1  # by its own final step, not by the benchmark


def test_the_batchnorm_benchmark_times_the_network_without_with_keras_and_with_the_fused_layer(real_data, tmp_path):
    done, result = quick("batchnorm", real_data, tmp_path)
    assert [len(result[f"{v}_s"]) for v in ("none", "keras", "fused")] == [1, 1, 1]
    assert "fused against Keras's" in done.stdout


def test_the_draws_benchmark_shows_a_lower_cost_limit_drawing_narrower_networks(tmp_path):
    out = tmp_path / "draws.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "draws.py"), "--limits", "12,1000",
                           "--draws", "300", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    tight, loose = (json.loads(out.read_text())["limits"][k] for k in ("12.0", "1000.0"))
    assert tight["filters_l0"][1] < loose["filters_l0"][1]  # the bound narrows widths, median first block
    assert tight["share_every_block_wide"] < loose["share_every_block_wide"]
    # Drawn as the sweep draws, within the limit: most draws make a network under it (8% are over at
    # their narrowest and 13% leave no pixel, tests/test_costs.py), not the few a blind draw would.
    assert tight["kept"] > 0.6 * 300 and "every block >= 32" in done.stdout
