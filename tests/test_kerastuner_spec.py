"""The Keras Tuner engine's declaration (engines/kerastuner_spec.py): its project records, its refusals,
its runs' tags."""

from __future__ import annotations

import pytest

from mnist_sweep.config import Settings
from mnist_sweep.engines.kerastuner_spec import KerasTunerSpec
from mnist_sweep.errors import UserError
from mnist_sweep.space import load_space


def test_a_study_is_held_by_its_projects_study_json_and_a_damaged_one_is_refused(tmp_path):
    spec, settings = KerasTunerSpec(), Settings(engine="kerastuner", storage=str(tmp_path), study_name="s")
    assert not spec.holds_study(settings)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.json").write_text('{"tuner": "random"}')
    assert spec.holds_study(settings)
    for damaged in (bytes(range(256)), b"[1, 2]", b'"a study"'):  # Keras Tuner raised on these after TensorFlow
        (tmp_path / "s" / "study.json").write_bytes(damaged)
        with pytest.raises(UserError, match="study.json: not a study of mnist_sweep"):
            spec.holds_study(settings)


def test_a_sweep_its_tuner_cannot_run_is_refused_before_tensorflow(tmp_path):
    spec, space = KerasTunerSpec(), load_space("mlp")
    settings = Settings(engine="kerastuner", tuner="random", storage=str(tmp_path), study_name="s")
    spec.check_sweep(settings, space)
    with pytest.raises(UserError, match="the grid tuner needs a step on 'units'"):
        spec.check_sweep(Settings(engine="kerastuner", tuner="grid", storage=str(tmp_path), study_name="s"), space)
    with pytest.raises(UserError, match="'enqueue' is for the optuna engine"):
        spec.check_sweep(Settings(engine="kerastuner", tuner="random", storage=str(tmp_path), study_name="s",
                                  enqueue={"mine": {"n_layers": 1}}), space)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "study.json").write_bytes(b"\xff")  # resumed onto a damaged project
    with pytest.raises(UserError, match="not a study of mnist_sweep"):
        spec.check_sweep(settings, space)


@pytest.mark.parametrize("tuner, pruner", [("hyperband", "hyperband"), ("bayesian", "none"), ("random", "none"),
                                           ("grid", "none")])
def test_its_runs_are_tagged_with_the_tuner_as_sampler_and_only_hyperband_as_pruner(tuner, pruner):
    # The same tag keys as the Optuna engine's runs: MLflow searches and the report compare both engines on them.
    settings = Settings(engine="kerastuner", tuner=tuner)
    assert KerasTunerSpec().tags(settings) == {"sampler": tuner, "pruner": pruner}
    assert settings.study == f"mlp-kt-{tuner}"  # one default study per tuner: another oracle would not resume it
