"""The Optuna engine's declaration (engines/specs.py): its flags, defaults and checks, light to import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mnist_sweep.engines.specs import EngineSpec
from mnist_sweep.errors import UserError
from mnist_sweep.files import shown

if TYPE_CHECKING:
    from mnist_sweep.config import Settings
    from mnist_sweep.space import SearchSpace

JOURNAL_LINE = 1 << 20  # a journal's first record (creating the study) is well under 1 KiB


class OptunaSpec(EngineSpec):
    name = "optuna"
    engine = "mnist_sweep.engines.optuna:OptunaEngine"
    run_tag = "optuna"
    # Measured by benchmarks/parallel.py on 2 cores: 2 processes of 1 thread trained MLP trials 2x
    # faster than 1 process of 2 threads (small matrix products do not share out over threads well).
    default_workers = 2
    # A journal file: safe for several worker processes, where a shared SQLite file locks.
    default_storage = "optuna.journal"
    shared_store = True
    help = "run (or resume) an Optuna sweep, then the final step and export"
    sweep_help = "sweeps/<space>-optuna.yaml"
    study_help = "study (default: <space>-optuna); the same name resumes it"
    storage_help = ("Optuna storage: a journal file (default: mlruns/optuna.journal, safe for several workers) "
                    "or a database URL (postgresql://USER@HOST/DB, sqlite:///FILE)")
    found_storage_help = "Optuna storage (default: mlruns/optuna.journal)"
    workers_help = ("trials at once, each in its own process with cores/N threads (default: 2; on two cores two "
                    "processes of one thread train MLP trials 2x faster than one of two, benchmarks/parallel.py)")

    def tags(self, settings: Settings) -> dict[str, str]:
        return {"sampler": settings.sampler, "pruner": settings.pruner}

    def check_sweep(self, settings: Settings, space: SearchSpace) -> None:
        storage = self.storage(settings)
        if settings.worker_processes > 1 and storage.startswith("sqlite:"):
            raise UserError(f"{storage}: SQLite locks under several writing processes; pass --workers 1, or "
                            "leave out --storage for the journal file, or use PostgreSQL")

    def check_storage(self, path: Path, sweep: bool) -> None:
        if sweep and path.is_dir():
            raise UserError(f"--storage: {shown(path)} is a folder; Optuna's journal is a file (default: "
                            "mlruns/optuna.journal)")
        if path.is_file():
            check_journal(path)

    def holds_study(self, settings: Settings) -> bool:
        """Its store is there: a database server is asked later, a journal or SQLite file now."""
        from mnist_sweep.config import sqlite_file

        storage = self.storage(settings)
        if "://" in storage and sqlite_file(storage) is None:
            return True
        return (sqlite_file(storage) or Path(storage)).is_file()

    def missing_study(self, settings: Settings) -> str:
        from mnist_sweep.config import sqlite_file

        storage = self.storage(settings)
        return f"no Optuna storage at {sqlite_file(storage) or Path(storage)}; check --storage, or run the sweep first"


def check_journal(path: Path) -> None:
    """An existing --storage file is Optuna's journal: its first record is a JSON object with an
    op_code. Any other file (a typo'd --storage README.md) was "repaired": moved aside and replaced."""
    with path.open("rb") as file:
        first = file.readline(JOURNAL_LINE)
    if not first:
        return  # empty: Optuna starts a journal in it
    whole = first.endswith(b"\n")  # else a torn first record, which the repair drops
    try:
        record = json.loads(first) if whole else None
    except ValueError:
        record = None
    if not (first.startswith(b"{") and (not whole or isinstance(record, dict) and "op_code" in record)):
        raise UserError(f"--storage: {shown(path)} is not an Optuna journal; give the study's journal, a new "
                        "file's path, or a database URL")
