"""The exceptions that end a command, each with its exit code; the CLI turns them into one line.

A trial's own failures (pruned, refused, diverged) are not here: the search catches them and
goes on (`trials.py`). These stop the command itself.
"""

from __future__ import annotations

USER_ERROR_EXIT = 2    # bad input: fix it and run again
CANNOT_GO_ON_EXIT = 3  # the search itself cannot progress (every trial fails, every model refused)
RECYCLE_EXIT = 75      # EX_TEMPFAIL: nothing is wrong, run the same command again to go on
INTERRUPTED_EXIT = 130  # Ctrl-C: 128 + SIGINT, as shells report it
TERMINATED_EXIT = 143   # `kill`: 128 + SIGTERM


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and how to fix it."""


class SweepCannotGoOn(Exception):
    """The search cannot progress: its last trials all failed, or the cost limit refuses
    nearly every sampled model. Nothing is lost; the message says what to change."""


class Recycle(Exception):
    """Raised between trials when the process has grown past its memory budget (runtime/memory.py):
    the same command goes on in a fresh process."""

    def __init__(self, baseline_mb: float, now_mb: float, trials: int):
        super().__init__(f"memory grew from {baseline_mb:.0f} MB after this process's first trial "
                         f"to {now_mb:.0f} MB after its trial {trials}")


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Refuse at once, naming the extra to install, when an optional dependency is missing.

    Only looked up (find_spec), not imported: the check costs nothing where the module is heavy."""
    from importlib.util import find_spec

    if find_spec(module) is None:
        raise UserError(f"{purpose} needs {module}, which is not installed: pip install 'mnist-sweep[{extra}]' "
                        f"(from a checkout: pip install -e '.[{extra}]')")
