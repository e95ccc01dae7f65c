"""The final step's members side by side: each in a fresh process of its own, at the same time."""

import os
import time

from mnist_sweep.runtime.parallel import run_each
from mnist_sweep.runtime.workers import current_threads

# In a child: the threads it had when it imported this module. A job's module may import
# TensorFlow, so it must be imported only once the child is set up (tied to its parent, threads).
THREADS_AT_IMPORT = current_threads()


def _stamp(seconds: float) -> tuple[int, float, float, int]:
    import tensorflow as tf

    began = time.monotonic()
    time.sleep(seconds)  # both children import TensorFlow first: long enough to overlap whatever their start
    return os.getpid(), began, time.monotonic(), tf.config.threading.get_intra_op_parallelism_threads()


def test_jobs_run_at_the_same_time_in_processes_of_their_own_with_the_threads_asked():
    (pid_a, began_a, ended_a, threads_a), (pid_b, began_b, ended_b, threads_b) = run_each(_stamp, [6.0, 6.0], 2, 1)
    assert len({pid_a, pid_b, os.getpid()}) == 3
    assert began_b < ended_a and began_a < ended_b  # they overlapped: two cores busy, not one after the other
    assert threads_a == threads_b == 1


def test_results_come_back_in_the_jobs_order_and_each_job_gets_a_fresh_process():
    results = list(run_each(_stamp, [0.6, 0.0, 0.0], 2, 1))
    assert [r[2] - r[1] >= 0.6 for r in results] == [True, False, False]  # the slow first job's result first
    assert len({r[0] for r in results}) == 3  # a fresh process each: TensorFlow's memory goes back


def _die(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), 9)


def test_a_child_killed_mid_job_fails_the_run_at_once_instead_of_waiting_for_ever():
    import pytest

    from mnist_sweep.runtime.parallel import ChildDied

    began = time.monotonic()
    with pytest.raises(ChildDied, match=r"died \(exit -?\d+\) before it finished"):
        list(run_each(_die, [0.5, 30.0], 2, 1))
    assert time.monotonic() - began < 25  # the 30-second job's process was terminated, not waited for


def _threads_at_import(_: object) -> int:
    return THREADS_AT_IMPORT


def test_a_jobs_code_is_imported_only_once_its_process_is_set_up():
    assert list(run_each(_threads_at_import, [None], 1, 1)) == [1]
