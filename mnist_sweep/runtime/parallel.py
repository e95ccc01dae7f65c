"""Jobs run side by side in fresh processes, one per core, that die with the process that started them.

The final step trains an ensemble's members at once: on two cores, two one-thread processes
train more images per second than one process with two threads (benchmarks/throughput.py,
threads), and the core that would otherwise idle while one model retrains is used. Each job
gets a new process (TensorFlow's memory is returned when it exits). A Ctrl-C or a `kill` of
this process ends the children (multiprocessing's terminate; a kill -9 through the parent-death
signal), so nothing trains on behind a stopped sweep.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mnist_sweep.runtime.workers import die_with_parent, use_threads

Job = TypeVar("Job")


def run_each(work: Callable[[Job], Any], jobs: list[Job], processes: int, threads: int) -> Iterator[Any]:
    """`work(job)` for every job, `processes` at a time with `threads` TensorFlow threads each; the
    results in the jobs' order, each as soon as it and those before it are done. `work` must be a
    module-level function (it is imported by name in the children)."""
    context = multiprocessing.get_context("spawn")  # a fork would copy TensorFlow's threads and locks
    with context.Pool(processes, initializer=_start, initargs=(threads,), maxtasksperchild=1) as pool:
        yield from pool.imap(work, jobs, chunksize=1)  # leaving the block early terminates the children


def _start(threads: int) -> None:
    die_with_parent()
    from mnist_sweep.quiet import load_tensorflow

    load_tensorflow()
    use_threads(threads)
