"""Write the final model and what is needed to trust it: parameters, search space, metrics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from mnist_sweep.errors import UserError

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
FILES = {"keras": "model.keras", "savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}


def write_export(folder: Path, model: Any, params: dict[str, Any], space: dict[str, Any],
                 metrics: dict[str, Any], formats: tuple[str, ...] = ("keras",)) -> Path:
    """The model in `formats`, params.json, search_space.yaml and metrics.json in `folder`."""
    partial = folder / ".partial"  # written aside first, so a failure leaves the old export intact
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in formats:
        _WRITERS[name](model, partial / FILES[name])
    (partial / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    (partial / "search_space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    (partial / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    # metrics.json last: it names the evaluation, so a folder whose metrics.json says so holds its model.
    for path in sorted(partial.iterdir(), key=lambda p: p.name == "metrics.json"):
        _move(path, folder / path.name)
    partial.rmdir()
    return folder


def _move(path: Path, target: Path) -> None:
    if target.is_dir():  # a savedmodel folder from an earlier export
        shutil.rmtree(target)
    os.replace(path, target)


def export_complete(folder: Path, metrics: dict[str, Any], formats: tuple[str, ...] = ("keras",)) -> bool:
    """Whether `folder` holds the model of the evaluation `metrics` describes, and its records."""
    names = [FILES[f] for f in formats] + ["params.json", "search_space.yaml", "metrics.json"]
    if not all((folder / name).exists() for name in names):
        return False
    try:
        return json.loads((folder / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    except (OSError, ValueError):
        return False


def _savedmodel(model: Any, path: Path) -> None:
    serving_model(model).export(str(path), format="tf_saved_model", verbose=False)


def _tflite(model: Any, path: Path) -> None:
    # Keras's own LiteRT (TFLite) export: TensorFlow marks its converter's direct use deprecated.
    # Keras before 3.13 (the floor is 3.8) has none: there, the converter on a SavedModel.
    if keras_has_litert():
        serving_model(model).export(str(path), format="litert", verbose=False)
        return
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        _savedmodel(model, Path(folder) / "savedmodel")
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(f"{folder}/savedmodel").convert())


def keras_has_litert() -> bool:
    import keras

    return tuple(int(n) for n in keras.__version__.split(".")[:2]) >= (3, 13)


def _onnx(model: Any, path: Path) -> None:
    try:
        import tf2onnx  # noqa: F401  (Keras's ONNX export converts through it)
    except ImportError:
        raise UserError("--format onnx needs tf2onnx: pip install -e '.[onnx]'") from None
    serving_model(model).export(str(path), format="onnx", verbose=False)


def _keras(model: Any, path: Path) -> None:
    serving_model(model).save(path)


def serving_model(model: Any) -> Any:
    """models.serving_model, imported when an export is written: this module loads without Keras."""
    from mnist_sweep.models import serving_model as served

    return served(model)


_WRITERS = {"keras": _keras, "savedmodel": _savedmodel, "tflite": _tflite,
            "onnx": _onnx}
