"""The test set is read by the final step alone: no trial of either engine ever touches it."""

from __future__ import annotations

import argparse
import time
import traceback
from dataclasses import replace

import numpy as np
import pytest

from mnist_sweep import commands
from mnist_sweep.checks import sweep_inputs
from mnist_sweep.config import Settings


class Tripwire(np.ndarray):
    """An array that records, for every read, whether the final step was on the stack."""

    reads: list[bool] = []

    def _note(self) -> None:
        Tripwire.reads.append(any(f.filename.endswith("mnist_sweep/final.py") for f in traceback.extract_stack()))

    def __getitem__(self, key):
        self._note()
        return np.asarray(self)[key]

    def astype(self, *args, **kwargs):
        self._note()
        return np.asarray(self).astype(*args, **kwargs)

    def __array__(self, *args, **kwargs):
        self._note()
        return np.asarray(self.view(np.ndarray), *args, **kwargs)


@pytest.mark.parametrize("engine", ["optuna", "kerastuner"])
def test_no_trial_reads_the_test_images(engine, tiny_mnist, tmp_path, monkeypatch):
    wired = replace(tiny_mnist, x_test=tiny_mnist.x_test.view(Tripwire), y_test=tiny_mnist.y_test.view(Tripwire))
    monkeypatch.setattr(commands, "load_mnist", lambda path: wired)
    Tripwire.reads = []
    settings = Settings(engine=engine, tuner="random", sampler="random", pruner="none", trials=2, workers=1,
                        validation_size=60, max_epochs=1, warm_start=False, study_name="guard",
                        storage=str(tmp_path / "kt") if engine == "kerastuner" else f"sqlite:///{tmp_path}/o.db",
                        tracking_uri=f"sqlite:///{tmp_path}/m.db", export_dir=str(tmp_path / "export"))
    run = commands.sweep  # the engine is the settings'
    # One process: the tripwire is in this one.
    args = argparse.Namespace(worker=None, argv=[], started=time.time(), inputs=sweep_inputs(settings))
    assert run(settings, args) == 0
    assert Tripwire.reads, "the final step must read the test set, or this guard tests nothing"
    assert all(Tripwire.reads), "the test images were read outside the final step"
