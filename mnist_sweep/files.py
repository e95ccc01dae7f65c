"""Finding and reading the project's YAML files (search spaces, sweep settings, presets).

A project file is small, plain UTF-8 text, each key once, no anchors: YAML's aliases can
expand a few hundred bytes into gigabytes, and a repeated key silently takes the last value
(a sweep file saying `trials: 2` and later `trials: 500` would run 500).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mnist_sweep.errors import UserError

# The checkout's root, so that `search_spaces/` and `sweeps/` are found from any directory.
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILTIN = Path(__file__).resolve().parent / "builtin"  # the same folders inside an installed wheel
MAX_BYTES = 256 * 1024  # the largest project file is a few kilobytes
MAX_NAME = 200  # a name looked up as NAME.yaml: the file system takes 255 bytes


def shown(path: str | Path) -> str:
    """A name as a message shows it: 10,000 characters of it would bury the message."""
    text = str(path).replace("\0", "\\0")
    return text if len(text) <= 120 else f"{text[:60]}... ({len(text)} characters)"


def usable(path: Path, option: str) -> Path:
    """`path`, if the system can look it up at all. A name over the file system's limit (255
    bytes on Linux) or with a NUL byte makes every later exists() or open() raise, not say no."""
    if "\0" in str(path):  # pathlib says False to it, then mkdir and open raise ValueError, after the search
        raise UserError(f"{option}: '{shown(path)}' is not a usable path (it holds a NUL byte)")
    try:
        path.exists()
    except OSError as err:
        raise UserError(f"{option}: '{shown(path)}' is not a usable path ({err.strerror})") from None
    return path


def find_file(name_or_path: str, folder: str, exclude: tuple[str, ...] = ()) -> Path:
    """A path as given, or a name looked up in ./<folder>/, the checkout's and the package's <folder>/.

    `exclude`: names that sit in <folder> but are another kind of file (search_spaces/presets.yaml
    is not a space), neither found nor offered as a choice."""
    path = usable(Path(name_or_path), f"a name in {folder}/ or a path")
    if path.suffix in (".yaml", ".yml") or path.parent != Path(".") or len(name_or_path) > MAX_NAME:
        if path.is_file():
            return path
        raise UserError(f"{shown(path)}: no such file; give an existing YAML path or a name from {folder}/")
    for base in (Path.cwd() / folder, *_built_in(folder)):
        candidate = base / f"{name_or_path}.yaml"
        if candidate.is_file() and name_or_path not in exclude:
            return candidate
    names = sorted({p.stem for base in _built_in(folder) for p in base.glob("*.yaml")} - set(exclude))
    raise UserError(f"unknown name '{shown(name_or_path)}' in {folder}/; choose one of: {', '.join(names)}")


def _built_in(folder: str) -> list[Path]:
    return [base / folder for base in (REPO_ROOT, BUILTIN) if (base / folder).is_dir()]


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases, and with each key of a mapping once."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed here", mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.constructor.ConstructorError(None, None, "anchors (&name) are not allowed here",
                                                    event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' appears twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a small UTF-8 file: no Python object tags, aliases or repeated keys."""
    text = read_text(path)
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: invalid YAML{where}: {problem}; fix it there") from None
    if not isinstance(doc, dict):
        raise UserError(f"{path}: expected a mapping of keys to values at the top level")
    return doc


def read_text(path: Path) -> str:
    """A project file's text: refused if it is large, not UTF-8, or holds NUL bytes (binary)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{path}: {path.stat().st_size} bytes, over the {MAX_BYTES} a project file may "
                            "have; is it the right file?")
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (a binary file, or another encoding such as UTF-16); "
                        "save it as UTF-8") from None
    if "\0" in text:
        raise UserError(f"{path}: holds NUL bytes, so it is not a text file; give a YAML file")
    return text


def make_folder(path: Path, option: str) -> None:
    """Create `path` (and its parents) for a store, or say which option points somewhere unusable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {path} ({err.strerror}); pass a writable {option}") from None


def check_writable_folder(path: Path, option: str) -> None:
    """Refuse, before anything runs, a folder that could not be created or written later.

    Tried for real (a file made and removed where the folder is or would be): permission bits
    say nothing of a read-only mount, or to root."""
    usable(path, option)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder; pass another {option}")
    where = path if path.exists() else next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not where.is_dir():
        raise UserError(f"cannot create {path}: {where} is a file; pass another {option}")
    probe = where / f".mnist-sweep-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.unlink(probe)
    except OSError as err:
        raise UserError(f"cannot create {path} (in {where}: {err.strerror}); pass another {option}") from None
