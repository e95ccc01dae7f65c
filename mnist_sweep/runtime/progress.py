"""What the user watches: an overall bar with an ETA, and one line per ended trial."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from mnist_sweep.studies import TrialOutcome


class Progress:
    """Counts finished (completed or pruned) trials towards the study's target."""

    def __init__(self, target: int, done: int, best: float | None = None, bar: bool = True):
        """`bar=False` for one of several workers: their lines interleave well, their bars do not.
        Where stderr is not a terminal (a file, a CI log) there is no bar either: its frames of
        carriage returns would fill the file; the line per trial is all."""
        self.best = best
        bar = bar and sys.stderr.isatty()
        self.bar = tqdm(total=target, initial=done, desc="trials", unit="trial", file=sys.stderr, disable=not bar,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}]")

    def show(self, trial: TrialOutcome, best: float | None = None) -> None:
        """One line per trial; `best` is the study's best where other processes add to it."""
        if trial.outcome == "completed" and trial.value is not None:
            self.best = trial.value if self.best is None else max(self.best, trial.value)
        if best is not None:
            self.best = best
        shown = "   -  " if trial.value is None else f"{trial.value:.4f}"
        so_far = "   -  " if self.best is None else f"{self.best:.4f}"
        line = (f"trial {trial.number:3d}  {trial.outcome:9s}  val_acc {shown}  epochs {trial.epochs:2d}  "
                f"{trial.seconds:6.1f}s  best {so_far}")
        if trial.outcome in ("failed", "refused") and trial.reason:
            line += f"  ({trial.reason[:80]})"
        if trial.preset:
            line += f"  [{trial.preset}]"
        self.bar.write(line)
        if trial.counts:
            self.bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
