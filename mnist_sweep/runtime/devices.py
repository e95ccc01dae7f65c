"""GPUs, where a machine has them: memory growth on, and one worker process per GPU, each pinned
to its own with CUDA_VISIBLE_DEVICES. Without the growth setting every TensorFlow process takes
all of the first GPU's memory, so a second worker could not start. (This project is built and
tested on CPU-only machines: the GPU path is unit-tested with a faked device list only.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def configure(tf: Any) -> list[Any]:
    """Memory growth on every visible GPU, before any of them is used; the GPUs found."""
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    return gpus


def plan(requested: int | None, default: int, gpus: int) -> tuple[int, Callable[[int], dict[str, str]]]:
    """How many worker processes, and each one's environment: with GPUs one per GPU unless the
    user said otherwise, worker I on GPU I (round robin when there are more workers than GPUs)."""
    count = requested if requested is not None else (gpus or default)
    if not gpus:
        return count, lambda index: {}
    return count, lambda index: {"CUDA_VISIBLE_DEVICES": str(index % gpus)}


def gpu_count() -> int:
    """The GPUs the process sees (TensorFlow is loaded by then, quiet.py)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))
