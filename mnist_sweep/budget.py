"""Which trial the final step retrains when a sweep has a time budget for it.

The final step retrains the best trial's configuration on all training images for the epochs
the trial ran. A CNN that wins on 10,000 images can cost an hour to retrain on 60,000 on two
cores (notebook 001's network: 55 minutes), so a sweep may set `final_minutes`: the final
step then retrains the best trial whose retrain is estimated to fit, and says which better
trials it passed over. The estimate scales what the trial itself measured: its seconds per
epoch (validation included, so it errs high), by the images the retrain trains on, and by
the threads it has against the trial's.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnist_sweep.studies import TrialOutcome

# Two TensorFlow threads against one on a CNN epoch here (benchmarks/throughput.py, threads).
TWO_THREAD_SPEEDUP = 1.6


@dataclass(frozen=True)
class Choice:
    trial: TrialOutcome
    passed_over: tuple[tuple[TrialOutcome, float], ...] = ()  # better trials, with their estimates

    def note(self) -> str | None:
        if not self.passed_over:
            return None
        skipped = ", ".join(f"trial {t.number} ({s / 60:.0f} min)" for t, s in self.passed_over)
        return (f"the final step retrains trial {self.trial.number}, the best whose retrain fits final_minutes; "
                f"better on validation but estimated too long to retrain: {skipped}")


def retrain_seconds(trial: TrialOutcome, trial_images: int, final_images: int, final_threads: int) -> float:
    per_epoch = trial.seconds / max(1, trial.trained or trial.epochs)
    faster = TWO_THREAD_SPEEDUP if trial.threads and final_threads > trial.threads else 1.0
    return per_epoch * final_images / trial_images * trial.epochs / faster


def choose(completed: list[TrialOutcome], limit_minutes: float | None, trial_images: int, final_images: int,
           final_threads: int, members: int = 1) -> Choice:
    """The best completed trial, or the best whose `members` retrains fit `limit_minutes` (the best if none does)."""
    ranked = sorted(completed, key=lambda t: (-(t.value or 0.0), t.number))
    if limit_minutes is None:
        return Choice(ranked[0])
    passed = []
    for trial in ranked:
        seconds = members * retrain_seconds(trial, trial_images, final_images, final_threads)
        if seconds <= 60 * limit_minutes:
            return Choice(trial, tuple(passed))
        passed.append((trial, seconds))
    return Choice(ranked[0])
