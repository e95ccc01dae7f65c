"""A stopped command exits as shells report a signal: 130 for Ctrl-C, 143 for `kill` (SIGTERM)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import SimpleNamespace

import pytest

import mnist_sweep
from mnist_sweep import cli
from mnist_sweep.config import Settings
from mnist_sweep.runtime import signals


@pytest.fixture
def stopped_by(monkeypatch):
    """The CLI with a report command that is sent `signum` in the middle of its work (no TensorFlow)."""
    monkeypatch.setattr(signals, "_requested", threading.Event())  # this test's stop only
    monkeypatch.setattr(signals, "_last", [signal.SIGINT], raising=False)
    monkeypatch.setattr(cli, "_settings", lambda args: Settings())
    monkeypatch.setattr(cli, "before_data", lambda *args: None)
    monkeypatch.setattr(cli, "load_tensorflow", lambda: None)

    def report(settings, args):
        os.kill(os.getpid(), report.signum)
        time.sleep(5)  # the handler interrupts this at once
        return 0

    commands = SimpleNamespace(sweep=None, final=None, export=None, baselines=None, predict=None, report=report)
    monkeypatch.setitem(sys.modules, "mnist_sweep.commands", commands)
    monkeypatch.setattr(mnist_sweep, "commands", commands, raising=False)

    def run(signum: int) -> int:
        report.signum = signum
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return cli.main(["report"])
        finally:  # install() replaced pytest's own handlers
            for s, handler in handlers.items():
                signal.signal(s, handler)
    return run


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "kill"])
def test_a_stopped_command_exits_128_plus_the_signal(stopped_by, signum, code, capsys):
    assert stopped_by(signum) == code
    assert "interrupted; resume with: python -m mnist_sweep report" in capsys.readouterr().err
