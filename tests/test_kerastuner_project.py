"""A Keras Tuner project's record: each trial's outcome written and read back, 0.1.0's too."""

from __future__ import annotations

import json

from mnist_sweep.engines.kerastuner_project import Project
from mnist_sweep.studies import TrialOutcome


def test_each_outcome_reads_back_from_a_project_and_0_1_0s_trials_too(tmp_path):
    project = Project(tmp_path, "p")
    # 0.1.0 kept the trials in study.json, a reason under "note".
    legacy = {"0": {"params": {"epochs": 1}, "preset": None, "outcome": "completed", "value": 0.9, "epochs": 1,
                    "learning_rates": [1e-3], "seconds": 1.2},
              "1": {"params": {"epochs": 1}, "preset": None, "outcome": "refused", "value": None, "epochs": 0,
                    "seconds": 0.1, "note": "needs 60 MFLOPs per image"},
              "2": {"params": {"epochs": 1}, "preset": None, "outcome": "failed", "value": None, "epochs": 0,
                    "seconds": 0.1, "note": "ValueError: boom"}}
    project.folder.mkdir()
    project.file.write_text(json.dumps({"trials": legacy}))
    words = ["completed", "pruned", "refused", "failed"]
    for number, word in enumerate(words, start=3):
        project.note(TrialOutcome(number, word, {"epochs": 1}, reason=f"why {word}"))
    read = [(o.number, o.outcome, o.reason) for o in project.outcomes()]
    assert read == [(0, "completed", None), (1, "refused", "needs 60 MFLOPs per image"),
                    (2, "failed", "ValueError: boom"),
                    *[(n, w, f"why {w}") for n, w in enumerate(words, start=3)]]
    assert project.finished() == 2  # Keras Tuner never prunes: its study counts completed trials
