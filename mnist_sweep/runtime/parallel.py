"""Jobs run side by side in fresh processes, one per core, that end with the process that started them.

The final step trains an ensemble's members at once: on two cores, two one-thread processes
train more images per second than one process with two threads (benchmarks/throughput.py,
threads), and the core that would otherwise idle while one model retrains is used. Each job
gets a new process (TensorFlow's memory is returned when it exits). A Ctrl-C or a `kill` of
this process terminates the children (a kill -9 through the parent-death signal), so nothing
trains on behind a stopped sweep; a child that dies fails the whole run at once, where
multiprocessing's Pool would wait for it for ever.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from mnist_sweep.runtime.workers import die_with_parent, use_threads

Job = TypeVar("Job")


class ChildDied(Exception):
    """A job's process ended without a result (killed, or out of memory)."""


def run_each(work: Callable[[Job], Any], jobs: list[Job], processes: int, threads: int) -> Iterator[Any]:
    """`work(job)` for every job, `processes` at a time with `threads` TensorFlow threads each; the
    results in the jobs' order, each as soon as it and those before it are done. `work` must be a
    module-level function (the children import it by name)."""
    context = multiprocessing.get_context("spawn")  # a fork would copy TensorFlow's threads and locks
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start, initargs=(threads,),
                               max_tasks_per_child=1)
    try:
        for future in [pool.submit(work, job) for job in jobs]:
            yield future.result()
    except BrokenProcessPool:
        raise ChildDied("a process of the final step died before it finished; run the same command "
                        "again to retrain") from None
    finally:
        for child in multiprocessing.active_children():  # a stop or an error: no orphan trains on
            child.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _start(threads: int) -> None:
    die_with_parent()
    from mnist_sweep.quiet import load_tensorflow

    load_tensorflow()
    use_threads(threads)
