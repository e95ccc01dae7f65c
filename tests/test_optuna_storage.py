"""Where an Optuna study lives: its storage opened, and only a journal's unfinished records repaired."""

from __future__ import annotations

import pytest

from mnist_sweep.engines.optuna_storage import open_storage
from mnist_sweep.errors import UserError


@pytest.mark.parametrize("content", [b"not a folder\n", bytes(range(256)), b'{"a": 1}\n'])
def test_a_storage_file_that_is_no_journal_is_left_as_it_was(tmp_path, content):
    """It was "repaired" before: moved aside to a-file.torn-<time> and replaced by a new journal."""
    (tmp_path / "a-file").write_bytes(content)
    with pytest.raises(UserError, match="a-file is not an Optuna journal"):
        open_storage(str(tmp_path / "a-file"))
    assert (tmp_path / "a-file").read_bytes() == content and not list(tmp_path.glob("a-file.*"))
