"""Finding and reading the project's YAML files, and checking the folders a command will write to (files.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_sweep.errors import UserError
from mnist_sweep.files import check_writable_folder, find_file, read_yaml


def test_a_name_is_looked_up_in_the_working_folder_before_the_built_in_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "mlp.yaml").write_text("model: mlp\n")
    assert find_file("mlp", "search_spaces") == tmp_path / "search_spaces" / "mlp.yaml"  # the user's own
    built_in = find_file("cnn", "search_spaces")
    assert built_in.name == "cnn.yaml" and built_in.is_file() and tmp_path not in built_in.parents
    assert find_file("search_spaces/mlp.yaml", "search_spaces") == Path("search_spaces/mlp.yaml")  # a path as given
    with pytest.raises(UserError, match="elsewhere/cnn.yaml: no such file"):
        find_file("elsewhere/cnn.yaml", "search_spaces")  # a path is not looked up by its name


def test_a_project_file_is_a_mapping_with_each_key_once_and_no_aliases(tmp_path):
    def read(text):
        (tmp_path / "f.yaml").write_text(text)
        return read_yaml(tmp_path / "f.yaml")

    assert read("space: mlp\nparameters: {n_layers: 1}\n") == {"space": "mlp", "parameters": {"n_layers": 1}}
    with pytest.raises(UserError, match="line 3, column 3: key 'units' appears twice"):
        read("parameters:\n  units: 16\n  units: 1024\n")  # in a nested mapping too: the last would win
    with pytest.raises(UserError, match=r"anchors \(&name\) are not allowed"):
        read("a: &x [1, 2]\nb: *x\n")
    with pytest.raises(UserError, match="expected a mapping"):
        read("- trials: 2\n")
    with pytest.raises(UserError, match="holds NUL bytes"):
        read("trials: 2\n\0")


def test_checking_a_folder_creates_nothing_and_leaves_no_probe_behind(tmp_path):
    check_writable_folder(tmp_path / "new" / "deeper", "--export-dir")
    check_writable_folder(tmp_path, "--export-dir")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a-file").write_text("not a folder\n")
    with pytest.raises(UserError, match="a-file is a file; pass another --export-dir"):
        check_writable_folder(tmp_path / "a-file" / "models", "--export-dir")
