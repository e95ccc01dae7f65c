"""The notebooks' configurations (search_spaces/presets.yaml), as plain parameter dicts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mnist_sweep.costs import unbuildable
from mnist_sweep.errors import UserError
from mnist_sweep.files import find_file, read_yaml
from mnist_sweep.space import MODELS, SearchSpace, cap_epochs

_KEYS = {"notebook", "reported_test_accuracy", "model", "params"}


@dataclass(frozen=True)
class Preset:
    name: str
    notebook: str
    reported: float | None  # the test accuracy the notebook printed, where it printed one
    model: str
    params: dict[str, Any]

    def fits(self, space: SearchSpace) -> bool:
        """Whether a sweep over `space` can try exactly this configuration."""
        return self.model == space.model and space.contains(self.params)

    def capped(self, max_epochs: int | None) -> Preset:
        """The preset trained at most `max_epochs` (--max-epochs), as every trial of the sweep is."""
        return replace(self, params=cap_epochs(self.params, max_epochs))


def load_presets(name_or_path: str = "presets") -> list[Preset]:
    path = find_file(name_or_path, "search_spaces")
    raw = read_yaml(path).get("presets")
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: expected a non-empty mapping under 'presets'")
    return [_parse(str(name), entry, str(path)) for name, entry in raw.items()]


def _parse(name: str, entry: Any, source: str) -> Preset:
    where = f"{source}: preset '{name}'"
    if not isinstance(entry, dict) or set(entry) != _KEYS:
        raise UserError(f"{where}: needs exactly the keys {', '.join(sorted(_KEYS))}")
    if entry["model"] not in MODELS or not isinstance(entry["params"], dict):
        raise UserError(f"{where}: model must be one of {', '.join(MODELS)} and params a mapping")
    return Preset(name=name, notebook=str(entry["notebook"]), reported=entry["reported_test_accuracy"],
                  model=entry["model"], params=dict(entry["params"]))


def select(presets: list[Preset], only: str | None) -> list[Preset]:
    if only is None:
        return presets
    chosen = [p for p in presets if p.name == only]
    if not chosen:
        raise UserError(f"unknown preset '{only[:100]}'; choose one of: {', '.join(p.name for p in presets)}")
    return chosen


def warm_start(presets: tuple[Preset, ...], space: SearchSpace, max_epochs: int | None, trials: int,
               epochs: int | None = None) -> list[Preset]:
    """The presets a new sweep over `space` tries first, for both engines: under the caps every trial
    has (at most `max_epochs` each, no more of them than `trials`), those the space holds and that
    build. `epochs`: what the engine trains each for instead (Hyperband sets a trial's epochs)."""
    capped = [p.capped(max_epochs) for p in presets]
    tried = [replace(p, params={**p.params, "epochs": epochs}) if epochs else p for p in capped]
    return [p for p, t in zip(capped, tried) if t.fits(space) and unbuildable(space.model, t.params) is None][:trials]


def announce_warm_start(names: list[str]) -> None:
    """Say which presets a new sweep tries first (the same words for both engines)."""
    if names:
        print(f"warm start: the first {len(names)} trials are the notebooks' presets that fit this space "
              f"({', '.join(names)}); --no-warm-start skips them")
