"""The report's pieces: the trial table and the edge-of-range warning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnist_sweep.data import search_data
from mnist_sweep.reporting.analysis import as_study, importances
from mnist_sweep.reporting.plots import confusion_matrix
from mnist_sweep.reporting.report import (Baseline, Predictions, edge_warnings, markdown, table, trial_from_run,
                                          write)
from mnist_sweep.space import load_space
from mnist_sweep.studies import TrialOutcome
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialEnded, TrialRunner
from tests.test_trials import FIXED


def Trial(number, outcome, value, epochs, seconds, params, run_id, preset=None):  # noqa: N802
    """A trial as the report reads it from its MLflow run."""
    return TrialOutcome(number, outcome, params, value, epochs, seconds, preset=preset, run_id=run_id)

BEST = {"n_layers": 2, "units_l0": 300, "units_l1": 1000, "dropout_l0": 0.2, "dropout_l1": 0.25,
        "optimizer": "adam", "learning_rate": 1.05e-4, "batch_size": 128, "epochs": 12, "anneal": False,
        "augment": False, "early_stopping": False}


def test_a_best_value_at_the_end_of_its_range_is_named_on_its_own_scale():
    warnings = edge_warnings(BEST, load_space("mlp"))
    # 1.05e-4 is at the bottom of [1e-4, 1e-2] on the log scale; 1000 at the top of [16, 1024].
    assert [w.split(" = ")[0] for w in warnings] == ["best units_l1", "best learning_rate"]
    assert "learning_rate = 0.000105 is at the low end of its range [0.0001, 0.01]" in warnings[1]
    assert edge_warnings({**BEST, "learning_rate": 1e-3, "units_l1": 200}, load_space("mlp")) == []


def test_the_table_ranks_trials_best_first_and_keeps_unscored_ones_last():
    trials = [Trial(0, "completed", 0.95, 3, 10.0, {"units_l0": 64, "epochs": 3}, "a"),
              Trial(1, "failed", None, 1, 2.0, {"units_l0": 32, "epochs": 9}, "b"),
              Trial(2, "pruned", 0.97, 2, 5.0, {"units_l0": 128, "epochs": 20}, "c")]
    frame = table(trials)
    assert frame["trial"].tolist() == [2, 0, 1] and frame["rank"].tolist() == [1, 2, 3]
    text = markdown(frame)
    # A pruned trial ran fewer epochs than it planned: both numbers stay in the table.
    assert (text.splitlines()[0]
            == "| rank | trial | outcome | val_accuracy | epochs_run | seconds | units_l0 | epochs |")
    assert "| 1 | 2 | pruned | 0.97 | 2 | 5 | 128 | 20 |" in text


def _trials(count: int) -> list[Trial]:
    """Completed MLP trials whose accuracy rises with the learning rate and nothing else."""
    rng = np.random.default_rng(0)
    trials = []
    for n in range(count):
        rate = float(10 ** rng.uniform(-4, -2))
        params = {**BEST, "units_l0": int(rng.integers(16, 1024)), "learning_rate": rate,
                  "n_layers": 1, "batch_size": int(rng.choice([32, 64, 128, 256]))}
        del params["units_l1"], params["dropout_l1"]
        trials.append(Trial(n, "completed", 0.9 + 0.02 * (math.log10(rate) + 4), 12, 30.0, params, f"run{n}"))
    return trials


def test_the_report_draws_every_figure_and_finds_the_parameter_that_matters(tmp_path):
    trials = _trials(20)
    truth = np.arange(100) % 10
    predicted = truth.copy()
    predicted[[3, 17]] = [5, 1]  # two mistakes: a 3 read as 5 and a 7 read as 1
    test = Predictions(truth, predicted, np.array([3, 17]), np.zeros((2, 28, 28), np.uint8))
    presets = [Baseline("nb004-mlp-300-300", "baselines", 0.9786, 0.9713)]
    final = 0.9857  # the final model's test accuracy
    written = write(tmp_path, trials, {0: [0.9, 0.91]}, load_space("mlp"), presets, final, test)
    names = {p.name for p in written.files}
    assert {"history.png", "parameters.png", "curves.png", "importances.png", "parallel.png",
            "confusion.png", "misclassified.png", "report.html", "presets.md", "trials.csv"} <= names
    assert all(p.stat().st_size > 1000 for p in written.files if p.suffix == ".png")
    weights = importances(as_study(trials, load_space("mlp")))
    assert next(iter(weights)) == "learning_rate" and weights["learning_rate"] > 0.5
    assert confusion_matrix(truth, predicted)[3, 5] == 1 and confusion_matrix(truth, predicted).trace() == 98
    # The best trial has rate near 1e-2: 0.94 against the preset's 0.9786 is below it, and said so.
    assert written.gain.startswith(f"best trial {max(trials, key=lambda t: t.value).number} reached")
    assert "points against the best preset, nb004-mlp-300-300 (0.9786, baselines)" in written.gain
    # no name given
    assert "the final model scored 0.9857, +1.44 points against nb004-mlp-300-300 (0.9713)" in written.gain


def test_preset_trials_of_a_warm_started_sweep_count_as_presets(tmp_path):
    trials = _trials(3)
    trials[0].preset = "nb002-mlp-512-512"
    written = write(tmp_path, trials, {}, load_space("mlp"), [], None, None)
    rows = (tmp_path / "presets.md").read_text()
    assert f"| nb002-mlp-512-512 | trial 0 | {trials[0].value:.4f} |  |" in rows
    assert "confusion.png" not in {p.name for p in written.files}  # no final model yet, no test plots


def test_trials_that_all_scored_the_same_have_no_importances(tmp_path):
    trials = _trials(4)
    for t in trials:
        t.value = 0.1  # e.g. tiny trials that all guess one digit
    assert importances(as_study(trials, load_space("mlp"))) == {}
    written = write(tmp_path, trials, {}, load_space("mlp"), [], None, None)
    assert "importances.png" not in {p.name for p in written.files}


def test_baselines_runs_of_this_space_on_the_same_data_are_the_presets_to_beat():
    from types import SimpleNamespace

    from mnist_sweep.reporting.report import _baselines

    def run(preset, val, test):
        return SimpleNamespace(data=SimpleNamespace(tags={"preset": preset, "run_kind": "baseline"},
                                                    metrics={"val_accuracy": val, "test_accuracy": test}))

    class Store:  # what `report` asks of the tracker: the baseline runs on this data digest
        def runs(self, filter_string):
            assert "tags.run_kind = 'baseline'" in filter_string and "tags.data_digest = 'abc'" in filter_string
            return [run("nb004-mlp-300-300", 0.9786, 0.9713), run("nb003-cnn-32-64-64", 0.99, 0.9888)]

    (found,) = _baselines(Store(), load_space("mlp"), "abc")  # the CNN preset is not of this space
    assert found == Baseline("nb004-mlp-300-300", "baselines", 0.9786, 0.9713)


def test_the_gain_over_the_notebooks_names_the_trials_an_ensemble_averages(tmp_path):
    from mnist_sweep.studies import FinalRecord

    presets = [Baseline("nb004-mlp-300-300", "baselines", 0.9786, 0.9713)]
    final = FinalRecord(trial=7, val_accuracy=0.98, params={}, epochs=5, train_size=60000, test_accuracy=0.9857,
                        test_loss=0.05, run_id="r", forced=False, evaluations=1, evaluated_at="now", members=2,
                        member_trials=(7, 3))
    written = write(tmp_path, _trials(20), {}, load_space("mlp"), presets, final.test_accuracy, None,
                    final.model_name())
    assert "on the test set the final model (trials 7, 3 retrained and averaged) scored 0.9857" in written.gain
    assert FinalRecord.from_dict(final.to_dict()) == final  # the record keeps its members through the store


def test_a_refused_trial_is_reported_as_refused_and_a_pruned_one_as_pruned(tiny_mnist, tracking_uri, tmp_path):
    tracker = Tracker(tracking_uri, "test", tmp_path / "artifacts")
    parent = tracker.parent_run("s", {"engine": "optuna"})
    runner = TrialRunner(load_space("mlp"), search_data(tiny_mnist, val_size=60, seed=0), tracker, parent,
                         {"engine": "optuna", "study": "s"}, seed=0, max_mflops=0.01)
    with pytest.raises(TrialEnded):
        runner.run(0, FIXED)  # 0.05 MFLOPs per image, over 0.01: refused untrained

    runner.max_mflops = None
    with pytest.raises(TrialEnded):
        runner.run(1, FIXED, prune=lambda: True)  # the pruner stops it after its first epoch
    text = markdown(table([trial_from_run(run) for run in tracker.trial_runs(parent)]))
    assert "| 1 | 1 | pruned |" in text and "| 2 | 0 | refused |" in text
    assert {run.info.status for run in tracker.trial_runs(parent)} == {"KILLED"}  # MLflow's filters as before
