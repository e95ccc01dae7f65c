"""Several trials at once on this machine: worker processes sharing one search, and their care.

The sweep's own process prepares the study (parent run, warm start), starts the workers as
fresh processes running the same command with `--worker I` (and whatever environment the
engine gives each: Keras Tuner's workers find its chief through it), and waits. Each worker
runs trials until the search has enough, with cores/N TensorFlow threads, so together they
use the cores without oversubscribing them. A worker that dies is replaced, after the engine
has failed its running trial so that it runs again; Ctrl-C or a `kill` of the sweep stops
them all. When they are done, the sweep's process runs the final step, once. The module
knows nothing of either engine.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from mnist_sweep.errors import CANNOT_GO_ON_EXIT, USER_ERROR_EXIT, SweepCannotGoOn, UserError

# On every trial run and trial record: which process ran it. A journal study tells a dead
# worker's trial by it; with several workers it shows who ran what.
WORKER = f"{socket.gethostname()}:{os.getpid()}"
# When the sweep's command began (seconds since the epoch), set by the sweep's process and inherited
# by the workers it starts: a worker's command began when its sweep's did (cli._started), so the
# search's --timeout and share of `minutes` end at one time in every process (deadlines.py).
STARTED_ENV = "MNIST_SWEEP_STARTED"
WATCH_SECONDS = 1.0  # between the looks `watch` takes at the study: each reads it whole
STOP_WAIT_SECONDS = 60  # for workers to close their runs after Ctrl-C, before they are killed
PR_SET_PDEATHSIG = 1


def say(line: str) -> None:
    """A line on stderr above the progress bar, if one shows, not through it."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


_threads = [os.cpu_count() or 1]  # this process's TensorFlow threads, as use_threads set them


def use_threads(count: int) -> None:
    """TensorFlow's thread pools for this process; before it runs any operation."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(count)
    tf.config.threading.set_inter_op_parallelism_threads(count)
    _threads[0] = count


def current_threads() -> int:
    return _threads[0]


def alive(pid: int) -> bool:
    """Whether process `pid` on this machine still runs (our own pid counts as gone: a RUNNING
    trial with it was left by this process before it replaced itself with exec)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return pid != os.getpid()


def die_with_parent() -> None:
    """In a child, before exec or before it imports its work: be killed if the process that started
    it dies, even by kill -9 (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: an orphaned worker finishes its trials and exits
        pass


class Workers:
    """N worker processes running `argv --worker I`, kept at N until they finish.

    `recover` runs after a worker died, before its replacement starts; `env(I)` is added to
    worker I's environment (the same for its replacements)."""

    def __init__(self, argv: list[str], count: int, recover: Callable[[int], None],
                 env: Callable[[int], dict[str, str]] | None = None,
                 gpus: Callable[[int], dict[str, str]] | None = None):
        self.argv, self.count, self.recover = argv, count, recover
        engine, devices = env or (lambda index: {}), gpus or (lambda index: {})
        self.env = lambda index: {**engine(index), **devices(index)}
        self.restarts_left = 3 * count  # a worker that keeps dying is a bug, not bad luck
        self.running: dict[int, subprocess.Popen] = {}

    def run(self, watch: Callable[[], None] | None = None) -> None:
        """Start the workers and wait for all of them, calling `watch` (the progress display) as
        they go and once at the end; raise if one cannot do its job."""
        say(f"{self.count} workers, {threads_per_worker(self.count)} TensorFlow thread(s) each")
        watch = watch or (lambda: None)
        try:
            for index in range(self.count):
                self._start(index)
            watched = time.monotonic()
            while self.running:
                time.sleep(0.5)
                self._reap()
                if time.monotonic() - watched >= WATCH_SECONDS:
                    watch()
                    watched = time.monotonic()
            watch()  # the last trials' lines
        except BaseException:
            self.stop()
            raise

    def _start(self, index: int) -> None:
        # --workers as well: a worker takes its share of the cores from it (argparse keeps the last).
        command = [sys.executable, "-m", "mnist_sweep", *self.argv, "--workers", str(self.count),
                   "--worker", str(index)]
        # Its own session: a Ctrl-C in the terminal reaches the sweep's process only, which
        # passes one SIGINT on to each worker (two could cut a worker's clean-up short).
        self.running[index] = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent,
                                               env={**os.environ, **self.env(index)})

    def _reap(self) -> None:
        for index, process in list(self.running.items()):
            code = process.poll()
            if code is None:
                continue
            del self.running[index]
            if code == 0:  # the study has its trials
                continue
            if code == USER_ERROR_EXIT:  # the worker said why
                raise UserError(f"worker {index} stopped with the error above")
            if code == CANNOT_GO_ON_EXIT:
                raise SweepCannotGoOn(f"worker {index} stopped: the search cannot go on (see above)")
            if self.restarts_left == 0:
                raise SweepCannotGoOn(f"workers keep dying (the last: worker {index}, exit {code}); "
                                      "see the errors above")
            self.restarts_left -= 1
            say(f"worker {index} (pid {process.pid}) ended with exit {code}; its trial is queued again "
                "and a new worker takes its place")
            self.recover(index)
            self._start(index)

    def stop(self) -> None:
        """Ask every worker to stop (their running trials are closed as killed), then wait."""
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for process in self.running.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
