"""The notebooks' presets trained under the project's protocol (baselines.py), on tiny synthetic data."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from mnist_sweep.baselines import Run, run_baselines, summarise, table
from mnist_sweep.data import search_data
from mnist_sweep.presets import load_presets, select
from mnist_sweep.tracking import Tracker

PRESETS = load_presets()


def test_a_baseline_is_trained_tested_once_and_logged_with_its_preset_tag(tiny_mnist, tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    data = search_data(tiny_mnist, val_size=60, seed=0)
    (row,) = run_baselines(select(PRESETS, "nb002-mlp-32-64"), tiny_mnist, data, tracker, seed=0, max_epochs=2)
    assert row.epochs == 2 and 0 <= row.test_accuracy <= 1 and row.reported == 0.96
    (run,) = MlflowClient(tracking_uri).search_runs([tracker.experiment_id], "tags.run_kind = 'baseline'")
    assert run.data.tags["preset"] == "nb002-mlp-32-64" and run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == pytest.approx(row.test_accuracy)
    assert "nb002-mlp-32-64" in table([row])


def test_a_preset_over_several_seeds_is_their_mean_with_its_spread_and_over_one_seed_has_no_spread():
    (preset,) = select(PRESETS, "nb002-mlp-32-64")  # the notebook reported 0.96
    runs = [Run(preset.name, 0, 0.97, 0.96, 5, 10.0), Run(preset.name, 1, 0.99, 0.98, 5, 20.0)]
    row = summarise(preset, runs)
    assert row.seeds == 2 and (row.val_accuracy, row.test_accuracy, row.seconds) == pytest.approx((0.98, 0.97, 15.0))
    assert row.test_std == pytest.approx(0.0141, abs=1e-4)  # the sample standard deviation of 0.96 and 0.98
    assert summarise(preset, runs[:1]).test_std is None  # one seed: no spread to judge the notebook by


def test_the_table_shows_each_presets_claim_beside_its_result_and_a_dash_for_what_it_lacks():
    (preset,) = select(PRESETS, "nb002-mlp-32-64")
    several = summarise(preset, [Run(preset.name, 0, 0.97, 0.96, 5, 10.0), Run(preset.name, 1, 0.99, 0.98, 5, 20.0)])
    single = summarise(preset, [Run(preset.name, 0, 0.97, 0.96, 5, 10.0)])
    header, *lines = table([several, single]).splitlines()
    assert header.split() == ["preset", "notebook", "reported", "val_accuracy", "test_accuracy", "test_std", "seeds",
                              "epochs", "seconds"]
    assert lines[0].split() == ["nb002-mlp-32-64", "002", "0.9600", "0.9800", "0.9700", "0.0141", "2", "5", "15.0000"]
    assert lines[1].split()[5] == "-"  # a single seed's missing spread
