"""The Optuna engine's declaration (engines/optuna_spec.py): which --storage files it takes, where it
finds a study."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from mnist_sweep.config import Settings
from mnist_sweep.engines.optuna_spec import OptunaSpec, check_journal
from mnist_sweep.errors import UserError


def test_a_journal_an_empty_file_or_a_torn_first_record_is_taken_and_any_other_file_refused(tmp_path):
    journal = tmp_path / "optuna.journal"
    optuna.create_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(journal))))
    check_journal(journal)
    first = journal.read_bytes().splitlines()[0]
    for taken in (b"", first[:len(first) // 2]):  # a new file; a first record a crash cut (the repair drops it)
        (tmp_path / "taken").write_bytes(taken)
        check_journal(tmp_path / "taken")
    for refused in (b"# README\n", b'{"a": 1}\n', b"[1, 2]\n", bytes(range(256))):
        (tmp_path / "refused").write_bytes(refused)
        with pytest.raises(UserError, match="refused is not an Optuna journal"):
            check_journal(tmp_path / "refused")


def test_a_study_is_held_by_a_journal_or_sqlite_file_that_exists_and_a_database_server_is_asked_later(tmp_path):
    spec = OptunaSpec()

    def holds(storage: str) -> bool:
        return spec.holds_study(Settings(engine="optuna", storage=storage))

    journal, database = tmp_path / "optuna.journal", tmp_path / "optuna.db"
    assert not holds(str(journal)) and not holds(f"sqlite:///{database}")
    journal.write_bytes(b"")
    database.write_bytes(b"")
    assert holds(str(journal)) and holds(f"sqlite:///{database}")
    assert holds("postgresql://user@127.0.0.1:9/studies")  # not looked for now: the server says later
    missing = spec.missing_study(Settings(engine="optuna", storage=f"sqlite:///{tmp_path / 'other.db'}"))
    assert missing.startswith(f"no Optuna storage at {tmp_path / 'other.db'};")  # the file, not the URL
