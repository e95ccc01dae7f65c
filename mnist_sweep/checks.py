"""Everything about a command's input that needs no data, checked before TensorFlow loads.

A bad flag, file, name or folder is refused in a fraction of a second, in one line, before any
study or run exists; what only the data can tell (its shape, its digest) comes after. Nothing
here imports TensorFlow, Optuna, Keras Tuner or MLflow.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from mnist_sweep.config import Settings, runs_dir, sqlite_file
from mnist_sweep.engines.specs import lookup_order, names, spec, specs
from mnist_sweep.errors import UserError, require_extra
from mnist_sweep.files import check_writable_folder, shown, usable
from mnist_sweep.presets import Preset, load_presets, select
from mnist_sweep.space import SearchSpace, cap_epochs, load_space

SQLITE_HEADER = b"SQLite format 3\0"


@dataclass(frozen=True)
class SweepInputs:
    """A sweep's own files, read and checked here once, before TensorFlow loads; its search takes them."""

    space: SearchSpace           # --max-epochs applied
    presets: tuple[Preset, ...]  # the warm start's candidates (presets.warm_start chooses); none with --no-warm-start


def before_data(command: str, settings: Settings, args: argparse.Namespace) -> SweepInputs | None:
    """Refuse what would fail later: in a sweep, after its whole search and retrain. Each engine's
    name is its sweep command; a sweep's inputs are returned as read."""
    sweeps = names()
    inputs = sweep_inputs(settings) if command in sweeps else None
    if command in (*sweeps, "final"):
        _export_folder(settings)
    if command in sweeps or (command == "report" and not args.report_dir):
        check_writable_folder(Path("reports") / settings.study, "folder for the report (reports/<study>)")
    if command == "report" and args.report_dir:
        check_writable_folder(Path(args.report_dir), "--report-dir")
    if command == "export":
        _export_folder(settings)
    if command == "baselines":
        select(load_presets(), args.only)
    if command in (*sweeps, "final") or command == "baselines" and not args.list:
        _data(settings)
    if command in ("final", "export", "report"):
        _study_store(settings)
    if command == "predict":
        _predict(args)
    else:
        _stores(settings, command if command in sweeps else None)
    return inputs


def _export_folder(settings: Settings) -> None:
    """Where the model goes: a folder that can be written and holds no other study's export (its
    metrics.json names the study), which the final step would replace file by file."""
    check_writable_folder(settings.export_path, "--export-dir")
    metrics = settings.export_path / "metrics.json"
    if not metrics.is_file() and _holds_other_files(settings.export_path):
        raise UserError(f"--export-dir: {shown(settings.export_path)} holds files that are not an export; "
                        f"pass an empty or new folder, or leave it out for models/{settings.study}")
    try:
        study = json.loads(metrics.read_bytes()).get("study") if metrics.is_file() else None
    except (ValueError, AttributeError):  # not JSON, or not an object: not an export of this project
        study = None
    if study not in (None, settings.study):
        raise UserError(f"--export-dir: {shown(settings.export_path)} holds the export of study '{study}'; pass "
                        f"another --export-dir, or leave it out for models/{settings.study}")


def _holds_other_files(folder: Path) -> bool:
    """Whether `folder` holds anything an export does not write (the final step writes its files there,
    over any of the same name)."""
    from mnist_sweep.export import FILES  # light: no TensorFlow at import

    ours = {*FILES.values(), "params.json", "search_space.yaml", "metrics.json", ".partial"}
    return folder.is_dir() and any(entry.name not in ours for entry in folder.iterdir())


def _data(settings: Settings) -> None:
    """The data file or folder is there and of a known kind; its arrays are read after TensorFlow."""
    if settings.data:
        from mnist_sweep.formats import check_path  # here: formats imports numpy, which --help need not load

        check_path(Path(settings.data))


def _study_store(settings: Settings) -> None:
    """A finished study needs its store, in some engine's keeping (looked for as engines.find does)."""
    if settings.storage and "://" not in settings.storage:
        usable(Path(settings.storage), "--storage")
    order = lookup_order()
    if not any(engine.holds_study(settings) for engine in order):
        raise UserError(order[-1].missing_study(settings))


def _predict(args: argparse.Namespace) -> None:
    from mnist_sweep.images import check_image  # Pillow: only predict needs it

    for name in args.files:
        if not usable(Path(name), "an image").is_file():
            raise UserError(f"{name}: no such image file; give PNG or JPEG files of digits")
        check_image(Path(name))
    if not args.model.startswith(("models:/", "runs:/")) and not usable(Path(args.model), "--model").is_file():
        raise UserError(f"{args.model}: no such model file; pass --model with an exported model.keras or "
                        "models:/NAME@champion")


