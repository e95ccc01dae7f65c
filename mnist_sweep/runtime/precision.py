"""The number format a process trains in: float32, or bfloat16 where the CPU multiplies it in hardware.

bfloat16 is Keras's mixed precision (`mixed_bfloat16`): the weights stay float32, the layers
compute in bfloat16, and the output layer in float32 (models.py), so the probabilities and the
loss keep their precision. On the Intel Xeon with AMX of 2026-12-07 it trained notebook 003's CNN
2.05x and the MLP 1.06x as fast as float32 (benchmarks/throughput.py), and the default MLP sweep
tested alike (docs/benchmarks.md). A CPU without AMX's bfloat16 tiles converts in software, so `auto` keeps
float32 there, and on a GPU. The served model computes in float32 whatever trained it
(models.serving_model): exported files, TFLite and ONNX see no bfloat16.

The choice lives in this process's environment, so the processes it starts (the final step's
members, the sweep's workers) compute alike; Keras forgets its policy at every clear_session, so
models.fresh_session applies it again before each model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

_CHOSEN = "MNIST_SWEEP_COMPUTE"  # what `use` resolved, for this process and those it starts
HARDWARE_FLAG = "amx_bf16"  # /proc/cpuinfo's flag for AMX's bfloat16 tiles


class Precision(str, Enum):
    """The number formats a model trains in, as --precision spells them; auto resolves to one of the others."""

    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"

    __str__ = str.__str__  # the word, in tags and messages, on every Python (see outcomes.Outcome)
    __format__ = str.__format__  # type: ignore[assignment]

    @property
    def policy(self) -> str:
        """Keras's name for it: bfloat16 is Keras's mixed precision, the weights kept in float32."""
        return {Precision.FLOAT32: "float32", Precision.BFLOAT16: "mixed_bfloat16"}[self]


CHOICES = tuple(p.value for p in Precision)


def resolve(choice: str, gpus: int = 0) -> Precision:
    """float32 or bfloat16: `auto` is bfloat16 on a CPU with AMX's bfloat16 tiles and no GPU."""
    chosen = Precision(choice)
    if chosen != Precision.AUTO:
        return chosen
    return Precision.BFLOAT16 if gpus == 0 and HARDWARE_FLAG in cpu_flags() else Precision.FLOAT32


def use(choice: str, gpus: int = 0) -> Precision:
    """Train in `choice` from now on, here and in the processes this one starts; what it resolved to."""
    os.environ[_CHOSEN] = resolve(choice, gpus).value
    apply()
    return current()


def current() -> Precision:
    """What this process trains in: float32 unless `use` (here or in a parent) chose otherwise."""
    return Precision(os.environ.get(_CHOSEN, Precision.FLOAT32.value))


def apply() -> None:
    """Set Keras's policy for the models built next (after a clear_session, again)."""
    import keras

    keras.mixed_precision.set_global_policy(current().policy)


@contextmanager
def in_float32() -> Iterator[None]:
    """Models built within compute in float32, whatever this process trains in: a served model's
    saved config then names no bfloat16 policy, for its container as for its layers."""
    import keras

    before = keras.mixed_precision.global_policy()  # restored as it was, even within another such block
    keras.mixed_precision.set_global_policy(Precision.FLOAT32.policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them; none elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())
