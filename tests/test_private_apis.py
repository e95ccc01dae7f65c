"""Optuna and Keras Tuner through their public APIs: a private name breaks silently on an upgrade."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mnist_sweep"
PRIVATE = re.compile(r"\._storage\b|\._trial_id\b|\._retry_queue\b|keras_tuner\.src\b")


def test_no_private_name_of_optuna_or_keras_tuner_in_the_package():
    found = [f"{path.name}:{number}: {line.strip()}" for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if PRIVATE.search(line)]
    assert found == []
