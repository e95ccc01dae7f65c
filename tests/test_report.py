"""The report's pieces: the trial table and the edge-of-range warning."""

from __future__ import annotations

from mnist_sweep.report import Trial, edge_warnings, markdown, table
from mnist_sweep.space import load_space

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
    trials = [Trial(0, "completed", 0.95, 3, 10.0, {"units_l0": 64}, "a"),
              Trial(1, "failed", None, 1, 2.0, {"units_l0": 32}, "b"),
              Trial(2, "pruned", 0.97, 2, 5.0, {"units_l0": 128}, "c")]
    frame = table(trials)
    assert frame["trial"].tolist() == [2, 0, 1] and frame["rank"].tolist() == [1, 2, 3]
    text = markdown(frame)
    assert text.splitlines()[0] == "| rank | trial | outcome | val_accuracy | epochs | seconds | units_l0 |"
    assert "| 1 | 2 | pruned | 0.97 | 2 | 5 | 128 |" in text
