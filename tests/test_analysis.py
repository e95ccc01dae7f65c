"""The trials as an Optuna study for the report (reporting/analysis.py): what goes in, what is drawn."""

from __future__ import annotations

import pytest

from mnist_sweep.reporting.analysis import as_study, html, parallel_coordinates
from mnist_sweep.reporting.plots import pyplot
from mnist_sweep.space import load_space
from mnist_sweep.studies import TrialOutcome
from tests.test_trials import FIXED

MLP = {**FIXED, "epochs": 5}  # in the mlp space's ranges


def trials() -> list[TrialOutcome]:
    return [TrialOutcome(0, "completed", MLP, 0.90),
            TrialOutcome(1, "pruned", {**MLP, "units_l0": 64}, 0.95),  # stopped early: not comparable
            TrialOutcome(2, "failed", MLP),
            TrialOutcome(3, "completed", {**MLP, "units_l0": 5000}, 0.97),  # outside today's range [16, 1024]
            TrialOutcome(4, "completed", {**MLP, "units_l0": 128, "learning_rate": 1e-3}, 0.92)]


def test_only_completed_trials_within_todays_space_go_into_the_study():
    study = as_study(trials(), load_space("mlp"))
    assert [(t.value, t.params["units_l0"]) for t in study.trials] == [(0.90, 32), (0.92, 128)]


def test_the_parallel_coordinates_leave_out_a_parameter_every_trial_shares(tmp_path):
    study = as_study(trials(), load_space("mlp"))
    with pyplot() as plt:
        path = parallel_coordinates(study, ["units_l0", "learning_rate", "optimizer"], tmp_path / "parallel.png")
        axes = [t.get_text() for t in plt.gcf().axes[0].get_xticklabels()]
    assert axes == ["validation accuracy", "learning_rate", "units_l0"]  # every trial ran adam: no axis for it
    assert path.stat().st_size > 1000


def test_the_interactive_page_carries_its_title_and_plotly_once_to_open_offline(tmp_path):
    pytest.importorskip("plotly")
    study = as_study(trials(), load_space("mlp"))
    page = html(study, ["units_l0", "learning_rate"], "Study s", tmp_path / "report.html").read_text()
    assert "<title>Study s</title>" in page and "<h1>Study s</h1>" in page
    assert page.count("plotly.js v") == 1  # the library inside the page, not fetched from the network
