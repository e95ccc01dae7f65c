"""A study's report from its MLflow record: the trial table, range warnings, plots.

It reads what both engines write the same way (the trial runs under the study's parent),
so one report serves Optuna and Keras Tuner studies alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_sweep.space import SearchSpace

TOP_CURVES = 5
EDGE = 0.05  # within 5% of a range's span (on its own scale) counts as its edge


@dataclass
class Trial:
    number: int
    outcome: str
    value: float | None
    epochs: int
    seconds: float
    params: dict[str, Any]
    run_id: str


def trial_from_run(run: Any) -> Trial:
    """A trial as its MLflow run records it (either engine writes the same)."""
    metrics, tags = run.data.metrics, run.data.tags
    return Trial(int(tags["trial"]), tags.get("outcome", "?"), metrics.get("val_accuracy"),
                 int(metrics.get("epochs_run", 0)), metrics.get("duration_s", 0.0),
                 {k: _parsed(v) for k, v in run.data.params.items()}, run.info.run_id)


def _parsed(text: str) -> Any:
    """MLflow keeps parameters as text; the report plots them as the numbers they were."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def top(trials: list[Trial]) -> list[Trial]:
    """The best scored trials, best first."""
    scored = [t for t in trials if t.value is not None]
    return sorted(scored, key=lambda t: t.value, reverse=True)[:TOP_CURVES]


def write(folder: Path, trials: list[Trial], curves: dict[int, list[float]],
          space: SearchSpace) -> tuple[Any, list[Path], list[str]]:
    """trials.csv, trials.md, the plots and warnings.txt in `folder`: the table, files, warnings."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = table(trials)
    frame.to_csv(folder / "trials.csv", index=False)
    (folder / "trials.md").write_text(markdown(frame))
    best = top(trials)
    warnings = edge_warnings(best[0].params, space) if best else []
    (folder / "warnings.txt").write_text("".join(f"{w}\n" for w in warnings))
    files = [folder / "trials.csv", folder / "trials.md", *plots(trials, curves, folder), folder / "warnings.txt"]
    return frame, files, warnings


def table(trials: list[Trial]) -> Any:
    """All trials, best first: rank, outcome, validation accuracy, epochs, time, parameters."""
    import pandas as pd

    rows = [{"trial": t.number, "outcome": t.outcome, "val_accuracy": t.value, "epochs": t.epochs,
             "seconds": round(t.seconds, 1), **t.params} for t in trials]
    frame = pd.DataFrame(rows).sort_values("val_accuracy", ascending=False, na_position="last")
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def markdown(frame: Any) -> str:
    """A Markdown table, without pandas' optional `tabulate`."""
    cells = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value)


def edge_warnings(best: dict[str, Any], space: SearchSpace) -> list[str]:
    """The best trial's numeric values that sit at an end of their range: the range may be too small."""
    warnings = []
    for param in space.params:
        if param.kind not in ("int", "float"):
            continue
        for name in param.names(best) if param.active(best) else []:
            value = best.get(name)
            where = _edge(float(value), param.low, param.high, param.log) if value is not None else None
            if where:
                warnings.append(f"best {name} = {value:.4g} is at the {where} end of its range "
                                f"[{param.low:g}, {param.high:g}]; the range may be too small")
    return warnings


def _edge(value: float, low: float, high: float, log: bool) -> str | None:
    scale = math.log if log else (lambda v: v)
    span = scale(high) - scale(low)
    if span <= 0:
        return None
    position = (scale(value) - scale(low)) / span
    return "low" if position <= EDGE else "high" if position >= 1 - EDGE else None


def plots(trials: list[Trial], curves: dict[int, list[float]], folder: Path) -> list[Path]:
    """history.png, parameters.png and curves.png in `folder`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    scored = sorted((t for t in trials if t.value is not None), key=lambda t: t.number)
    written = [_history(plt, scored, folder / "history.png"), _parameters(plt, scored, folder / "parameters.png"),
               _curves(plt, curves, folder / "curves.png")]
    plt.close("all")
    return written


def _history(plt: Any, scored: list[Trial], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    colours = {"completed": "tab:blue", "pruned": "tab:gray"}
    for outcome, colour in colours.items():
        chosen = [t for t in scored if t.outcome == outcome]
        axis.scatter([t.number for t in chosen], [t.value for t in chosen], c=colour, s=18, label=outcome)
    best, so_far = [], -1.0
    for t in scored:
        so_far = max(so_far, t.value) if t.outcome == "completed" else so_far
        best.append(so_far if so_far >= 0 else None)
    axis.plot([t.number for t in scored], best, c="tab:red", label="best completed so far")
    axis.set(xlabel="trial", ylabel="validation accuracy", title="Optimization history")
    axis.legend(loc="lower right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _parameters(plt: Any, scored: list[Trial], path: Path) -> Path:
    names = sorted({k for t in scored for k in t.params})
    cols = 4
    rows = max(1, math.ceil(len(names) / cols))
    figure, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        pairs = [(t.params[name], t.value) for t in scored if name in t.params]
        xs = [str(x) if isinstance(x, (bool, str)) else x for x, _ in pairs]
        axis.scatter(xs, [v for _, v in pairs], s=12)
        axis.set_title(name, fontsize=9)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.suptitle("Each parameter against validation accuracy")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _curves(plt: Any, curves: dict[int, list[float]], path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for number, values in curves.items():
        axis.plot(range(1, len(values) + 1), values, marker=".", label=f"trial {number}")
    axis.set(xlabel="epoch", ylabel="validation accuracy", title=f"Learning curves of the top {len(curves)} trials")
    axis.legend(loc="lower right")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path
