"""Jobs run side by side in fresh processes, one per core, that end with the process that started them.

The final step trains an ensemble's members at once: on two cores, two one-thread processes
train more images per second than one process with two threads (benchmarks/throughput.py,
threads), and the core that would otherwise idle while one model retrains is used. Each job
gets a new process (TensorFlow's memory is returned when it exits) and sends its result back
on a pipe of its own. A Ctrl-C or a `kill` of this process terminates the children (a kill -9
through the parent-death signal), so nothing trains on behind a stopped sweep; a child that
dies fails the run at once. (multiprocessing's Pool waits for ever for a child that died, and
concurrent.futures' pool with a fresh process per job hung at shutdown here, Python 3.11.)
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from mnist_sweep.runtime.workers import die_with_parent, use_threads

Job = TypeVar("Job")


class ChildDied(Exception):
    """A job's process ended without a result (killed, out of memory, or its job raised). Its
    words say what happened to the process; the caller says which job it was and what to do."""


def run_each(work: Callable[[Job], Any], jobs: list[Job], processes: int, threads: int) -> Iterator[Any]:
    """`work(job)` for every job, `processes` at a time with `threads` TensorFlow threads each; the
    results in the jobs' order, each as soon as it and those before it are done. `work` must be a
    module-level function: a child imports it by name once it is set up (its module may import
    TensorFlow, which must not load before the child has tied its life to this process's)."""
    context = multiprocessing.get_context("spawn")  # a fork would copy TensorFlow's threads and locks
    name = f"{work.__module__}:{work.__qualname__}"
    waiting, given = list(enumerate(jobs)), 0
    running: dict[Connection, tuple[int, multiprocessing.process.BaseProcess]] = {}  # by the pipe of its result
    done: dict[int, Any] = {}
    try:
        while given < len(jobs):
            while waiting and len(running) < processes:
                index, job = waiting.pop(0)
                receive, send = context.Pipe(duplex=False)
                child = context.Process(target=_child, args=(name, job, threads, send, os.getpid()), daemon=True)
                child.start()
                send.close()  # the child's end: its death then reads as end-of-file here
                running[receive] = (index, child)
            ready = wait(list(running))
            for receive in [r for r in running if r in ready]:
                index, process = running.pop(receive)
                done[index] = _result(receive, process)
            while given in done:
                yield done.pop(given)
                given += 1
    finally:
        for _, process in running.values():  # a stop or an error: no orphan trains on
            process.terminate()
            process.join()


def _result(receive: Connection, child: multiprocessing.process.BaseProcess) -> Any:
    try:
        ok, value = receive.recv()
    except EOFError:
        child.join()
        raise ChildDied(f"its process died (exit {child.exitcode}) before it finished") from None
    child.join()
    if not ok:
        raise ChildDied(f"its process failed: {value}")
    return value


def _child(work: str, job: Any, threads: int, send: Connection, parent: int) -> None:
    """One job in a fresh process: tied to its parent first, then TensorFlow, then the job's code.

    Ctrl-C reaches every process of the terminal's group: the parent ends the children, which
    need not each print a traceback of their own."""
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the tie was made
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from mnist_sweep.quiet import load_tensorflow

    load_tensorflow()
    use_threads(threads)
    module, _, function = work.partition(":")
    try:
        result = (True, getattr(importlib.import_module(module), function)(job))
    except Exception as err:  # sent as text: not every exception pickles
        result = (False, f"{type(err).__name__}: {err}")
    send.send(result)
