"""Finding and reading the project's YAML files (search spaces, sweep settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mnist_sweep.errors import UserError

# The checkout's root, so that `search_spaces/` and `sweeps/` are found from any directory.
REPO_ROOT = Path(__file__).resolve().parent.parent


def find_file(name_or_path: str, folder: str) -> Path:
    """A path as given, or a name looked up in ./<folder>/ and then in the checkout's <folder>/."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        if path.is_file():
            return path
        raise UserError(f"{path}: no such file; give an existing YAML path or a name from {folder}/")
    for base in (Path.cwd() / folder, REPO_ROOT / folder):
        candidate = base / f"{name_or_path}.yaml"
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in (REPO_ROOT / folder).glob("*.yaml"))
    raise UserError(f"unknown name '{name_or_path}' in {folder}/; choose one of: {', '.join(names)}")


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping, read with the safe loader only (no Python object tags)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: invalid YAML{where}: {problem}; fix the syntax there") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    return doc


def make_folder(path: Path, option: str) -> None:
    """Create `path` (and its parents) for a store, or say which option points somewhere unusable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {path} ({err.strerror}); pass a writable {option}") from None
