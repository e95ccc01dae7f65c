"""Inputs no sweep can run on, refused in one line with exit code 2 before any study or run exists,
and, where no data is needed, before TensorFlow is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_sweep.cli import main

SPACE = Path(__file__).parents[1] / "search_spaces" / "mlp.yaml"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNIST_SWEEP_DATA", raising=False)
    text = SPACE.read_text()
    files = {
        "aliases.yaml": "a: &x [1, 2]\nb: *x\n",
        "bomb.yaml": "model: mlp\nparameters: &p {n_layers: 1}\nmore: [*p, *p, *p]\n",
        "twice.yaml": "trials: 2\nseed: 0\ntrials: 500\n",
        "half-layer.yaml": text.replace("n_layers: {type: int, low: 1, high: 3}", "n_layers: 1.5"),
        "huge-units.yaml": text.replace("low: 16, high: 1024", "low: 1.0e+11, high: 1.0e+20"),
        "huge.yaml": "trials: 2\n" + "# padding\n" * 30000,
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    (tmp_path / "utf16.yaml").write_text("trials: 2\n", encoding="utf-16")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "projects" / "s").mkdir(parents=True)
    (tmp_path / "exported").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("a user's own file\n")
    (tmp_path / "exported" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.99, "study": "cnn-optuna"}))
    (tmp_path / "projects" / "s" / "study.json").write_bytes(bytes(range(256)))  # a project's record, damaged
    for name, content in NUMBERS.items():
        (tmp_path / name).write_text(content)
    return tmp_path


LONG = "x" * 10_000  # over every file system's 255-byte name: every exists() on it raised OSError
NUMBERS = {"nan-timeout.yaml": "timeout: .nan\n", "inf-timeout.yaml": "timeout: .inf\n",
           "nan-mflops.yaml": "max_mflops: .nan\n", "nan-recycle.yaml": "recycle_mb: .nan\n",
           "inf-minutes.yaml": "final_minutes: .inf\n", "long-experiment.yaml": f"experiment: {'e' * 501}\n",
           "nul-export.yaml": 'export_dir: "a\\0b"\n', "nul-tracking.yaml": 'tracking_uri: "a\\0b"\n'}
FINITE = "must be a finite number"


NAME = "is not a usable study name"


@pytest.mark.parametrize("argv, expected", [
    (["optuna", "--sweep", "aliases.yaml"], "aliases.yaml: invalid YAML at line 1, column 4: anchors (&name)"),
    (["optuna", "--space", "bomb.yaml"], "bomb.yaml: invalid YAML at line 2"),
    (["optuna", "--sweep", "twice.yaml"], "twice.yaml: invalid YAML at line 3, column 1: key 'trials' appears twice"),
    (["optuna", "--sweep", "huge.yaml"], "huge.yaml: 300010 bytes, over the 262144"),
    (["optuna", "--sweep", "utf16.yaml"], "utf16.yaml: not UTF-8 text"),
    (["optuna", "--space", "binary.yaml"], "binary.yaml: not UTF-8 text"),
    (["optuna", "--space", "half-layer.yaml"], "parameter 'n_layers': 1.5 is not a whole number"),
    (["optuna", "--space", "huge-units.yaml"], "parameter 'units': 1e+11 is outside 1 to 8192"),
    (["optuna", "--seed", "-1"], "'seed' must be a whole number from 0 to 4278190079"),
    (["optuna", "--seed", "4294967296"], "'seed' must be a whole number from 0 to 4278190079"),
    (["optuna", "--seed", "4294967295"], "'seed' must be a whole number from 0 to 4278190079"),
    (["baselines", "--seed", "4294967295"], "'seed' must be a whole number from 0 to 4278190079"),
    (["optuna", "--study-name", ".."], NAME),
    (["optuna", "--study-name", "../../escape"], NAME),
    (["optuna", "--study-name", "x" * 300], NAME),
    (["optuna", "--study-name", "it's"], NAME),
    (["optuna", "--study-name", "team/mlp"], NAME),
    (["optuna", "--study-name", "mlp:v2"], NAME),
    (["kerastuner", "--study-name", "a b"], NAME),
    (["final", "--study-name", "../x"], NAME),
    (["optuna", "--export-dir", "a-file"], "a-file is a file, not a folder; pass another --export-dir"),
    (["optuna", "--export-dir", "a-file/model"], "a-file is a file; pass another --export-dir"),
    (["optuna", "--export-dir", "/proc/nope"], "cannot create /proc/nope (in /proc:"),
    (["export", "--study-name", "s", "--export-dir", "/proc/nope"], "cannot create /proc/nope (in /proc:"),
    (["report", "--study-name", "s", "--report-dir", "a-file"], "a-file is a file, not a folder"),
    # Names no file system takes: a traceback (OSError, File name too long) before.
    (["optuna", "--sweep", LONG], "a name in sweeps/ or a path: 'xxxx"),
    (["optuna", "--sweep", LONG + ".yaml"], "(10005 characters)' is not a usable path (File name too long)"),
    (["optuna", "--study-name", "s", "--space", LONG], "(10000 characters)' is not a usable path"),
    (["optuna", "--export-dir", LONG], "--export-dir: 'xxxx"),
    (["report", "--study-name", "s", "--report-dir", LONG], "--report-dir: 'xxxx"),
    (["optuna", "--data", LONG], "--data: 'xxxx"),
    (["optuna", "--storage", LONG], "--storage: 'xxxx"),
    (["kerastuner", "--storage", LONG], "--storage: 'xxxx"),
    (["optuna", "--tracking-uri", "sqlite:///" + LONG], "--tracking-uri: 'xxxx"),
    # Stores that are the wrong kind of file: a traceback, or MLflow retrying for minutes, after TensorFlow.
    (["optuna", "--storage", "a-folder"], "--storage: a-folder is a folder; Optuna's journal is a file"),
    (["kerastuner", "--storage", "a-file"], "a-file is a file, not a folder; pass another --storage"),
    (["optuna", "--workers", "1", "--storage", "sqlite:///a-folder"], "--storage: a-folder is a folder; give a"),
    (["optuna", "--workers", "1", "--storage", "sqlite:///binary.yaml"], "binary.yaml is not an SQLite database"),
    (["optuna", "--tracking-uri", "sqlite:///a-folder"], "--tracking-uri: a-folder is a folder; give a database"),
    (["optuna", "--tracking-uri", "sqlite:///binary.yaml"], "--tracking-uri: binary.yaml is not an SQLite"),
    (["optuna", "--storage", "a-file"], "--storage: a-file is not an Optuna journal; give the study's journal"),
    (["export", "--study-name", "s", "--storage", "a-file"], "--storage: a-file is not an Optuna journal"),
    (["final", "--study-name", "s", "--storage", LONG], "--storage: 'xxxx"),
    (["report", "--study-name", "s", "--storage", "projects"], "study.json: not a study of mnist_sweep"),
    (["kerastuner", "--study-name", "s", "--storage", "projects"], "study.json: not a study of mnist_sweep"),
    # Another study's export, which the final step would replace file by file.
    (["optuna", "--export-dir", "exported"], "--export-dir: exported holds the export of study 'cnn-optuna'; pass"),
    (["final", "--study-name", "s", "--export-dir", "exported"], "exported holds the export of study 'cnn-optuna'"),
    (["export", "--study-name", "s", "--export-dir", "exported"], "exported holds the export of study 'cnn-optuna'"),
    # Numbers that passed every `> 0` test: NaN compares false, inf and 10**400 broke the clocks later.
    (["optuna", "--sweep", "nan-timeout.yaml"], f"'timeout' {FINITE}, not nan"),
    (["optuna", "--sweep", "inf-timeout.yaml"], f"'timeout' {FINITE}, not inf"),
    (["optuna", "--sweep", "nan-mflops.yaml"], f"'max_mflops' {FINITE}, not nan"),
    (["optuna", "--sweep", "nan-recycle.yaml"], f"'recycle_mb' {FINITE}, not nan"),
    (["kerastuner", "--sweep", "inf-minutes.yaml"], f"'final_minutes' {FINITE}, not inf"),
    (["optuna", "--timeout", "1" + "0" * 400], f"'timeout' {FINITE}, not 1000"),
    (["kerastuner", "--search-share", "0.5"], "search_share: it is a share of `minutes`, which this sweep does not"),
    (["optuna", "--search-share", "1.5"], "'search_share' must be at most 1, not 1.5: a share of the command's"),
    (["optuna", "--max-mflops", "inf"], "--max-mflops: must be finite (leave the flag out for no limit), not 'inf'"),
    (["optuna", "--recycle-mb", "inf"], "--recycle-mb: must be finite"),
    (["final", "--study-name", "s", "--final-minutes", "inf"], "--final-minutes: must be finite"),
    (["ui", "--port", "70000"], "--port: must be a port from 1 to 65535, not '70000'"),  # a traceback, exit 0
    # Experiment names MLflow refuses only after TensorFlow has loaded.
    (["optuna", "--experiment", ""], "'experiment' must have 1 to 500 characters (MLflow's limit), not 0"),
    (["optuna", "--sweep", "long-experiment.yaml"], "'experiment' must have 1 to 500 characters"),
    # Huge numbers that took the machine down: a TensorFlow process per worker, a list of members first.
    (["optuna", "--workers", "100000"], f"'workers' must be at most {4 * (os.cpu_count() or 1)}, not 100000: 4 per"),
    (["final", "--study-name", "s", "--final-models", "1000000000"], "'final_models' must be at most 100"),
    # A folder of the user's own files, which the final step would write its export into.
    (["optuna", "--export-dir", "mine"], "--export-dir: mine holds files that are not an export; pass an empty"),
    (["export", "--study-name", "s", "--export-dir", "mine"], "mine holds files that are not an export"),
    # In-memory SQLite stores: the sweep ran, and its records vanished with the process.
    (["optuna", "--tracking-uri", "sqlite://"], "--tracking-uri: sqlite:// keeps the records in memory, lost"),
    (["optuna", "--tracking-uri", "sqlite:///:memory:"], "keeps the records in memory"),
    (["optuna", "--workers", "1", "--storage", "sqlite://"], "--storage: sqlite:// keeps the records in memory"),
    # Seeds past numpy's 2**32 for the last of K seeds; a whole name echoed back; a host the UI cannot bind.
    (["baselines", "--seeds", "100000000"], "--seeds: must be at most 16777216, not '100000000'"),
    (["baselines", "--only", LONG], "unknown preset 'xxxxxxxxxx"),
    (["ui", "--host", "not a host!"], "--host: 'not a host!' is not an address or host name"),
    # A NUL byte (only a file or the environment can give one): a ValueError after the whole search.
    (["optuna", "--sweep", "nul-export.yaml"], "'export_dir' holds a NUL byte (a\\0b)"),
    (["optuna", "--sweep", "nul-tracking.yaml"], "'tracking_uri' holds a NUL byte"),
])
def test_bad_input_is_refused_in_one_line_before_anything_is_recorded(workdir, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err and len(err) < 1000
    assert not (workdir / "mlruns").exists() and not (workdir / "models").exists()


def test_a_bad_space_is_refused_before_tensorflow_is_imported(workdir):
    code = ("import sys; from mnist_sweep.cli import main; code = main(['optuna', '--space', 'half-layer.yaml']); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'mlflow' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=workdir)
    assert done.returncode == 2 and done.stdout.split() == ["False", "False", "False"]
    assert done.stderr.count("\n") == 1 and "n_layers" in done.stderr


@pytest.fixture
def images(workdir):
    from PIL import Image

    (workdir / "m.keras").write_bytes(b"")  # the images are checked first
    Image.new("1", (10_000, 10_000)).save(workdir / "bomb.png")  # 12 kB, 100 million pixels
    frames = [Image.new("L", (28, 28), shade) for shade in (0, 128, 255)]
    frames[0].save(workdir / "three.gif", save_all=True, append_images=frames[1:])
    frames[0].save(workdir / "three.png", save_all=True, append_images=frames[1:])
    return workdir


@pytest.mark.parametrize("argv, expected", [
    (["predict", "bomb.png", "--model", "m.keras"], "bomb.png: over the 89478485 pixels Pillow opens safely"),
    (["predict", "three.gif", "--model", "m.keras"], "three.gif: an animation of 3 frames; give one still image"),
    (["predict", "three.png", "--model", "m.keras"], "three.png: an animation of 3 frames"),  # APNG
    (["predict", LONG, "--model", "m.keras"], "an image: 'xxxx"),
])
def test_an_image_that_is_no_still_digit_is_refused_before_tensorflow(images, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_model_path_no_file_system_takes_is_refused_in_one_line(images, capsys):
    from PIL import Image

    Image.new("L", (28, 28)).save(images / "d.png")
    assert main(["predict", "d.png", "--model", LONG]) == 2
    err = capsys.readouterr().err
    assert "--model: 'xxxx" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["predict", "bomb.png", "--model", "m.keras"],
                                  ["predict", "a-file", "--model", "m.keras"],  # refused after TensorFlow before
                                  ["optuna", "--tracking-uri", "sqlite:///a-folder"],
                                  ["optuna", "--sweep", "nan-timeout.yaml"]])
def test_these_are_refused_before_tensorflow_is_imported(images, argv):
    code = (f"import sys; from mnist_sweep.cli import main; code = main({argv!r}); "
            "print('tensorflow' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=images)
    assert done.returncode == 2 and done.stdout.split() == ["False"] and done.stderr.count("\n") == 1


def test_training_images_that_are_all_one_value_are_refused(workdir, capsys):
    arrays = {"x_train": np.zeros((60000, 28, 28), np.uint8), "y_train": np.arange(60000, dtype=np.uint8) % 10,
              "x_test": np.zeros((10000, 28, 28), np.uint8), "y_test": np.zeros(10000, np.uint8)}
    np.savez(workdir / "blank.npz", **arrays)
    assert main(["optuna", "--data", "blank.npz"]) == 2
    assert "every pixel of every training image is 0" in capsys.readouterr().err
    assert not (workdir / "mlruns").exists()


def test_predict_says_in_one_line_why_a_model_file_does_not_load(workdir, capsys):
    with zipfile.ZipFile(workdir / "odd.keras", "w") as archive:  # names a function nobody registered
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps({"module": "nowhere", "class_name": "Mystery", "config": {},
                                                    "registered_name": "nowhere>Mystery"}))
        archive.writestr("model.weights.h5", b"")
    digit = workdir / "d.png"
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(digit)
    assert main(["predict", str(digit), "--model", "odd.keras"]) == 2
    err = capsys.readouterr().err
    assert "odd.keras: not a loadable Keras model" in err and err.count("\n") == 1


@pytest.mark.parametrize("shape, classes", [((10,), 10), ((28, 28), 3)])
def test_predict_refuses_a_model_that_is_not_from_28x28_images_to_10_digits(workdir, capsys, shape, classes):
    """Another input raised inside Keras's predict; another number of classes answered digits 0-2."""
    import keras
    from PIL import Image

    keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(classes)]).save("other.keras")
    Image.new("L", (28, 28)).save(workdir / "d.png")
    assert main(["predict", "d.png", "--model", "other.keras"]) == 2
    err = capsys.readouterr().err
    assert "other.keras: a model from (None, " in err and "not from 28x28 images to 10 digits" in err
    assert err.count("\n") == 1


