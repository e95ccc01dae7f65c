"""The checks before TensorFlow loads hand a sweep its space and presets, read once."""

from __future__ import annotations

from mnist_sweep.checks import sweep_inputs
from mnist_sweep.config import Settings
from mnist_sweep.presets import load_presets


def test_a_sweep_gets_its_space_capped_and_the_presets_unless_the_warm_start_is_off():
    inputs = sweep_inputs(Settings(space="cnn", max_epochs=4))
    assert inputs.space.model == "cnn" and inputs.space.max_epochs() == 4
    assert [p.name for p in inputs.presets] == [p.name for p in load_presets()]
    assert sweep_inputs(Settings(space="cnn", warm_start=False)).presets == ()
