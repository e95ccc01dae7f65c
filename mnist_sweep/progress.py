"""What the user watches: an overall bar with an ETA, and one line per finished trial."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


class Progress:
    """Counts finished (completed or pruned) trials towards the study's target."""

    def __init__(self, target: int, done: int, best: float | None = None, bar: bool = True):
        """`bar=False` for one of several workers: their lines interleave well, their bars do not."""
        self.best = best
        self.bar = tqdm(total=target, initial=done, desc="trials", unit="trial", file=sys.stderr, disable=not bar,
                        dynamic_ncols=True, bar_format="{l_bar}{bar}| {n}/{total} [{elapsed}<{remaining}]")

    def on_trial(self, study: Any, trial: Any) -> None:
        """An Optuna callback; `trial` is a FrozenTrial."""
        outcome = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed"}.get(trial.state.name,
                                                                                   trial.state.name.lower())
        attrs = trial.user_attrs
        note = attrs.get("fail_reason", "see log") if outcome == "failed" else None
        if "over_budget" in attrs:
            outcome, note = "refused", f"{attrs['over_budget']} MFLOPs per image, over max_mflops"
        try:
            self.best = study.best_value  # every worker's trials, not only this process's
        except ValueError:  # no completed trial yet
            pass
        value = trial.value if trial.value is not None else _last(trial.intermediate_values)
        self.show(trial.number, outcome, value, attrs.get("epochs_run", 0), attrs.get("seconds", 0.0),
                  note, attrs.get("preset"))

    def show(self, number: int, outcome: str, value: float | None, epochs: int, seconds: float,
             note: str | None = None, preset: str | None = None) -> None:
        """One line per trial; completed and pruned trials count towards the target."""
        if outcome == "completed" and value is not None:
            self.best = value if self.best is None else max(self.best, value)
        shown = "   -  " if value is None else f"{value:.4f}"
        best = "   -  " if self.best is None else f"{self.best:.4f}"
        line = (f"trial {number:3d}  {outcome:9s}  val_acc {shown}  epochs {epochs:2d}  "
                f"{seconds:6.1f}s  best {best}")
        if note:
            line += f"  ({note[:80]})"
        if preset:
            line += f"  [{preset}]"
        self.bar.write(line)
        if outcome in ("completed", "pruned"):
            self.bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _last(values: dict[int, float]) -> float | None:
    return values[max(values)] if values else None
