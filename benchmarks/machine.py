"""The machine a benchmark ran on: every benchmark prints its CPU beside its figures, because the
CPU behind this project's machines changes from session to session and figures from two CPUs
must never share a ratio."""

from __future__ import annotations

import os
import platform
from pathlib import Path

FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "fma")


def cpu() -> dict[str, object]:
    """Model name, logical CPUs and the vector flags that matter for training speed (Linux)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "cpus": os.cpu_count(), "flags": [f for f in FLAGS_OF_NOTE if f in flags]}


def headline() -> str:
    info = cpu()
    return f"CPU: {info['model']}, {info['cpus']} logical CPUs, flags {' '.join(info['flags']) or '-'}"
