"""The memory budget: when a sweep process replaces itself, and with what command."""

from __future__ import annotations

import pathlib
import sys

import pytest

from mnist_sweep.runtime import memory
from mnist_sweep.errors import Recycle
from mnist_sweep.runtime.memory import MemoryBudget, restart_command


def test_the_budget_counts_growth_from_after_the_first_trial(monkeypatch):
    sizes = iter([900.0, 1000.0, 1040.0, 1100.0])  # the first trial's own 100 MB are not growth
    monkeypatch.setattr(memory, "resident_mb", lambda: next(sizes))
    budget = MemoryBudget(growth_mb=150)
    budget.after_trial()
    budget.after_trial()
    budget.after_trial()
    with pytest.raises(Recycle, match="from 900 MB .* to 1100 MB after its trial 4"):
        budget.after_trial()


def test_resident_memory_is_measured_where_there_is_no_proc_file_system(monkeypatch):
    """macOS and Windows have no /proc: a size of 0 there turned the budget silently off."""
    read = pathlib.Path.read_text

    def without_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return read(path, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", without_proc)
    ballast = bytearray(64 * 2**20)  # a process this test sees grow
    assert memory.resident_mb() > 64
    del ballast


def test_the_fresh_process_runs_the_same_command_whose_time_counts_from_the_first_start():
    # Its --timeout and `minutes` count from the process's creation, which os.execv keeps (cli._started).
    command = restart_command(["optuna", "--trials", "50", "--timeout", "300"])
    assert command == [sys.executable, "-m", "mnist_sweep", "optuna", "--trials", "50", "--timeout", "300"]


def test_a_caller_of_main_gets_an_exit_code_instead_of_having_its_process_replaced(monkeypatch, capsys):
    from mnist_sweep import cli, commands

    def grown(settings, args):
        raise Recycle(900, 1100, 7)

    monkeypatch.setattr(commands, "sweep", grown)
    assert cli.main(["optuna", "--trials", "3"]) == cli.RECYCLE_EXIT
    assert "continue with: python -m mnist_sweep optuna --trials 3" in capsys.readouterr().err
