"""How a trial ended: the closed set of outcomes, and the only place their names are spelt.

Each store keeps an outcome its own way and has its own reader, in the module of its adapter:
Optuna's trial state and user attributes (`engines/optuna_study.py`), the Keras Tuner project's
outcome records (`engines/kerastuner_project.py`), MLflow's `outcome` tag (`tracking.py`). The values
are the words the first versions stored, so a study of 0.1.0 reads back as it was written.
"""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """A trial's outcome; equal to, printed and stored as its value ("completed", ...)."""

    COMPLETED = "completed"  # trained all its epochs: scored, counts towards --trials
    PRUNED = "pruned"        # stopped early (the pruner, or search_share's end) after an epoch at least: counts
    REFUSED = "refused"      # never trained (unbuildable, or over max_mflops): does not count
    FAILED = "failed"        # an error ended it: retried, its configuration runs again
    KILLED = "killed"        # Ctrl-C or a signal ended it (its MLflow run only: the trial is failed)
    # No outcome recorded yet (MLflow only): a live trial, or one a dead process left that the
    # study's next resume closes as failed.
    RUNNING = "running"

    # str's own, not Enum's: f-strings, str(), MLflow tags and tables give the stored word on
    # every Python from 3.10 (3.11 and 3.12 changed what a mixed-in Enum formats as).
    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]  # Enum types it as a method; str's is one

    @property
    def reason_key(self) -> str:
        """The MLflow tag that keeps why a trial ended so, as the first versions wrote it (a refused
        trial was a pruned one then); Optuna's user attribute for a failed or pruned trial too."""
        return "prune_reason" if self in (Outcome.PRUNED, Outcome.REFUSED) else "fail_reason"

    @property
    def counts(self) -> bool:
        """Whether a trial that ended so counts towards a study's --trials."""
        return self in (Outcome.COMPLETED, Outcome.PRUNED)
