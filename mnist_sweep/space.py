"""Search spaces: typed parameters read from search_spaces/*.yaml. Pure Python, no TensorFlow.

A parameter is sampled through any object with Optuna's three `suggest_*` methods, so an
Optuna trial drives a space directly and other engines only need a small adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from mnist_sweep.errors import UserError
from mnist_sweep.files import find_file, read_yaml

MODELS = ("mlp", "cnn")
OPTIMIZERS = ("adam", "rmsprop", "sgd", "nadam", "adamw")
REDUCTIONS = ("max", "strided")  # how a CNN block halves its image: 2x2 max pooling, or a 5x5 stride-2 convolution
# What a builder cannot do without; everything else has a default in models.py.
_TRAINING = ("optimizer", "learning_rate", "batch_size", "epochs")
REQUIRED = {"mlp": ("n_layers", "units", *_TRAINING), "cnn": ("n_blocks", "filters", "dense_units", *_TRAINING)}
KINDS = ("int", "float", "categorical")
# Whole numbers a builder reads, and the range a model on a CPU can be built from: a count of
# 1.5 or a width of 1e11 would fail trial after trial, so they are refused when the space loads.
WHOLE = {"n_layers": (1, 8), "units": (1, 8192), "n_blocks": (1, 5), "filters": (1, 1024), "kernel": (1, 9),
         "convs": (1, 4), "dense_units": (1, 8192), "batch_size": (1, 60000), "epochs": (1, 1000),
         "anneal_patience": (1, 100), "patience": (1, 100), "warmup_epochs": (0, 100)}
NUMBERS = {"dropout": (0.0, 0.99), "block_dropout": (0.0, 0.99), "dense_dropout": (0.0, 0.99),
           "label_smoothing": (0.0, 0.99), "zoom": (0.0, 1.0), "shift": (0.0, 1.0), "anneal_factor": (0.0, 1.0),
           "anneal_min_lr": (0.0, 10.0), "rotation": (0.0, 180.0)}
_KEYS = {
    "int": {"type", "low", "high", "log", "step", "per_layer", "when"},
    "float": {"type", "low", "high", "log", "step", "per_layer", "when"},
    "categorical": {"type", "choices", "per_layer", "when"},
}


class Bound(Protocol):
    """A limit on an int parameter's range that depends on the values sampled before it (costs.py)."""

    def highest(self, param: Param, name: str, values: dict[str, Any]) -> int: ...


