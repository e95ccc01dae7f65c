"""The benchmark scripts run from a clean clone in their short form (CI's smoke run).

Their numbers are not asserted: speed is measured by the scripts, not by timed tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


def test_the_overhead_benchmark_runs_both_ways_and_writes_its_ratio(real_data, tmp_path):
    out = tmp_path / "overhead.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--data", str(real_data),
                           "--quick", "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["configurations"] >= 6 and len(result["plain_s"]) == len(result["framework_s"]) == 2
    assert result["ratio"] == pytest.approx(sum(result["framework_s"]) / sum(result["plain_s"]), abs=1e-4)
    assert "framework / plain =" in done.stdout


def test_the_memory_benchmark_reads_every_trials_memory_from_mlflow(real_data, tmp_path):
    out = tmp_path / "memory.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--data", str(real_data),
                           "--trials", "4", "--recycle-mb", "0.01", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = json.loads(out.read_text())["runs"]
    assert run["trials"] == 4 and run["recycles"] >= 1  # a budget this small recycles after trial 2
    assert 0 < run["rss_first_mb"] <= run["rss_max_mb"] <= run["peak_mb"] < 8 * 1024
