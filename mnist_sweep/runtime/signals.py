"""Ctrl-C and `kill` stop a sweep as KeyboardInterrupt, at once or at the next safe point.

Python runs a signal handler between any two bytecodes, also inside a garbage-collection
callback, where an exception is printed and dropped ("Exception ignored in ..."); measured:
a SIGTERM that landed in SQLAlchemy's weakref callback let the sweep run to its end. So the
request is also remembered, and training checks it every few batches and between trials.
Which signal it was sets the exit code, as shells report a process a signal ended: 128 + its
number, 130 for Ctrl-C and 143 for `kill`, so a scheduler can tell one from the other.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from mnist_sweep.errors import INTERRUPTED_EXIT, TERMINATED_EXIT

_requested = threading.Event()
_last: list[int] = [signal.SIGINT]  # the stop asked for; a KeyboardInterrupt without a handler is Ctrl-C


def install() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


def check() -> None:
    """Raise KeyboardInterrupt if a stop was asked for (and perhaps swallowed)."""
    if stopping():
        raise KeyboardInterrupt


def stopping() -> bool:
    """Whether a stop was asked for: what failed after it may be its doing, not a fault."""
    return _requested.is_set()


def exit_code() -> int:
    """The exit code of a command the last stop request ended."""
    return TERMINATED_EXIT if _last[0] == signal.SIGTERM else INTERRUPTED_EXIT


def _handler(signum: int, frame: Any) -> None:
    _last[0] = signum
    _requested.set()
    raise KeyboardInterrupt
