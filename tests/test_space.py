from pathlib import Path

import optuna
import pytest
import yaml

from mnist_sweep.errors import UserError
from mnist_sweep.space import load_space, parse_space

REPO = Path(__file__).resolve().parent.parent
BASE = {
    "n_layers": {"type": "int", "low": 1, "high": 3},
    "units": {"type": "int", "low": 16, "high": 1024, "log": True, "per_layer": "n_layers"},
    "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "batch_size": 64,
    "epochs": {"type": "int", "low": 3, "high": 20},
}


def write_space(tmp_path: Path, **changes) -> Path:
    params = {**BASE, **changes}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"model": "mlp", "parameters": params}))
    return path


SPACE_FILES = sorted(p for p in (REPO / "search_spaces").glob("*.yaml") if p.name != "presets.yaml")


@pytest.mark.parametrize("path", SPACE_FILES, ids=lambda p: p.name)
def test_every_space_file_loads_and_samples(path):
    space = load_space(str(path))
    values = space.sample(optuna.create_study().ask())
    assert {"optimizer", "learning_rate", "batch_size", "epochs"} <= set(values)


def test_per_layer_parameters_exist_only_for_layers_the_trial_has():
    space = load_space("mlp")
    fixed = {"n_layers": 1, "units_l0": 64, "dropout_l0": 0.1, "optimizer": "adam",
             "learning_rate": 1e-3, "batch_size": 64, "epochs": 3, "schedule": "constant", "anneal": False,
             "label_smoothing": 0.0, "ema": False, "augment": False,
             "early_stopping": False}
    values = space.sample(optuna.trial.FixedTrial(fixed))
    assert values == fixed  # no units_l1 / dropout_l1 for a one-layer trial


def test_sampled_values_stay_inside_the_declared_ranges():
    space = load_space("mlp")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        values = space.sample(study.ask())
        units = [values[f"units_l{i}"] for i in range(values["n_layers"])]
        assert all(16 <= u <= 1024 for u in units)
        assert 1e-4 <= values["learning_rate"] <= 1e-2
        assert values["optimizer"] in ("rmsprop", "adam")


@pytest.mark.parametrize("changes, expected", [
    ({"n_layers": {"type": "int", "low": 4, "high": 2}}, "'n_layers': low (4) > high (2)"),
    ({"learning_rate": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
     "'learning_rate': log scale needs low > 0"),
    ({"optimizer": {"type": "categorical", "choices": []}}, "'optimizer': 'choices' must be a non-empty list"),
    ({"optimizer": {"type": "categorical", "choices": ["adam", "adamm"]}}, "unknown optimizer 'adamm'"),
    ({"reduction": {"type": "categorical", "choices": ["max", "avg"]}},
     "unknown reduction 'avg'; use one of: max, strided"),
    ({"units": {"type": "int", "low": 16, "high": 64, "per_layr": "n_layers"}}, "'units': unknown key 'per_layr'"),
    ({"epochs": {"type": "integer", "low": 1, "high": 3}}, "'epochs': type 'integer' is not known"),
    ({"epochs": {"type": "int", "low": "three", "high": 5}}, "'epochs': 'low' must be a number"),
    ({"epochs": {"type": "int", "low": 1.5, "high": 5}}, "'low' must be a whole number"),
    ({"units": {"type": "int", "low": 16, "high": 64, "per_layer": "layers"}}, "per_layer 'layers' must name"),
])
def test_impossible_spaces_are_refused_naming_file_and_parameter(tmp_path, changes, expected):
    path = write_space(tmp_path, **changes)
    with pytest.raises(UserError) as err:
        load_space(str(path))
    assert str(path) in str(err.value) and expected in str(err.value)


def test_missing_required_parameter_and_unknown_model_are_refused():
    with pytest.raises(UserError, match="needs parameter 'epochs'"):
        parse_space({"model": "mlp", "parameters": {k: v for k, v in BASE.items() if k != "epochs"}})
    with pytest.raises(UserError, match="model 'rnn' is not known"):
        parse_space({"model": "rnn", "parameters": BASE})


@pytest.mark.parametrize("text, expected", [
    ("model: mlp\nparameters: {n_layers: [1, 2\n", "invalid YAML at line"),
    ("model: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_malformed_yaml_is_refused_with_the_file_name(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_space(str(path))
    assert str(path) in str(err.value) and expected in str(err.value)


def test_unknown_space_name_lists_the_known_ones():
    with pytest.raises(UserError, match="choose one of: .*mlp"):
        load_space("no-such-space")


def test_max_epochs_caps_the_range_and_changes_the_fingerprint():
    space = load_space("mlp")
    capped = space.with_max_epochs(2)
    epochs = capped.get("epochs")
    assert (epochs.low, epochs.high) == (2, 2)
    assert capped.fingerprint() != space.fingerprint()
    assert space.with_max_epochs(None) is space


def test_a_number_written_without_a_dot_is_still_a_number(tmp_path):
    # YAML 1.1 reads `1e-4` as a string; a user writing it that way means a number.
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump({"model": "mlp", "parameters": BASE}).replace("0.0001", "1e-4"))
    assert load_space(str(path)).get("learning_rate").low == pytest.approx(1e-4)


def test_a_space_survives_a_round_trip_through_its_dict():
    space = load_space("mlp")
    again = parse_space(space.to_dict())
    assert again.params == space.params and again.fingerprint() == space.fingerprint()


def test_cnn_block_and_switch_parameters_exist_only_when_their_block_or_switch_does():
    space = load_space("cnn")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_blocks, seen_switches = set(), set()
    for _ in range(40):
        values = space.sample(study.ask())
        blocks = values["n_blocks"]
        for name in ("filters", "kernel", "convs", "block_dropout", "pool"):
            assert {k for k in values if k.startswith(f"{name}_l")} == {f"{name}_l{i}" for i in range(blocks)}
        # The space of the CNN sweep since it holds both notebooks: anneal exists with a flat rate only.
        assert ("anneal" in values) == (values["schedule"] == "constant") == ("warmup_epochs" not in values)
        annealed = values.get("anneal", False)
        assert ("anneal_factor" in values) == annealed == ("anneal_patience" in values)
        assert ("rotation" in values) == values["augment"] == ("shift" in values)
        seen_blocks.add(blocks)
        seen_switches.add((annealed, values["augment"]))
    assert seen_blocks == {2, 3} and len(seen_switches) == 4
