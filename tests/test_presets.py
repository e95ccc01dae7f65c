import pytest

from mnist_sweep.errors import UserError
from mnist_sweep.models import build_model
from mnist_sweep.presets import load_presets, select, warm_start
from mnist_sweep.space import load_space

PRESETS = load_presets()


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_builds_its_model(preset):
    model = build_model(preset.model, preset.params)
    assert model.output_shape == (None, 10)


def test_every_notebook_is_there_with_what_it_reported():
    assert sorted({p.notebook for p in PRESETS}) == ["000", "001", "002", "003", "004"]
    assert len([p for p in PRESETS if p.notebook == "000"]) == 6
    assert {p.name: p.reported for p in PRESETS}["nb003-cnn-32-64-64"] == 0.992


def test_presets_fit_the_spaces_that_cover_them():
    mlp, cnn = load_space("mlp"), load_space("cnn")
    fitting = {p.name for p in PRESETS if p.fits(mlp)}
    assert fitting == {p.name for p in PRESETS if p.notebook in ("000", "002")}  # 004 runs 50 epochs
    # Both CNN notebooks, exactly: padding, pooling per block, widths, optimizer, batch and epochs.
    assert [p.name for p in PRESETS if p.fits(cnn)] == ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64"]


def test_a_point_outside_the_space_is_not_contained():
    mlp = load_space("mlp")
    point = dict(select(PRESETS, "nb002-mlp-32-64")[0].params)
    assert mlp.contains(point)
    assert not mlp.contains({**point, "units_l1": 2048})  # out of range
    assert not mlp.contains({**point, "momentum": 0.9})  # a name the space does not have
    assert not mlp.contains({k: v for k, v in point.items() if k != "dropout_l1"})  # layer 1 incomplete


def test_unknown_preset_is_refused_with_the_known_names():
    with pytest.raises(UserError, match="unknown preset 'nb9'; choose one of: nb000-mlp-32"):
        select(PRESETS, "nb9")


def test_the_warm_start_takes_the_presets_the_space_holds_capped_as_every_trial_is():
    cnn = load_space("cnn").with_max_epochs(1)
    chosen = warm_start(tuple(PRESETS), cnn, max_epochs=1, trials=50)
    assert [p.name for p in chosen] == ["nb001-cnn-annealed-augmented", "nb003-cnn-32-64-64"]
    assert all(p.params["epochs"] == 1 for p in chosen)
    assert [p.name for p in warm_start(tuple(PRESETS), cnn, max_epochs=1, trials=1)] == [chosen[0].name]
    mlp = load_space("mlp").with_max_epochs(30)
    assert "nb004-mlp-300-300" not in [p.name for p in warm_start(tuple(PRESETS), mlp, None, 50)]  # its 50 epochs
    assert "nb004-mlp-300-300" in [p.name for p in warm_start(tuple(PRESETS), mlp, 30, 50)]  # cut to 30


def test_under_hyperband_a_preset_is_judged_at_the_epochs_the_oracle_sets():
    mlp = load_space("mlp")
    at_own = [p.name for p in warm_start(tuple(PRESETS), mlp, max_epochs=None, trials=50)]
    at_max = warm_start(tuple(PRESETS), mlp, max_epochs=None, trials=50, epochs=mlp.max_epochs())
    assert "nb004-mlp-300-300" not in at_own  # its 50 epochs are outside the space
    assert [p.name for p in at_max] == [*at_own, "nb004-mlp-300-300"]  # Hyperband trains it 30 at most
    assert [p.params for p in at_max] == [p.params for p in PRESETS if p.name in {*at_own, "nb004-mlp-300-300"}]
