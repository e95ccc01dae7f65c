"""The study's lock: one process at a time prepares a study or runs its final step."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from mnist_sweep.runtime.locks import exclusive


def hold_while_another_waits(storage: str, capsys) -> list[str]:
    """Take the lock, start a second taker in a thread, and record who had it when."""
    events: list[str] = []

    def second() -> None:
        with exclusive(storage, "s"):
            events.append("second in")

    with exclusive(storage, "s"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # long enough for the second to reach the lock and say it waits
        events.append("first out")
    thread.join(timeout=30)
    assert "study 's': waiting for another process" in capsys.readouterr().err
    return events


def test_a_second_process_waits_for_the_journal_lock_and_leaves_optunas_own_lock_alone(tmp_path, capsys):
    journal = str(tmp_path / "runs" / "optuna.journal")
    assert hold_while_another_waits(journal, capsys) == ["first out", "second in"]
    # Optuna's journal locks with "<file>.lock" itself: a file left there stalls its writers.
    assert not (tmp_path / "runs" / "optuna.journal.lock").exists()


def test_the_file_lock_works_where_python_has_no_fcntl(tmp_path):
    """Windows has no fcntl: importing the lock must not fail there, and the lock must still hold."""
    script = ("import sys; sys.modules['fcntl'] = None\n"  # as on Windows: `import fcntl` raises
              "import warnings; warnings.simplefilter('ignore')\n"
              "from mnist_sweep.runtime.locks import exclusive\n"
              f"with exclusive({str(tmp_path / 'optuna.journal')!r}, 's'): print('held')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0 and done.stdout == "held\n", done.stderr[-1000:]


def test_the_lock_of_one_study_on_postgresql_is_an_advisory_lock(capsys):
    url = os.environ.get("MNIST_SWEEP_POSTGRES")
    if not url:
        pytest.skip('no PostgreSQL; start it with eval "$(.ci/servers start)"')
    assert hold_while_another_waits(f"{url}/postgres", capsys) == ["first out", "second in"]
