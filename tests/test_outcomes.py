"""Outcome: the closed set of ways a trial ends, written and counted as the stores expect."""

from __future__ import annotations

import json

from mnist_sweep.outcomes import Outcome


def test_an_outcome_is_written_as_its_stored_word_however_it_is_turned_into_text():
    # MLflow tags, JSON records, f-strings and tables all take the word 0.1.0 stored, not "Outcome.REFUSED".
    refused = Outcome.REFUSED
    assert (str(refused), f"{refused}", "%s" % refused) == ("refused", "refused", "refused")
    assert f"{refused:>8}" == " refused"  # the progress lines' columns
    assert json.dumps({"outcome": refused}) == '{"outcome": "refused"}' and Outcome("refused") is refused


def test_only_completed_and_pruned_trials_count_towards_the_trials_asked_for():
    assert {o for o in Outcome if o.counts} == {Outcome.COMPLETED, Outcome.PRUNED}
