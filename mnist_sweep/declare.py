"""What a setting's declaration says, and how its flag, its sweep-file value and its environment
variable are read from it.

Each setting is declared once, as a field of `config.Settings` made by `setting(...)`: its type (the
field's annotation), default, bounds or choices, help, flag, environment variable, owner and what a
study records of it. The CLI adds the flags, `config` checks every value, and `studies` records a
study's settings from these declarations, so none of them spells a setting again. Pure Python: the
checks run, and `--help` answers, before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from enum import Enum
from types import NoneType, UnionType
from typing import Any

from mnist_sweep.errors import UserError
from mnist_sweep.files import shown

SWEEPS = "sweeps"  # in `flags_in`: every engine's sweep command (each engine's name is its command)


class Recorded(Enum):
    """What a study's record keeps of a setting (studies.StudySettings)."""

    CHECKED = "checked"            # a resumed study must be run with the same value: its trials stay comparable
    NOTED = "noted"                # kept, and free to change on resume
    NOTED_IF_SET = "noted if set"  # kept only when not its default, as the first versions stored it


CHECKED, NOTED, NOTED_IF_SET = Recorded.CHECKED, Recorded.NOTED, Recorded.NOTED_IF_SET  # the declarations' words


@dataclass(frozen=True)
class Setting:
    """One setting's declaration; `name`, `type` and `default` come from its field in Settings."""

    help: str | None            # its flag's help; None: the sweep's engine says it (`engine_help`)
    owner: str                  # the module that acts on it: where to read what it does
    flags_in: tuple[str, ...] = (SWEEPS,)  # the commands with its flag (none: the sweep file only)
    helps: Mapping[str, str] = field(default_factory=dict)  # another help in one command
    engine_help: str | None = None  # the EngineSpec attribute holding its help
    engine: str | None = None   # the one engine whose command takes it and whose studies record it
    env: str | None = None      # an environment variable beating the sweep file (config.PRECEDENCE)
    positive: bool = False
    least: int | None = None    # with `most`: a whole number in that range
    most: int | Callable[[], int] | None = None
    longest: int | None = None  # characters
    why: str = ""               # the reason for `most` or `longest`, said when a value is refused
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    flag_type: Callable[[str], Any] | None = None  # else one follows from the type and `positive`
    recorded: Recorded | None = None  # None: not in a study's record
    name: str = ""
    type: Any = None
    default: Any = None

    @property
    def flag(self) -> str:
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.type is bool and self.default else f"--{dashed}"

    def accepted(self) -> tuple[type, ...]:
        """The Python types a sweep file may give; a float setting takes a whole number too."""
        kinds = typing.get_args(self.type) if isinstance(self.type, UnionType) else (self.type,)
        kinds = tuple(typing.get_origin(k) or k for k in kinds if k is not NoneType)
        return (int, float) if kinds == (float,) else kinds

    def allowed(self) -> tuple[str, ...] | None:
        return self.choices() if callable(self.choices) else self.choices

    def upper(self) -> int | None:
        return self.most() if callable(self.most) else self.most

    def offered_in(self, command: str, sweep: bool) -> bool:
        """Whether `command` (a sweep command when `sweep`) takes its flag."""
        if self.engine is not None:
            return command == self.engine
        return command in self.flags_in or (sweep and SWEEPS in self.flags_in)

    def kept(self, value: Any) -> Any:
        """What a study's record keeps of `value` (None: nothing)."""
        return None if self.recorded == NOTED_IF_SET and value == self.default else value

    def add_flag(self, parser: argparse.ArgumentParser, help: str | None) -> None:
        if self.type is bool:  # on by default: its flag turns it off
            parser.add_argument(self.flag, dest=self.name, action="store_const", const=not self.default, help=help)
        else:
            choices = self.allowed() if isinstance(self.choices, tuple) else None
            parser.add_argument(self.flag, type=self._parse_flag(), choices=choices, help=help)

    def _parse_flag(self) -> Callable[[str], Any]:
        if self.flag_type is not None:
            return self.flag_type
        kinds = self.accepted()
        if float in kinds:
            return positive_float if self.positive else float
        if int in kinds:
            return positive_int if self.positive else int
        return str  # argparse's own default: the text as given

    def from_text(self, text: str) -> Any:
        """An environment variable's value: a number where the setting is one (else left for
        `check` to refuse by its type)."""
        for kind in (k for k in self.accepted() if k in (int, float)):
            try:
                return kind(text)
            except ValueError:
                continue
        return text

    def check(self, value: Any, source: str) -> None:
        """Refuse, naming `source` and the setting, a value of another type or out of its bounds."""
        kinds = self.accepted()
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise UserError(f"{source}: '{self.name}' must be {' or '.join(t.__name__ for t in kinds)}, "
                            f"not {value!r}")
        _check_kind(self.name, value, source)
        problem = self._out_of_bounds(value)
        if problem:
            raise UserError(f"{source}: {problem}")

    def _out_of_bounds(self, value: Any) -> str | None:
        key, most = self.name, self.upper()
        if most is not None and self.least is None and value > most:
            return f"'{key}' must be at most {most}, not {shown(repr(value))}: {self.why}"
        if self.longest is not None and not 0 < len(value) <= self.longest:
            return f"'{key}' must have 1 to {self.longest} characters ({self.why}), not {len(value)}"
        if self.positive and value <= 0:
            return f"'{key}' must be greater than 0 (got {value})"
        if self.least is not None and most is not None and not self.least <= value <= most:
            return f"'{key}' must be a whole number from {self.least} to {most} ({self.why}), not {value}"
        allowed = self.allowed()
        if allowed is not None and value not in allowed:
            return f"unknown {key} '{value}'; use one of: {', '.join(allowed)}"
        return None


def _check_kind(key: str, value: Any, source: str) -> None:
    """What a type allows and nothing downstream takes: NaN, inf, NUL."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite(value):
        # YAML's .nan passed every `<= 0` test; .inf or 10**400 seconds failed only in the workers' clock
        raise UserError(f"{source}: '{key}' must be a finite number, not {shown(repr(value))}; "
                        "leave it out for none")
    if isinstance(value, str) and "\0" in value:  # a C string ends there: each store would read another name
        raise UserError(f"{source}: '{key}' holds a NUL byte ({shown(value)})")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int no float can hold
        return False


def setting(default: Any, help: str | None, owner: str, **declared: Any) -> Any:
    """A field of Settings carrying its declaration (typed Any, as dataclasses.field is)."""
    made: Field[Any] = field(default=default, metadata={"setting": Setting(help, owner, **declared)})
    return made


def declarations(cls: type) -> tuple[Setting, ...]:
    """The declarations of `cls`'s fields, in their order, with their names, types and defaults."""
    hints = typing.get_type_hints(cls)
    return tuple(replace(f.metadata["setting"], name=f.name, type=hints[f.name], default=f.default)
                 for f in fields(cls))


def positive_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number greater than 0, not '{text}'")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, not '{text}'")
    if not math.isfinite(value):  # no limit is the flag left out; inf broke what it limits, later
        raise argparse.ArgumentTypeError(f"must be finite (leave the flag out for no limit), not '{text}'")
    return value
