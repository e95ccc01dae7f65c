"""The exceptions that end a command and the exit codes it ends with (errors.py)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from mnist_sweep import errors
from mnist_sweep.errors import UserError, require_extra


def test_a_missing_extra_is_one_user_error_naming_it(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match=r"needs optuna_integration.*mnist-sweep\[peer\]"):
        require_extra("optuna_integration", "peer", "the peer")


def test_an_installed_extra_is_only_looked_up_never_imported(tmp_path, monkeypatch):
    (tmp_path / "heavy_extra_probe.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    require_extra("heavy_extra_probe", "peer", "the peer")
    assert "heavy_extra_probe" not in sys.modules


def test_the_exit_codes_are_the_ones_shells_and_supervisors_read():
    assert errors.INTERRUPTED_EXIT == 128 + signal.SIGINT and errors.TERMINATED_EXIT == 128 + signal.SIGTERM
    assert errors.RECYCLE_EXIT == os.EX_TEMPFAIL  # "try again": a supervisor runs the same command
    assert errors.USER_ERROR_EXIT == 2  # as argparse's own usage errors
    codes = [errors.USER_ERROR_EXIT, errors.CANNOT_GO_ON_EXIT, errors.RECYCLE_EXIT, errors.INTERRUPTED_EXIT,
             errors.TERMINATED_EXIT]
    assert len(set(codes)) == len(codes) and 0 not in codes and 1 not in codes  # 1: Python's own traceback
