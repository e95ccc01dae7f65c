"""Keras Tuner's chief (engines/kerastuner_chief.py), with the tuner and the worker processes faked:
what each worker is told, what a dead worker's trial becomes, and a chief that never serves."""

from __future__ import annotations

import os
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from mnist_sweep.engines import kerastuner_chief
from mnist_sweep.errors import SweepCannotGoOn

NAMES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


class Tuner:
    """A tuner whose `search`, like Keras Tuner's chief, serves on the address its environment names;
    worker 1 (tuner1) is running trial 7."""

    def __init__(self):
        self.seen: dict[str, str | None] = {}
        self.done = threading.Event()
        self.oracle = SimpleNamespace(ongoing_trials={"tuner1": SimpleNamespace(trial_id="7")})
        self.runner = SimpleNamespace(tracker="tracker", parent_id="parent")
        self.project = "project"

    def search(self, verbose: int) -> None:
        self.seen = {name: os.environ.get(name) for name in NAMES}
        with socket.create_server((self.seen["KERASTUNER_ORACLE_IP"], int(self.seen["KERASTUNER_ORACLE_PORT"]))):
            self.done.wait(30)


@pytest.fixture
def faked(monkeypatch) -> list[set[int]]:
    """Returns the trials whose runs the chief failed, as the recovery was asked."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    failed: list[set[int]] = []
    monkeypatch.setattr(kerastuner_chief, "fail_runs_of_trials_run_again",
                        lambda oracle, tracker, parent, again: failed.append(again))
    return failed


def test_each_worker_finds_the_chief_under_its_own_id_and_a_dead_workers_trial_is_failed_for_its_replacement(
        faked):
    tuner = Tuner()
    try:
        with kerastuner_chief.serving_workers(tuner) as care:  # the skeleton runs the workers meanwhile
            envs = [care.env(index) for index in range(2)]
            care.recover(1)  # worker 1 died
    finally:
        tuner.done.set()
    port = tuner.seen["KERASTUNER_ORACLE_PORT"]
    assert tuner.seen == {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                          "KERASTUNER_ORACLE_PORT": port}
    assert envs == [{"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port,
                     "KERASTUNER_TUNER_ID": f"tuner{index}"} for index in range(2)]
    assert faked == [{7}]  # worker 1's trial: its run failed, Keras Tuner hands it to the replacement
    assert not any(name in os.environ for name in NAMES)  # this process is not left calling itself the chief


def test_a_chief_that_never_serves_stops_the_sweep_at_once_before_any_worker_starts(faked):
    class Broken(Tuner):
        def search(self, verbose: int) -> None:  # Keras Tuner's chief ended before serving (the port taken)
            return

    began, served = time.monotonic(), []
    with pytest.raises(SweepCannotGoOn, match="did not start serving"), kerastuner_chief.serving_workers(Broken()):
        served.append("workers")
    assert time.monotonic() - began < 10 and served == []  # not Keras Tuner's hour of waiting
