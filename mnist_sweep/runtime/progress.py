"""What the user watches: an overall bar with an ETA, and one line per ended trial.

With several workers the sweep's own process shows both for all of them: it follows the study
while it waits (`follow`), and the workers show nothing, as their lines would break its bar."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from tqdm import tqdm

from mnist_sweep.outcomes import Outcome

if TYPE_CHECKING:
    from mnist_sweep.studies import TrialOutcome


def _size() -> dict[str, Any]:
    """The bar follows the terminal's width. A terminal that says it is 0 by 0 (the pty `script`
    opens when its own output is a file) would get no bar at all from tqdm: 80 by 24 instead."""
    try:
        if os.get_terminal_size(sys.stderr.fileno()).columns:
            return {"dynamic_ncols": True}
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real terminal (a test's stream)
        return {"dynamic_ncols": True}
    return {"ncols": 80, "nrows": 24}


class Followed(Protocol):
    """What `follow` reads of a study: an Optuna study and a Keras Tuner project both offer it."""

    def outcomes(self) -> list[TrialOutcome]: ...


class Progress:
    """Counts finished (completed or pruned) trials towards the study's target."""

    def __init__(self, target: int, done: int, best: float | None = None, bar: bool = True, lines: bool = True,
                 shown: Iterable[int] = ()):
        """`bar=False, lines=False` for a worker: the sweep's process shows its trials. Where stderr
        is not a terminal (a file, a CI log) there is no bar: its frames of carriage returns would
        fill the file; the line per trial is all. `shown`: trials a resumed study ended before."""
        self.best, self.lines, self.shown = best, lines, set(shown)
        bar = bar and sys.stderr.isatty()
        self.bar = tqdm(total=target, initial=done, desc="trials", unit="trial", file=sys.stderr, disable=not bar,
                        **_size(), bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}]")

    def show(self, trial: TrialOutcome, best: float | None = None) -> None:
        """One line per trial; `best` is the study's best where other processes add to it."""
        if trial.outcome == Outcome.COMPLETED and trial.value is not None:
            self.best = trial.value if self.best is None else max(self.best, trial.value)
        if best is not None:
            self.best = best
        shown = "   -  " if trial.value is None else f"{trial.value:.4f}"
        so_far = "   -  " if self.best is None else f"{self.best:.4f}"
        line = (f"trial {trial.number:3d}  {trial.outcome:9s}  val_acc {shown}  epochs {trial.epochs:2d}  "
                f"{trial.seconds:6.1f}s  best {so_far}")
        if trial.outcome != Outcome.COMPLETED and trial.reason:  # why: the pruner, the time, an error
            line += f"  ({trial.reason[:80]})"
        if trial.preset:
            line += f"  [{trial.preset}]"
        self.shown.add(trial.number)
        if self.lines:
            self.bar.write(line, file=sys.stderr)
        if trial.counts:
            self.bar.update(1)  # not n=: tqdm's rate, and so the ETA, comes from its updates

    def follow(self, study: Followed) -> None:
        """A line for each trial the workers ended since the last look, and the bar's clock."""
        try:
            outcomes = study.outcomes()
        except Exception:  # noqa: BLE001 (a database's hiccup: the display is not worth the sweep; next look retries)
            outcomes = []
        for trial in outcomes:
            if trial.number not in self.shown:
                self.show(trial)  # its best: the best of the lines so far, not of trials shown later
        self.bar.refresh()  # elapsed and ETA move on during a long trial too

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
