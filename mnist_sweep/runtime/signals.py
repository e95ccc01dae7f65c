"""Ctrl-C and `kill` stop a sweep as KeyboardInterrupt, at once or at the next safe point.

Python runs a signal handler between any two bytecodes, also inside a garbage-collection
callback, where an exception is printed and dropped ("Exception ignored in ..."); measured:
a SIGTERM that landed in SQLAlchemy's weakref callback let the sweep run to its end. So the
request is also remembered, and training checks it every few batches and between trials.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

_requested = threading.Event()


def install() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handler)


def check() -> None:
    """Raise KeyboardInterrupt if a stop was asked for (and perhaps swallowed)."""
    if _requested.is_set():
        raise KeyboardInterrupt


def _handler(signum: int, frame: Any) -> None:
    _requested.set()
    raise KeyboardInterrupt
