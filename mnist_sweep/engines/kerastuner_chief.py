"""Keras Tuner's distributed mode, the chief's side: this process holds the oracle and serves it
over gRPC on 127.0.0.1 (Keras Tuner's own chief, in a thread), and N worker processes, started and
replaced by the sweep's skeleton (engines/base.py), run the trials it hands out, each told where
the chief is by KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT. A worker killed mid-trial is
replaced under the same tuner id, and Keras Tuner hands the replacement the same trial again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

from mnist_sweep.engines.base import WorkerCare
from mnist_sweep.engines.kerastuner_recovery import fail_runs_of_trials_run_again
from mnist_sweep.engines.kerastuner_tuner import SweepTuner
from mnist_sweep.errors import SweepCannotGoOn

CHIEF = "127.0.0.1"


@contextlib.contextmanager
def serving_workers(tuner: SweepTuner) -> Iterator[WorkerCare]:
    """Serve the oracle, as Keras Tuner's chief, to the worker processes run meanwhile: each finds
    it through the environment the care gives it.

    Keras Tuner's own chief: search() with KERASTUNER_TUNER_ID=chief serves the oracle on gRPC and
    blocks until every worker has been told to stop (after its time is up, never). So it serves from
    a daemon thread, and this one starts, waits for and replaces the workers (engines/base.py)."""
    port = _free_port()
    env = {"KERASTUNER_ORACLE_IP": CHIEF, "KERASTUNER_ORACLE_PORT": str(port)}
    with _environment({**env, "KERASTUNER_TUNER_ID": "chief"}):  # read once, as the chief starts
        chief = threading.Thread(target=tuner.search, kwargs={"verbose": 0}, name="keras-tuner-chief", daemon=True)
        chief.start()
        _wait_for_chief(chief, port)

    def recover(index: int) -> None:  # the replacement gets the dead worker's trial again
        again = tuner.oracle.ongoing_trials.get(_tuner_id(index))
        fail_runs_of_trials_run_again(tuner.oracle, tuner.runner.tracker, tuner.runner.parent_id,
                                      {int(again.trial_id)} if again else set())

    yield WorkerCare(recover, env=lambda index: {**env, "KERASTUNER_TUNER_ID": _tuner_id(index)})


def _free_port() -> int:
    """A port for the chief: Keras Tuner binds the one it is given (port 0 would not tell workers)."""
    with socket.socket() as probe:
        probe.bind((CHIEF, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wait_for_chief(chief: threading.Thread, port: int, seconds: float = 60) -> None:
    """Until the chief answers on its port: a worker started before would wait for it, but a chief
    that failed to start would leave the workers waiting for an hour (Keras Tuner's client timeout)."""
    deadline = time.monotonic() + seconds
    while chief.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((CHIEF, port), timeout=1):
            return
        time.sleep(0.05)
    raise SweepCannotGoOn(f"Keras Tuner's chief did not start serving on {CHIEF}:{port}; see the error above")


def _tuner_id(index: int) -> str:
    return f"tuner{index}"