def test_a_sqlite_tracking_store_keeps_its_artifacts_beside_it(tmp_path, monkeypatch):
    from mnist_sweep.commands import _tracker
    from mnist_sweep.config import Settings

    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "store"
    tracker = _tracker(Settings(tracking_uri=f"sqlite:///{elsewhere / 'x.db'}"), "e")
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == (elsewhere / "artifacts" / "e").as_uri() and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("argv, env, expected", [
    (["optuna", "--data", "absent.npz"], None, "absent.npz: no such data file or folder"),
    (["kerastuner", "--data", "absent.npz"], None, "absent.npz: no such data file or folder"),
    (["final", "--study-name", "s", "--data", "absent.npz"], None, "absent.npz: no such data file or folder"),
    (["baselines", "--data", "absent.npz"], None, "absent.npz: no such data file or folder"),
    (["optuna"], "absent.npz", "absent.npz: no such data file or folder"),  # from MNIST_SWEEP_DATA
    (["optuna", "--data", "a-file"], None, "a-file: unknown data format ''"),
    (["optuna", "--data", "."], None, "no train-images-idx3-ubyte (or train-images-idx3-ubyte.gz)"),
])
def test_a_data_path_no_reader_takes_is_refused_in_under_a_second_before_tensorflow(workdir, argv, env, expected):
    # The whole command in a fresh process, imports included: what a user waits for (13 s before).
    code = (f"import sys, time; began = time.monotonic(); from mnist_sweep.cli import main; code = main({argv!r}); "
            "print(time.monotonic() - began, 'tensorflow' in sys.modules); sys.exit(code)")
    environment = {k: v for k, v in os.environ.items() if k != "MNIST_SWEEP_DATA"}
    environment.update({"MNIST_SWEEP_DATA": env} if env else {})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=workdir,
                          env=environment)
    seconds, tensorflow = done.stdout.split()
    assert done.returncode == 2 and tensorflow == "False" and float(seconds) < 1.0
    assert expected in done.stderr and done.stderr.count("\n") == 1
