"""GPUs, where a machine has them: memory growth on, and each worker process pinned to its own
with CUDA_VISIBLE_DEVICES. Without the growth setting every TensorFlow process takes
all of the first GPU's memory, so a second worker could not start. (This project is built and
tested on CPU-only machines: the GPU path is unit-tested with a faked device list only.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def configure(tf: Any) -> list[Any]:
    """Memory growth on every visible GPU, before any of them is used; the GPUs found."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    return gpus


def placement(gpus: int) -> Callable[[int], dict[str, str]]:
    """Each worker process's environment: with GPUs worker I on the I-th GPU this process sees
    (round robin when there are more workers than GPUs); without, nothing. How many workers there
    are is the settings' rule (config.Settings.workers_on), not this module's."""
    if not gpus:
        return lambda index: {}
    ids = visible_ids(gpus)
    return lambda index: {"CUDA_VISIBLE_DEVICES": ids[index % gpus]}


def visible_ids(gpus: int) -> list[str]:
    """The GPUs this process sees, as CUDA names them. The user's own CUDA_VISIBLE_DEVICES (say
    `2,3`, or GPU UUIDs) is renumbered from 0 inside the process: a worker given `0` would land
    on the machine's first GPU, outside what the user allowed, so the listed ids are passed on."""
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:gpus] if len(listed) >= gpus else [str(i) for i in range(gpus)]


def gpu_count() -> int:
    """The GPUs the process sees (TensorFlow is loaded by then, quiet.py)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))
