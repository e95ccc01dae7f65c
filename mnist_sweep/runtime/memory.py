"""A sweep that outgrows its memory budget carries on in a fresh process: same PID, same command.

Keras 3.15 on TensorFlow 2.21 keeps about 7 MB of every model it builds for the life of the
process; `clear_session`, garbage collection and `malloc_trim` give none of it back (see
keras-team/keras#17458 and #20552). A 50-trial MLP sweep grew by 370 MB that way. So, like
Celery's `worker_max_memory_per_child`, the sweep checks its growth after each trial and, past
the budget, replaces itself with `os.execv`. Nothing needs handing over: running the same
command again resumes the study, its MLflow parent run and its Keras Tuner project.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from mnist_sweep.errors import Recycle


def resident_mb() -> float:
    """This process's resident memory now, on any system (reading Linux's /proc gave 0 elsewhere,
    which silently turned the budget off)."""
    import psutil  # 11 ms: not on the path of --help, which imports this module for restart()

    return psutil.Process().memory_info().rss / 2**20


class MemoryBudget:
    """How much a sweep process may grow beyond its size after its first trial."""

    def __init__(self, growth_mb: float | None):
        self.growth_mb = growth_mb
        self.baseline: float | None = None  # after one trial: TensorFlow's own start-up is in it
        self.trials = 0

    def after_trial(self) -> None:
        self.trials += 1
        now = resident_mb()
        if self.baseline is None:
            self.baseline = now
        elif self.growth_mb is not None and now - self.baseline > self.growth_mb:
            raise Recycle(self.baseline, now, self.trials)


def restart_command(argv: list[str]) -> list[str]:
    """The command that continues this sweep in this process: the same one. Its --timeout and
    `minutes` keep counting from the first start, which the process keeps (cli._started)."""
    return [sys.executable, "-m", "mnist_sweep", *argv]


def restart(command: list[str]) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
