"""One process at a time on a study's shared steps, whichever machine it runs on.

Preparing a study (parent run, warm start) and its final step must happen once, though the
same command may start on several machines at the same moment. The storage that holds the
study also holds the lock: PostgreSQL's advisory lock across machines, a file lock beside a
local journal or SQLite file on one machine (`filelock`: flock where there is one, the
Windows lock on Windows). The lock dies with its process, so a killed process never leaves it held.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mnist_sweep.config import sqlite_file
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder


@contextmanager
def exclusive(storage_url: str, study: str) -> Iterator[None]:
    """Hold the study's lock for the block, waiting (and saying so) while another process has it."""
    if storage_url.startswith("postgresql"):
        with _advisory_lock(storage_url, study):
            yield
        return
    path = sqlite_file(storage_url) if "://" in storage_url else Path(storage_url)
    if path is None:  # another database: no portable lock; run one coordinating process
        yield
        return
    make_folder(path.parent, "--storage")  # where the storage itself will be
    # Not "<file>.lock": Optuna's journal takes that name for its own lock.
    with _file_lock(path.with_name(f"{path.name}.sweep-lock"), study):
        yield


def _key(study: str) -> int:
    """A stable signed 64-bit key per study (Python's hash() changes from process to process)."""
    return int.from_bytes(hashlib.blake2b(study.encode(), digest_size=8).digest(), "big", signed=True)


@contextmanager
def _advisory_lock(url: str, study: str) -> Iterator[None]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        connection = engine.connect()
    except sa.exc.SQLAlchemyError as err:
        raise UserError(f"storage {url}: cannot open ({type(err).__name__}); check --storage") from None
    try:
        with connection:  # the lock lives as long as this session
            key = {"key": _key(study)}
            if not connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
                _say_waiting(study)
                connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()


@contextmanager
def _file_lock(path: Path, study: str) -> Iterator[None]:
    import filelock  # 19 ms: only the steps that take the lock pay for it

    lock = filelock.FileLock(path)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _say_waiting(study)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _say_waiting(what: str) -> None:
    print(f"study '{what}': waiting for another process to finish preparing or finishing it", file=sys.stderr)
