"""Which trial the final step retrains, and for how many epochs, when a sweep has a time budget.

The final step retrains the best trial's configuration on all training images. A CNN that
wins on 10,000 images can cost an hour to retrain on 60,000 on two cores (notebook 001's
network, 30 epochs: 55 minutes), so a sweep may set `final_minutes`. The final step then
retrains the best trial whose retrain fits: for the configuration's own epochs if they fit,
else for as many as fit, but never for fewer gradient steps than the trial itself took (on
6x the images, a sixth of its epochs is as many steps). A trial that cannot fit even that is
passed over, and the note says so. With `final_models` above 1 the configuration's own epochs
come first (the search judged the configuration on its own schedule, not on a shortened one):
members are added only while whole retrains still fit, and the note says when fewer fit than
were asked. The estimate scales what the trial measured: its seconds per
epoch (validation included, so it errs high), by the images the retrain trains on and by the
threads it has against the trial's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mnist_sweep.studies import TrialOutcome

# Two TensorFlow threads against one on a CNN epoch (benchmarks/throughput.py, threads): 1.6x on
# the Intel Xeon of 2026-12-01, 1.13x on the AMD EPYC of 2026-12-02. The larger errs towards
# retrains that run over; the validation pass counted in the trial's seconds errs the other way.
TWO_THREAD_SPEEDUP = 1.6


@dataclass(frozen=True)
class Choice:
    trial: TrialOutcome
    epochs: int                    # the retrain's: the configuration's own, or as many as fit
    own_epochs: int | None = None  # the configuration's, when the retrain trains fewer
    passed_over: tuple[tuple[TrialOutcome, float], ...] = ()  # better trials, with their estimates
    members: int = 1               # retrains averaged into the final model (an ensemble above 1)
    asked_members: int | None = None  # final_models, when fewer whole retrains fit

    @classmethod
    def whole(cls, trial: TrialOutcome, trial_epochs: int | None = None, members: int = 1) -> Choice:
        """`trial` retrained `members` times for its configuration's own epochs, with no budget to fit."""
        return cls(trial, own_epochs(trial, trial_epochs), members=members)

    def note(self) -> str | None:
        notes = []
        if self.passed_over:
            skipped = ", ".join(f"trial {t.number} ({s / 60:.0f} min)" for t, s in self.passed_over)
            notes.append(f"the final step retrains trial {self.trial.number}, the best whose retrain fits "
                         f"final_minutes; better on validation but estimated too long to retrain: {skipped}")
        if self.own_epochs is not None:
            notes.append(f"the final step retrains trial {self.trial.number} for {self.epochs} of its "
                         f"{self.own_epochs} epochs, as many as fit final_minutes")
        if self.asked_members is not None:
            notes.append(f"the final step trains {self.members} of the {self.asked_members} models final_models "
                         f"asks for, as many whole retrains as fit final_minutes")
        return "\n".join(notes) or None


def own_epochs(trial: TrialOutcome, trial_epochs: int | None) -> int:
    """The configuration's epochs: those it trained, or its own where the search cut them short."""
    planned = int(trial.params.get("epochs", trial.epochs))
    return planned if trial_epochs is not None and trial.epochs >= trial_epochs else trial.epochs


def epoch_seconds(trial: TrialOutcome, trial_images: int, final_images: int, final_threads: int) -> float:
    per_epoch = trial.seconds / max(1, trial.trained or trial.epochs)
    faster = TWO_THREAD_SPEEDUP if trial.threads and final_threads > trial.threads else 1.0
    return per_epoch * final_images / trial_images / faster


def choose(completed: list[TrialOutcome], limit_minutes: float | None, trial_images: int, final_images: int,
           final_threads: int, members: int = 1, trial_epochs: int | None = None) -> Choice:
    """The best completed trial whose retrain fits `limit_minutes` (the best if none does), with
    up to `members` whole retrains of it, or one shortened to fit."""
    ranked = sorted(completed, key=lambda t: (-(t.value or 0.0), t.number))
    if limit_minutes is None:
        return Choice.whole(ranked[0], trial_epochs, members)
    passed = []
    for trial in ranked:
        own = own_epochs(trial, trial_epochs)
        per_epoch = epoch_seconds(trial, trial_images, final_images, final_threads)
        if (whole := int(60 * limit_minutes // (per_epoch * own))) >= 1:
            count = min(members, whole)
            return Choice(trial, own, None, tuple(passed), count, members if count < members else None)
        fits = int(60 * limit_minutes // per_epoch)
        if fits >= max(1, math.ceil(trial.epochs * trial_images / final_images)):  # the trial's own steps
            return Choice(trial, fits, own, tuple(passed), 1, members if members > 1 else None)
        passed.append((trial, per_epoch * own))
    return Choice.whole(ranked[0], trial_epochs)
