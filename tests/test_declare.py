"""A setting's declaration (declare.py): what its type and bounds make of a flag, an environment
variable and a sweep file's value, tried on settings made up here, not on the project's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from mnist_sweep.declare import SWEEPS, declarations, positive_float, positive_int, setting
from mnist_sweep.errors import UserError


@dataclass(frozen=True)
class Made:
    count: int | None = setting(None, "how many", "here", positive=True, most=9, why="nine at most")
    rate: float = setting(0.5, "how fast", "here", positive=True)
    colour: str = setting("red", "which colour", "here", flags_in=("paint",), choices=("red", "blue"))
    loud: bool = setting(True, "be quiet", "here")


COUNT, RATE, COLOUR, LOUD = declarations(Made)


def test_a_declaration_takes_its_name_type_and_default_from_its_field():
    assert (COUNT.name, COUNT.type, COUNT.default) == ("count", int | None, None)
    assert RATE.accepted() == (int, float) and COUNT.accepted() == (int,) and LOUD.accepted() == (bool,)


def test_its_flag_follows_from_its_type_and_bounds():
    parser = argparse.ArgumentParser()
    for s in (COUNT, RATE, COLOUR, LOUD):
        s.add_flag(parser, s.help)
    args = parser.parse_args(["--count", "3", "--rate", "2", "--colour", "blue", "--no-loud"])
    assert (args.count, args.rate, args.colour, args.loud) == (3, 2.0, "blue", False)
    assert parser.parse_args([]).loud is None  # left out: the sweep file or the default decides
    with pytest.raises(SystemExit):
        parser.parse_args(["--colour", "green"])
    assert COLOUR.offered_in("paint", sweep=False) and not COLOUR.offered_in("optuna", sweep=True)
    assert COUNT.flags_in == (SWEEPS,) and COUNT.offered_in("optuna", sweep=True)


@pytest.mark.parametrize("value, said", [
    (True, "'count' must be int, not True"), (2.0, "'count' must be int, not 2.0"),
    (0, "'count' must be greater than 0 (got 0)"), (10, "'count' must be at most 9, not 10: nine at most"),
    (10**400, "'count' must be a finite number"),
])
def test_a_value_out_of_its_type_or_bounds_is_refused_naming_source_and_setting(value, said):
    with pytest.raises(UserError, match="^file.yaml: " + said.replace("(", r"\(").replace(")", r"\)")):
        COUNT.check(value, "file.yaml")


def test_an_environment_value_is_read_as_its_settings_type():
    assert (COUNT.from_text("4"), RATE.from_text("1.5"), COLOUR.from_text("blue")) == (4, 1.5, "blue")
    with pytest.raises(UserError, match="'count' must be int, not '4x'"):
        COUNT.check(COUNT.from_text("4x"), "environment")


def test_the_flag_readers_refuse_what_no_setting_takes():
    assert (positive_int("3"), positive_float("0.5")) == (3, 0.5)
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="must be finite"):
        positive_float("inf")
