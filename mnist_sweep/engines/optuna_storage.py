"""Where an Optuna study lives: its storage opened (a journal file, SQLite or PostgreSQL), and a
journal that a crash or a full disk cut short repaired on opening."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from mnist_sweep.config import sqlite_file
from mnist_sweep.engines.optuna_spec import check_journal
from mnist_sweep.errors import UserError
from mnist_sweep.files import make_folder

# Heartbeats and their retry callback are marked experimental, yet they are Optuna's way to
# recover trials of a killed process; the warning would only repeat on every start.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

# A trial whose process died stops beating; after the grace period it is failed and retried.
HEARTBEAT_SECONDS = 5
GRACE_SECONDS = 15
RETRY = RetryHeartbeatStaleTrialCallback(max_retry=3)  # a dead process's trial runs again, at most 3 times


def is_journal(url: str) -> bool:
    """A path, not a URL: Optuna's journal file (which has no heartbeats)."""
    return "://" not in url


def open_storage(url: str, create: bool = True) -> BaseStorage:
    path = Path(url) if is_journal(url) else sqlite_file(url)
    if path is not None:
        if not create and not path.is_file():
            raise UserError(f"no Optuna storage at {path}; check --storage, or run the sweep first")
        make_folder(path.parent, "--storage")
    if is_journal(url):  # Optuna's journal: appends under a file lock, so several processes can share it
        if path.is_file():
            check_journal(path)  # the repair would move any other file aside and start a journal there
        repair_journal(path)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=RETRY)
    except Exception as err:  # SQLAlchemy raises many types for one cause: the URL does not work
        raise UserError(f"storage {url}: cannot open ({type(err).__name__}); check --storage") from None


def repair_journal(path: Path) -> None:
    """Drop the records a crash or a full disk left unfinished, keeping a copy of the file.

    Optuna 5.0 skips an unfinished last record silently, then appends the next one onto it,
    after which no process can read the file (optuna's _file.py reads a line only when it ends
    in a newline and parses). Writers append under Optuna's own lock, so with it held a record
    that does not end in a newline, or does not parse, was never a finished write.
    """
    if not path.is_file() or _whole(path.read_bytes()):
        return
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        data = path.read_bytes()
        kept = _whole_records(data)
        if len(kept) == len(data):
            return
        copy = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
        shutil.copyfile(path, copy)
        if data.startswith(kept):  # only the end: cut it, so readers' offsets stay valid
            os.truncate(path, len(kept))
        else:
            partial = path.with_name(f"{path.name}.repairing")
            partial.write_bytes(kept)
            os.replace(partial, path)
    finally:
        lock.release()
    print(f"{path}: dropped {len(data) - len(kept)} bytes of records a crash or a full disk left unfinished "
          f"(a copy of the file is {copy}); every finished record is kept", file=sys.stderr)


def _whole(data: bytes) -> bool:
    return not data or (data.endswith(b"\n") and _parses(data[data.rfind(b"\n", 0, len(data) - 1) + 1:]))


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _whole_records(data: bytes) -> bytes:
    """The lines that are finished records: each ends in a newline and parses."""
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if line.endswith(b"\n") and _parses(line))

