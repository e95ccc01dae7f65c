"""optuna-dashboard, as the README shows it, over the default store of a finished sweep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_end_to_end import QUICK, cli

pytestmark = pytest.mark.slow


def test_optuna_dashboard_reads_a_finished_study_from_the_default_journal(real_data, tmp_path):
    assert cli(tmp_path, "optuna", "--trials", "2", "--study-name", "dash", "--data", str(real_data), *QUICK,
               "--no-warm-start").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen([str(dashboard), "mlruns/optuna.journal", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        studies = _get(f"http://127.0.0.1:{port}/api/studies", server)["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == "dash"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", server)
        assert detail["objective_names"] == ["val_accuracy"]  # named, not "Objective 0"
        complete = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert len(complete) == 2 and all(t["values"][0] > 0.5 for t in complete)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _get(url: str, server: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not answer"
            time.sleep(1)
