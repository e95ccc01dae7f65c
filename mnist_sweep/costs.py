"""What a network of given parameters costs, without building it: pure Python, no TensorFlow.

A search samples widths within the sweep's `max_mflops` (space.py) and refuses a network that
cannot be built, before any trial or TensorFlow is spent on it. The figures are those
`models.forward_mflops` reads off a built model; tests/test_costs.py holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mnist_sweep.space import Param, SearchSpace, layer_values

IMAGE = 28  # pixels a side; models.INPUT_SHAPE
CLASSES = 10
STRIDED_KERNEL = 5  # the kernel of a strided reduction (models._cnn)
# What a cost limit narrows while a network is sampled: the whole numbers a network's cost grows with.
GROWING = ("units", "filters", "dense_units", "convs")


def mflops(kind: str, params: dict[str, Any]) -> float:
    """Millions of floating-point operations to classify one image (a multiply-add counts two)."""
    macs = _cnn_macs(params) if kind == "cnn" else _mlp_macs(params)
    return 2 * macs / 1e6


def unbuildable(kind: str, params: dict[str, Any]) -> str | None:
    """Why `params` make no network (unpadded convolutions and pooling leave no pixel), or None."""
    if kind != "cnn":
        return None
    for block, size in enumerate(_sizes(params)):
        if size < 1:
            return f"no pixel is left after block {block + 1} (unpadded convolutions and pooling)"
    return None


def _mlp_macs(params: dict[str, Any]) -> int:
    widths = [IMAGE * IMAGE, *map(int, layer_values(params, "units", "n_layers")), CLASSES]
    return sum(a * b for a, b in zip(widths, widths[1:]))


def _blocks(params: dict[str, Any]) -> list[tuple[int, int, int, bool]]:
    """Each block's filters, kernel, convolutions and whether it ends in a reduction."""
    names = (("filters", None), ("kernel", 3), ("convs", 1), ("pool", True))
    return [(int(f), int(k), int(c), bool(p))
            for f, k, c, p in zip(*(layer_values(params, n, "n_blocks", d) for n, d in names))]


def _sizes(params: dict[str, Any]) -> list[int]:
    """The image's side after each block (below 1: nothing left)."""
    valid, strided = params.get("padding", "same") == "valid", params.get("reduction", "max") == "strided"
    size, sizes = IMAGE, []
    for _, kernel, convs, pool in _blocks(params):
        size -= convs * (kernel - 1) if valid else 0
        if pool and size >= 1:
            size = -(-size // 2) if strided else size // 2  # a padded stride 2 rounds up, pooling down
        sizes.append(size)
    return sizes


def _cnn_macs(params: dict[str, Any]) -> int:
    valid, strided = params.get("padding", "same") == "valid", params.get("reduction", "max") == "strided"
    size, channels, macs = IMAGE, 1, 0
    for filters, kernel, convs, pool in _blocks(params):
        for _ in range(convs):
            size -= kernel - 1 if valid else 0
            macs += kernel * kernel * channels * filters * size * size
            channels = filters
        if pool:
            size = -(-size // 2) if strided else size // 2
            macs += STRIDED_KERNEL ** 2 * channels * filters * size * size if strided else 0
    flat = max(size, 0) ** 2 * channels
    dense = int(params["dense_units"])
    return macs + flat * dense + dense * CLASSES


@dataclass(frozen=True)
class CostBound:
    """Networks sampled within `limit` MFLOPs: the range of each number a network's cost grows with
    (convolutions per block, widths) is cut to what the values sampled before it leave, those after
    it taken at their lows. So every draw of a space whose other structure (counts, kernels,
    reductions, padding) comes first is within the limit, if the smallest such network is, and
    none is refused after it is made; draws of other spaces can still be over, and are refused."""

    space: SearchSpace
    limit: float

    def highest(self, param: Param, name: str, values: dict[str, Any]) -> int:
        low, high = map(int, param.bounds())  # only an int parameter's range is narrowed (SearchSpace.sample)
        if param.name not in GROWING:
            return high
        known = {**self._lows(values), **values}
        try:
            self._fits(known, name, low)
        except KeyError:  # a count or width the cost needs comes later in the file: nothing to narrow by
            return high
        if self._fits(known, name, high) or not self._fits(known, name, low):
            return high if self._fits(known, name, high) else low
        while high - low > 1:  # cost grows with width: the largest that fits, by bisection
            middle = (low + high) // 2
            low, high = (middle, high) if self._fits(known, name, middle) else (low, middle)
        return low

    def _fits(self, known: dict[str, Any], name: str, width: int) -> bool:
        return mflops(self.space.model, {**known, name: width}) <= self.limit

    def _lows(self, values: dict[str, Any]) -> dict[str, Any]:
        """The growing numbers not sampled yet at their smallest (those whose layer counts are known)."""
        lows: dict[str, Any] = {}
        for p in self.space.params:
            if p.name in GROWING and p.active(values) and (p.per_layer is None or p.per_layer in values):
                smallest = p.low if p.kind in ("int", "float") else min(p.choices) if p.choices else p.value
                lows.update({n: smallest for n in p.names(values)})
        return lows
