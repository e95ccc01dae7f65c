"""Write the final model and what is needed to trust it: parameters, search space, metrics."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

METRIC_KEYS = ("test_accuracy", "test_loss", "val_accuracy", "trial", "epochs", "train_size",
               "evaluated_at", "run_id", "model_uri")


def write_export(folder: Path, model: Any, record: dict[str, Any], space: dict[str, Any],
                 extra: dict[str, Any]) -> Path:
    """model.keras, params.json, search_space.yaml and metrics.json in `folder`, replaced whole."""
    partial = folder / ".partial"  # written aside first, so a failure leaves the old export intact
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save(partial / "model.keras")
    (partial / "params.json").write_text(json.dumps(record["params"], indent=2, sort_keys=True) + "\n")
    (partial / "search_space.yaml").write_text(yaml.safe_dump(space, sort_keys=False))
    metrics = {k: record[k] for k in METRIC_KEYS if k in record} | extra
    (partial / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    for path in partial.iterdir():
        os.replace(path, folder / path.name)
    partial.rmdir()
    return folder
