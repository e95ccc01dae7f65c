"""When the search stops (deadlines.py): its limits, counted from the command's start, as times."""

from __future__ import annotations

import time

import pytest

from mnist_sweep.config import Settings
from mnist_sweep.deadlines import SPENT_GRACE_SECONDS, SearchEnds, search_ends


def test_the_search_starts_trials_in_its_share_of_the_minutes_only_so_the_final_step_keeps_the_rest():
    two_ago = time.time() - 2 * 60
    # 5.4 minutes, the search's half of them from the command's start: 2.7 - 2 minutes left of it.
    ends = search_ends(Settings(minutes=5.4, search_share=0.5), two_ago)
    assert ends.left() == pytest.approx(42, abs=1)
    # Trials still training stop where the share ends too; without a share, never.
    assert ends.stop_trials_at - time.monotonic() == pytest.approx(42, abs=1)
    assert search_ends(Settings(minutes=5.4), two_ago) == SearchEnds()  # no share: the search runs to its --trials


def test_a_timeout_counts_from_the_commands_start_and_the_sooner_limit_ends_the_search():
    two_ago = time.time() - 2 * 60
    assert search_ends(Settings(timeout=150), two_ago).left() == pytest.approx(30, abs=1)
    with_share = search_ends(Settings(minutes=5.4, search_share=0.5, timeout=150), two_ago)
    assert with_share.left() == pytest.approx(30, abs=1)  # the less of the two
    # --timeout alone keeps Optuna's meaning: the trials under way when it ends finish.
    assert with_share.stop_trials_at - time.monotonic() == pytest.approx(42, abs=1)
    assert search_ends(Settings(timeout=150), two_ago).stop_trials_at is None


def test_a_search_whose_time_is_spent_as_it_begins_may_still_start_trials_for_a_grace():
    ends = search_ends(Settings(minutes=5.4, search_share=0.3), time.time() - 2 * 60)
    assert ends.spent()  # the command's clock: 1.62 of the 5.4 minutes were the search's
    time.sleep(0.5)  # the data, the study and its recovery come before the search begins
    begun = ends.begun()
    assert begun.left() == pytest.approx(SPENT_GRACE_SECONDS, abs=0.1)
    assert begun.stop_trials_at == ends.stop_trials_at  # trials still stop where the share ended
    time.sleep(SPENT_GRACE_SECONDS)
    assert begun.spent()
    later = search_ends(Settings(timeout=100), time.time())
    assert later.begun() == later  # time left: nothing added
    assert not SearchEnds().spent() and SearchEnds().left() is None and SearchEnds().begun() == SearchEnds()


def test_every_process_of_a_sweep_reads_the_same_ends_whenever_it_starts():
    # A worker, a worker's replacement and a process that replaced itself after outgrowing its
    # memory begin later than the sweep, with its start (cli._started) and its command line.
    started, settings = time.time() - 10, Settings(minutes=5.4, search_share=0.5, timeout=100)
    first = search_ends(settings, started)
    time.sleep(0.2)
    later = search_ends(settings, started)
    assert later.last_start == pytest.approx(first.last_start, abs=0.02)
    assert later.stop_trials_at == pytest.approx(first.stop_trials_at, abs=0.02)