def sweep_inputs(settings: Settings) -> SweepInputs:
    space = load_space(settings.space).with_max_epochs(settings.max_epochs)
    spec(settings.engine).check_sweep(settings, space)  # what this engine refuses (its grid, its storage)
    presets = tuple(load_presets())  # read even without a warm start: a broken file is said at once
    _enqueued(settings, space)
    if settings.search_share is not None and settings.minutes is None:
        raise UserError("search_share: it is a share of `minutes`, which this sweep does not set; set minutes, "
                        "or use --timeout to stop the search after so many seconds")
    return SweepInputs(space, presets if settings.warm_start else ())


def _enqueued(settings: Settings, space: SearchSpace) -> None:
    """Each configuration the sweep file enqueues is a whole point of the space, once --max-epochs
    has capped both (an engine that takes none refuses `enqueue` in its check_sweep)."""
    for name, params in (settings.enqueue or {}).items():
        if not isinstance(params, dict) or not space.contains(cap_epochs(params, settings.max_epochs)):
            raise UserError(f"enqueue: '{name}' is not a point of the {space.model} space (every parameter it "
                            "uses, each within its range, and no other); fix it or remove it")
    if settings.final_include is not None and settings.final_include not in (settings.enqueue or {}):
        raise UserError(f"final_include: '{settings.final_include}' is not a configuration this sweep file "
                        f"enqueues ({', '.join(settings.enqueue or {}) or 'none'}); name one of them or remove it")
    if settings.final_include is None and settings.final_include_models != 1:
        raise UserError("final_include_models: there is no final_include to retrain more than once; name the "
                        "enqueued configuration in final_include, or remove final_include_models")


def _stores(settings: Settings, sweep: str | None = None) -> None:
    """The local stores: where a journal, a SQLite file or the artifacts will be, and what is there.
    `sweep`: the sweep command's engine (None for the other commands)."""
    for url, option in ((settings.tracking, "--tracking-uri"), (settings.storage or "", "--storage")):
        if url.startswith("sqlite:") and (sqlite_file(url) is None or sqlite_file(url) == Path(":memory:")):
            raise UserError(f"{option}: {url[:100]} keeps the records in memory, lost when the command ends; "
                            "give a file, sqlite:///PATH.db")
    tracking = sqlite_file(settings.tracking)
    if tracking is not None:
        _sqlite(tracking, "--tracking-uri")
        check_writable_folder(tracking.parent, "--tracking-uri")
    if settings.storage is not None:
        _storage(settings, sweep)
    else:
        check_writable_folder(runs_dir(), "--storage")
    _database_driver(settings.storage or "", "--storage")
    _database_driver(settings.tracking, "--tracking-uri")


def _storage(settings: Settings, sweep: str | None) -> None:
    """--storage as the engines read it: a database URL, or a local file or folder that the sweep's
    engine checks. Final, export and report (`sweep` None) take any engine's store: each engine
    refuses there only what is surely its own (a file that is not Optuna's journal)."""
    storage = settings.storage or ""
    database = sqlite_file(storage)
    if database is not None:
        _sqlite(database, "--storage")
    elif "://" not in storage:
        path = usable(Path(storage), "--storage")
        for engine in [spec(sweep)] if sweep else specs():
            engine.check_storage(path, sweep is not None)


def _sqlite(path: Path, option: str) -> None:
    """A SQLite store's file: absent or empty (SQLite makes it), or a database. A folder there made
    MLflow retry for minutes; any other file failed deep inside SQLAlchemy, after TensorFlow."""
    if usable(path, option).is_dir():
        raise UserError(f"{option}: {shown(path)} is a folder; give a database file, sqlite:///FOLDER/NAME.db")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as file:
            if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise UserError(f"{option}: {shown(path)} is not an SQLite database; give the store's own file "
                                "or a new one")


def _database_driver(url: str, option: str) -> None:
    """PostgreSQL's driver is an extra (postgres): missing, it is named now, not after TensorFlow loads."""
    scheme = url.split("://", 1)[0]
    # SQLAlchemy 2.1's driver for a plain postgresql://; a URL naming another (postgresql+pg8000://)
    # is the user's own choice, not this project's extra, and SQLAlchemy names it if it is missing.
    if scheme in ("postgresql", "postgresql+psycopg"):
        require_extra("psycopg", "postgres", f"{option} {scheme}://")