class Suggester(Protocol):
    """What a space samples through: an Optuna trial, or an adapter with the same methods."""

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: list) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One entry of a space; `per_layer` repeats it once per layer, `when` makes it conditional."""

    name: str
    kind: str  # int | float | categorical | fixed
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    value: Any = None
    per_layer: str | None = None
    when: dict = field(default_factory=dict)

    def active(self, values: dict) -> bool:
        return all(values.get(key) == want for key, want in self.when.items())

    def names(self, values: dict) -> list[str]:
        if self.per_layer is None:
            return [self.name]
        return [f"{self.name}_l{i}" for i in range(values[self.per_layer])]

    def allows(self, value: Any) -> bool:
        if self.kind == "categorical":  # 1 is not True here: the type is part of the choice
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.kind == "fixed":
            return value == self.value
        low, high = self.bounds()
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = self.kind == "float" or (number and value == int(value))
        return number and whole and low <= value <= high

    def bounds(self) -> tuple[float, float]:
        """An int or float range's low and high (whole numbers for an int one): the other kinds have none."""
        assert self.low is not None and self.high is not None, f"'{self.name}' is {self.kind}: it has no range"
        return self.low, self.high

    def suggest(self, trial: Suggester, name: str, high: int | None = None) -> Any:
        """A value from `trial`; `high` lowers an int range's top (never below its bottom)."""
        if self.kind == "int":
            low, top = map(int, self.bounds())
            top = top if high is None else max(low, min(top, high))
            return trial.suggest_int(name, low, top, step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(name, *self.bounds(), step=self.step, log=self.log)
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        return self.value


@dataclass(frozen=True)
class SearchSpace:
    model: str
    params: tuple[Param, ...]
    source: str = "<memory>"

    def sample(self, trial: Suggester, within: Bound | None = None) -> dict[str, Any]:
        """A plain dict of values for the active parameters, in file order; `within` narrows each
        int range to what the values before it allow."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                for name in param.names(values):
                    high = within.highest(param, name, values) if within is not None and param.kind == "int" else None
                    values[name] = param.suggest(trial, name, high)
        return values

    def contains(self, values: dict[str, Any]) -> bool:
        """Whether `values` is a point of this space: exactly its active names, each allowed."""
        seen: set[str] = set()
        for param in filter(lambda p: p.active(values), self.params):
            if param.per_layer is not None and param.per_layer not in values:
                return False
            for name in param.names(values):
                if name not in values or not param.allows(values[name]):
                    return False
                seen.add(name)
        return seen == set(values)

    def max_epochs(self) -> int:
        epochs = self.get("epochs")
        assert epochs is not None, f"{self.source}: no 'epochs' parameter (parse_space requires one)"
        return int(max(epochs.choices) if epochs.kind == "categorical" else epochs.high or epochs.value)

    def get(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def with_max_epochs(self, cap: int | None) -> SearchSpace:
        """The same space with the epochs range cut at `cap` (for quick runs)."""
        epochs = self.get("epochs")
        if cap is None or epochs is None:
            return self
        if epochs.kind == "int":
            low, high = epochs.bounds()
            capped = replace(epochs, low=min(low, cap), high=min(high, cap))
        elif epochs.kind == "categorical":
            capped = replace(epochs, choices=tuple(c for c in epochs.choices if c <= cap) or (cap,))
        else:
            capped = replace(epochs, value=min(epochs.value, cap))
        return replace(self, params=tuple(capped if p is epochs else p for p in self.params))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "parameters": {p.name: _param_dict(p) for p in self.params}}

    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cap_epochs(params: dict[str, Any], cap: int | None) -> dict[str, Any]:
    """A whole configuration with its epochs cut at `cap`, as `with_max_epochs` cuts a space's range:
    --max-epochs holds for a preset or an enqueued configuration as for a sampled one."""
    epochs = params.get("epochs")
    if cap is None or not isinstance(epochs, int) or epochs <= cap:
        return params
    return {**params, "epochs": cap}


def _param_dict(param: Param) -> Any:
    if param.kind == "fixed":
        return param.value
    keep = {k: v for k, v in asdict(param).items() if not _unset(v) and k != "name"}
    keep["type"] = keep.pop("kind")
    if "choices" in keep:
        keep["choices"] = list(keep["choices"])
    return keep


def _unset(value: Any) -> bool:
    return value is None or value is False or value == () or value == {}  # 0.0 is a value


def load_space(name_or_path: str) -> SearchSpace:
    """Read and validate a space by name (search_spaces/NAME.yaml) or path."""
    path = find_file(name_or_path, "search_spaces", exclude=("presets",))  # the notebooks' presets, not a space
    return parse_space(read_yaml(path), str(path))


def parse_space(doc: dict, source: str = "<memory>") -> SearchSpace:
    unknown = set(doc) - {"model", "parameters"}
    if unknown:
        raise UserError(f"{source}: unknown key '{sorted(unknown)[0]}'; allowed: model, parameters")
    model = doc.get("model")
    if model not in MODELS:
        raise UserError(f"{source}: model '{model}' is not known; use one of: {', '.join(MODELS)}")
    raw = doc.get("parameters")
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{source}: 'parameters' must be a non-empty mapping of names to ranges")
    params: list[Param] = []
    for name, spec in raw.items():
        params.append(_parse_param(str(name), spec, params, source))
    missing = [n for n in REQUIRED[model] if n not in raw]
    if missing:
        raise UserError(f"{source}: model '{model}' needs parameter '{missing[0]}'; add it under parameters")
    return SearchSpace(model=model, params=tuple(params), source=source)


def _parse_param(name: str, spec: Any, earlier: list[Param], source: str) -> Param:
    where = f"{source}: parameter '{name}'"
    if not isinstance(spec, dict):
        param = Param(name=name, kind="fixed", value=spec)
    else:
        kind = spec.get("type")
        if kind not in KINDS:
            raise UserError(f"{where}: type '{kind}' is not known; use one of: {', '.join(KINDS)}")
        unknown = set(spec) - _KEYS[kind]
        if unknown:
            allowed = ", ".join(sorted(_KEYS[kind]))
            raise UserError(f"{where}: unknown key '{sorted(unknown)[0]}'; allowed for {kind}: {allowed}")
        param = _parse_range(name, kind, spec, where) if kind != "categorical" else _parse_choices(name, spec, where)
        param = replace(param, per_layer=spec.get("per_layer"), when=spec.get("when") or {})
    _check_links(param, earlier, where)
    _check_values(param, where)
    return param


def _parse_range(name: str, kind: str, spec: dict, where: str) -> Param:
    low, high = (_number(spec.get(key), key, kind, where) for key in ("low", "high"))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: 'log' must be true or false, not {log!r}")
    step = None if spec.get("step") is None else _number(spec["step"], "step", kind, where)
    if low > high:
        raise UserError(f"{where}: low ({low}) > high ({high}); make low <= high")
    if log and low <= 0:
        raise UserError(f"{where}: log scale needs low > 0 (got {low}); raise low or drop 'log'")
    if log and step not in (None, 1):
        raise UserError(f"{where}: 'step' cannot be combined with log scale; drop one of them")
    if step is not None and step <= 0:
        raise UserError(f"{where}: step must be > 0 (got {step})")
    return Param(name=name, kind=kind, low=low, high=high, log=log, step=step)


def _number(value: Any, key: str, kind: str, where: str) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string; accept it as a number
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: '{key}' must be a number, not {value!r}")
    if kind == "int":
        if value != int(value):
            raise UserError(f"{where}: '{key}' must be a whole number for an int parameter, not {value}")
        return int(value)
    return float(value)


def _parse_choices(name: str, spec: dict, where: str) -> Param:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{where}: 'choices' must be a non-empty list")
    if len(set(map(repr, choices))) != len(choices):
        raise UserError(f"{where}: 'choices' lists a value twice; remove the duplicate")
    return Param(name=name, kind="categorical", choices=tuple(choices))


def _check_links(param: Param, earlier: list[Param], where: str) -> None:
    by_name = {p.name: p for p in earlier}
    if param.per_layer is not None:
        count = by_name.get(param.per_layer)
        if count is None or count.kind not in ("int", "fixed") or count.per_layer:
            raise UserError(f"{where}: per_layer '{param.per_layer}' must name an int parameter listed above it")
    if not isinstance(param.when, dict):
        raise UserError(f"{where}: 'when' must map earlier parameter names to values")
    for key in param.when:
        if key not in by_name:
            raise UserError(f"{where}: 'when' names '{key}', which is not a parameter listed above it")


def _check_values(param: Param, where: str) -> None:
    values = _possible(param)
    for name, known in (("optimizer", OPTIMIZERS), ("reduction", REDUCTIONS)):
        bad = [v for v in values if v not in known] if param.name == name else []
        if bad:
            raise UserError(f"{where}: unknown {name} '{bad[0]}'; use one of: {', '.join(known)}")
    if param.name in WHOLE:
        _check_bounds(values, *WHOLE[param.name], where, whole=True)
    elif param.name in NUMBERS:
        _check_bounds(values, *NUMBERS[param.name], where, whole=False)


def _possible(param: Param) -> tuple:
    """The values a parameter can take, as far as bounds go: its range's ends, its choices or its value."""
    if param.kind in ("int", "float"):
        return (param.low, param.high)
    return param.choices if param.kind == "categorical" else (param.value,)


def _check_bounds(values: tuple, low: float, high: float, where: str, whole: bool) -> None:
    for value in values:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (whole and value != int(value)):
            raise UserError(f"{where}: {value!r} is not a {'whole number' if whole else 'number'}")
        if not low <= value <= high:
            raise UserError(f"{where}: {value:g} is outside {low:g} to {high:g}, where a model can be built")


def check_grid(space: SearchSpace) -> None:
    """Refuse, before anything runs, a space Keras Tuner's grid cannot walk."""
    for p in space.params:
        if (p.kind == "float" and not p.step) or (p.kind == "int" and p.log and not p.step):
            raise UserError(f"{space.source}: the grid tuner needs a step on '{p.name}' to make a grid of "
                            "its range; add one, or use --tuner random, bayesian or hyperband")


def layer_values(values: dict[str, Any], name: str, count_key: str, default: Any = None) -> list[Any]:
    """The per-layer values `name_l0, name_l1, ...` of a sampled dict, as a list."""
    return [values.get(f"{name}_l{i}", values.get(name, default)) for i in range(values[count_key])]

