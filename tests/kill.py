"""Run the CLI with a kill -9 at one point of its code, as a crash or an out-of-memory kill would.

    python tests/kill.py MODULE:ATTRIBUTE before|after N -- ARGS...

replaces MODULE.ATTRIBUTE (a function, or a method as Class.method) by one that sends this
process SIGKILL before or after its Nth call, then runs `mnist_sweep.cli.main(ARGS)`. Nothing
after the kill runs: no `finally`, no atexit, no flush (stdout is line-buffered for the test).
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys


def patch(target: str, when: str, nth: int) -> None:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def killing(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, killing)


if __name__ == "__main__":
    target, when, nth, separator, *argv = sys.argv[1:]
    assert separator == "--" and when in ("before", "after")
    sys.stdout.reconfigure(line_buffering=True)
    patch(target, when, int(nth))
    from mnist_sweep.cli import main

    sys.exit(main(argv))
