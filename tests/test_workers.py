"""Worker processes (runtime/workers.py), with their processes faked: started, watched, replaced, stopped."""

from __future__ import annotations

import signal

import pytest

from mnist_sweep.errors import USER_ERROR_EXIT, SweepCannotGoOn, UserError
from mnist_sweep.runtime import workers


def test_each_worker_process_starts_with_its_device(monkeypatch):
    started = []
    monkeypatch.setattr(workers.subprocess, "Popen", lambda command, **kw: started.append((command, kw["env"])))
    pool = workers.Workers(["optuna"], 2, lambda index: None, env=lambda i: {"ENGINE": str(i)},
                           gpus=lambda i: {"CUDA_VISIBLE_DEVICES": str(i)})
    for index in range(2):
        pool._start(index)
    for index, (command, env) in enumerate(started):
        assert env["CUDA_VISIBLE_DEVICES"] == env["ENGINE"] == str(index)
        assert command[-4:] == ["--workers", "2", "--worker", str(index)]


class Finishing:
    """A worker process that ends well after a few polls."""

    pid = 1

    def __init__(self, *args, **kwargs):
        self.polls = 3

    def poll(self) -> int | None:
        self.polls -= 1
        return 0 if self.polls <= 0 else None


def test_workers_are_watched_while_they_run_and_once_at_the_end(monkeypatch):
    monkeypatch.setattr(workers.subprocess, "Popen", Finishing)
    monkeypatch.setattr(workers.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(workers, "WATCH_SECONDS", 0)
    looks = []
    workers.Workers(["optuna"], 2, lambda index: None).run(lambda: looks.append(1))
    assert len(looks) == 4  # after each of the three polls, and after the last worker ended


class Scripted:
    """Worker processes that exit, at their first look, with the codes given in the order they start
    (None: runs until stopped); a process more than the script has fails the test, as one that runs too long."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, codes: list[int | None], events: list[str]):
        self.codes, self.events, self.started = codes, events, []
        monkeypatch.setattr(workers.subprocess, "Popen", self.start)
        monkeypatch.setattr(workers.time, "sleep", lambda seconds: None)

    def start(self, command, **kwargs):
        assert len(self.started) < len(self.codes), f"worker {command[-1]} started once too often"
        process = Process(self.codes[len(self.started)], 100 + len(self.started))
        self.started.append(process)
        self.events.append(f"start {command[-1]}")
        return process


class Process:
    def __init__(self, code: int | None, pid: int):
        self.code, self.pid, self.signals, self.polls = code, pid, [], 0

    def poll(self) -> int | None:
        self.polls += 1
        assert self.polls < 100, "a worker never ended"
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.code = -sig

    def wait(self, timeout: float | None = None) -> int | None:
        return self.code


def test_a_worker_that_dies_is_replaced_after_its_trial_is_recovered(monkeypatch):
    events = []
    Scripted(monkeypatch, [-9, 0, 0], events)  # worker 0 killed, then worker 1 and 0's replacement finish
    workers.Workers(["optuna"], 2, lambda index: events.append(f"recover {index}")).run()
    assert events == ["start 0", "start 1", "recover 0", "start 0"]


def test_a_worker_stopped_by_bad_input_stops_the_sweep_and_the_other_workers(monkeypatch):
    scripted = Scripted(monkeypatch, [USER_ERROR_EXIT, None], [])  # worker 1 would run on
    with pytest.raises(UserError, match="worker 0 stopped with the error above"):
        workers.Workers(["optuna"], 2, lambda index: None).run()
    assert len(scripted.started) == 2  # not replaced: a new worker would say the same
    assert scripted.started[1].signals == [signal.SIGINT]  # asked to close its trial's run, not killed


def test_a_worker_that_keeps_dying_stops_the_sweep_after_three_replacements(monkeypatch):
    scripted = Scripted(monkeypatch, [1, 1, 1, 1], [])
    with pytest.raises(SweepCannotGoOn, match="workers keep dying"):
        workers.Workers(["optuna"], 1, lambda index: None).run()
    assert len(scripted.started) == 4
