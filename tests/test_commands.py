"""What the commands print for a user (commands.py), on records made here: no data, no training."""

from __future__ import annotations

import time
from dataclasses import replace

from mnist_sweep.commands import _say_if_cut_short, _show_final
from mnist_sweep.config import Settings
from mnist_sweep.deadlines import SearchEnds, search_ends
from mnist_sweep.final import FinalResult
from mnist_sweep.studies import FinalRecord


def _record(**values) -> FinalRecord:
    return FinalRecord(**{"trial": 7, "val_accuracy": 0.9806, "params": {}, "epochs": 30, "train_size": 60000,
                          "test_accuracy": 0.9896, "test_loss": 0.03, "run_id": "r", "forced": False,
                          "evaluations": 1, "evaluated_at": "now", **values})


def test_the_final_line_names_the_team_and_its_first_member_without_calling_it_the_best(capsys):
    # A team led by trial 7 while trial 29 scored higher (tied within two standard errors): the
    # report names 29 the best trial, so the final line must not call 7 so.
    _show_final(FinalResult(_record(members=2, member_trials=(7, 29), member_epochs=(30, 4)), None, False))
    line = capsys.readouterr().out.strip()
    assert "best" not in line
    assert line == ("final model (trials 7, 29 retrained and averaged) on 60000 images, the first for 30 epochs "
                    "(trial 7: val_accuracy 0.9806); test_accuracy 0.9896 (test set evaluation number 1)")


def test_a_recorded_result_shown_again_says_so_and_how_to_evaluate_again(capsys):
    _show_final(FinalResult(_record(), None, True))
    line = capsys.readouterr().out.strip()
    assert line.startswith("final model (trial 7 retrained) on 60000 images for 30 epochs")
    assert line.endswith("(as recorded earlier; --force evaluates again)")


def test_a_search_cut_short_names_the_limit_that_came_first(capsys):
    settings = Settings(trials=50, minutes=5.4, search_share=0.5, timeout=60)
    _say_if_cut_short(settings, search_ends(settings, time.time()), 20)  # 60 s before 162 s of share
    assert "stopped starting trials at --timeout with 20 of 50 trials" in capsys.readouterr().out
    settings = replace(settings, timeout=600)
    _say_if_cut_short(settings, search_ends(settings, time.time()), 20)
    assert "at its share of the minutes (search_share 0.5 of 5.4) with 20 of 50" in capsys.readouterr().out
    _say_if_cut_short(settings, search_ends(settings, time.time()), 50)  # it has its trials: nothing to say
    _say_if_cut_short(replace(settings, minutes=None, timeout=None), SearchEnds(), 20)
    assert capsys.readouterr().out == ""
