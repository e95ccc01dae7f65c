"""When the search stops: its time limits turned into times once, which every part of it reads.

A sweep's limits are relative (`--timeout` seconds, `search_share` of `minutes`); each counts from
the command's start, which a worker process and a process that replaced itself after outgrowing its
memory inherit (cli._started). So every process of one sweep computes the same ends from the same
command line, and nothing passes a shrinking `--timeout` on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from mnist_sweep.config import Settings

SPENT_GRACE_SECONDS = 1.0  # a process whose search time is spent as its search begins still starts a trial


@dataclass(frozen=True)
class SearchEnds:
    """The search's two ends on time.monotonic()'s clock, None where nothing limits it.

    `last_start`: no trial starts after it (--timeout, or the share of `minutes`, whichever is first).
    `stop_trials_at`: sampled trials still training stop (trials.TrialRunner._stop_reason says which);
    the share's end only: --timeout alone keeps Optuna's meaning, under which running trials finish."""

    last_start: float | None = None
    stop_trials_at: float | None = None

    def left(self) -> float | None:
        """Seconds in which trials may still start; None: no limit."""
        return None if self.last_start is None else self.last_start - time.monotonic()

    def spent(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def begun(self) -> SearchEnds:
        """These ends as this process's search begins (after the data, the study and the recovery):
        if its time is spent by then, it may still start trials for SPENT_GRACE_SECONDS, so a study
        gets a trial and a worker started late runs one rather than none."""
        if self.last_start is None:
            return self
        return replace(self, last_start=max(self.last_start, time.monotonic() + SPENT_GRACE_SECONDS))


def seconds_since(started: float) -> float:
    """Seconds since `started` (seconds since the epoch: the command's start, kept across a recycle
    and handed to its workers): the one clock the search's ends and the final step's budget read."""
    return time.time() - started


def search_ends(settings: Settings, started: float) -> SearchEnds:
    """The ends of the search of a command begun at `started` (seconds since the epoch).

    Without the share, the final step gets whatever the search leaves, and a slower machine leaves it
    nothing: the default MLP sweep's 50 trials took 4.5 of its 5.4 minutes on a slow day, and its
    final step, 0.5 minutes for 11 epochs, tested 98.17% (docs/benchmarks.md)."""
    now = time.monotonic()
    begun = now - seconds_since(started)  # the command's start on the monotonic clock
    share = None
    if settings.minutes is not None and settings.search_share is not None:
        share = begun + 60 * settings.minutes * settings.search_share
    limits = [end for end in (share, None if settings.timeout is None else begun + settings.timeout)
              if end is not None]
    return SearchEnds(min(limits, default=None), share)
