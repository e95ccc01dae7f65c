"""A study's report from its MLflow record: trial table, presets, range warnings, plots.

It reads what both engines write the same way (the trial runs under the study's parent),
so one report serves Optuna and Keras Tuner studies alike.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_sweep.outcomes import Outcome
from mnist_sweep.presets import load_presets
from mnist_sweep.space import SearchSpace, parse_space
from mnist_sweep.studies import TEST_RESULTS, Study, TrialOutcome
from mnist_sweep.tracking import run_outcome

TOP_CURVES = 5
EDGE = 0.05  # within 5% of a range's span (on its own scale) counts as its edge


@dataclass
class Baseline:
    """A notebook preset as it scored under this project's protocol: a trial or a `baselines` run."""

    preset: str
    source: str
    val_accuracy: float
    test_accuracy: float | None = None  # the mean over its seeds, for `baselines --seeds K`
    test_std: float | None = None       # their standard deviation, with two seeds or more

    def tested(self) -> str:
        if self.test_accuracy is None:
            return ""
        spread = "" if self.test_std is None else f" ± {self.test_std:.4f}"
        return f"{self.test_accuracy:.4f}{spread}"


@dataclass
class Predictions:
    """What the final step kept of its one evaluation: true and predicted digits, the first errors."""

    truth: Any
    predicted: Any
    wrong: Any          # indices of the first misclassified test images
    wrong_images: Any   # those images


@dataclass
class Written:
    table: Any
    files: list[Path]
    warnings: list[str]
    gain: str | None


def trial_from_run(run: Any) -> TrialOutcome:
    """A trial as its MLflow run records it (either engine writes the same)."""
    metrics, tags = run.data.metrics, run.data.tags
    params = {k: _parsed(v) for k, v in run.data.params.items()}
    return TrialOutcome(int(tags["trial"]), run_outcome(run), params, metrics.get("val_accuracy"),
                        int(metrics.get("epochs_run", 0)), metrics.get("duration_s", 0.0),
                        preset=tags.get("preset"), worker=tags.get("worker", ""), run_id=run.info.run_id)


def baselines_from_runs(runs: list[Any]) -> list[Baseline]:
    """One row per preset: its `baselines` runs averaged over their seeds."""
    by_preset: dict[str, list[Any]] = {}
    for run in runs:
        by_preset.setdefault(run.data.tags["preset"], []).append(run.data.metrics)
    rows = []
    for preset, metrics in by_preset.items():
        tests = [m["test_accuracy"] for m in metrics if "test_accuracy" in m]
        source = "baselines" if len(metrics) == 1 else f"baselines, {len(metrics)} seeds"
        rows.append(Baseline(preset, source, statistics.fmean(m["val_accuracy"] for m in metrics),
                             statistics.fmean(tests) if tests else None,
                             statistics.stdev(tests) if len(tests) > 1 else None))
    return rows


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


def top(trials: list[TrialOutcome]) -> list[TrialOutcome]:
    """The best scored trials, best first."""
    scored = [t for t in trials if t.value is not None]
    return sorted(scored, key=lambda t: t.value, reverse=True)[:TOP_CURVES]


def build(study: Study, tracker: Any, folder: Path) -> Written:
    """The report of `study` from its MLflow record, written to `folder` and logged on its parent run."""
    record = study.record()
    trials = [trial_from_run(run) for run in tracker.trial_runs(record.parent_run_id)]
    trials = [t for t in trials if t.outcome != Outcome.FAILED] or trials  # a retried failure has a finished twin
    curves = {t.number: tracker.history(t.run_id, "val_accuracy") for t in top(trials)}
    space = parse_space(record.space)
    final = record.final
    kept = tracker.load_arrays(final.run_id, TEST_RESULTS) if final else None
    test = Predictions(**kept) if kept else None
    written = write(folder, trials, curves, space, _baselines(tracker, space, record.data_digest),
                    final.test_accuracy if final else None, test, final.model_name() if final else "the final model")
    parent = record.parent_run_id
    tracker.log_files(parent, written.files, "report")
    return written


def _baselines(tracker: Any, space: SearchSpace, digest: str) -> list[Baseline]:
    """The `baselines` runs of this space's presets on the same data."""
    names = {p.name for p in load_presets() if p.model == space.model}
    runs = tracker.runs(f"tags.run_kind = 'baseline' and tags.data_digest = '{digest}'")
    return baselines_from_runs([r for r in runs if r.data.tags.get("preset") in names
                                and "val_accuracy" in r.data.metrics])


def write(folder: Path, trials: list[TrialOutcome], curves: dict[int, list[float]], space: SearchSpace,
          baselines: list[Baseline], final_test: float | None, test: Predictions | None,
          final_name: str = "the final model") -> Written:
    """Every file of the report in `folder`: tables, plots, warnings, the interactive page.

    `final_test` is the final model's test accuracy, when it has one."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = table(trials)
    frame.to_csv(folder / "trials.csv", index=False)
    (folder / "trials.md").write_text(markdown(frame))
    best = top(trials)
    warnings = edge_warnings(best[0].params, space) if best else []
    (folder / "warnings.txt").write_text("".join(f"{w}\n" for w in warnings))
    rows = baselines + [Baseline(t.preset, f"trial {t.number}", t.value) for t in trials
                        if t.preset and t.value is not None]
    gain = against_presets(best[0], final_test, rows, final_name) if best and rows else None
    (folder / "presets.md").write_text(presets_markdown(rows, gain))
    files = [folder / "trials.csv", folder / "trials.md", folder / "presets.md", folder / "warnings.txt",
             *_figures(trials, curves, space, test, folder)]
    return Written(frame, files, warnings, gain)


def _figures(trials: list[TrialOutcome], curves: dict[int, list[float]], space: SearchSpace,
             test: Predictions | None, folder: Path) -> list[Path]:
    """The PNGs, and report.html where plotly is installed."""
    from mnist_sweep.reporting import analysis, plots

    scored = sorted((t for t in trials if t.value is not None), key=lambda t: t.number)
    study = analysis.as_study(trials, space)
    weights = analysis.importances(study)
    with plots.pyplot() as plt:
        written = [plots.history(plt, scored, folder / "history.png"),
                   plots.parameters(plt, scored, folder / "parameters.png"),
                   plots.curves(plt, curves, folder / "curves.png")]
        if weights:
            written += [plots.importances(plt, weights, folder / "importances.png"),
                        analysis.parallel_coordinates(study, list(weights), folder / "parallel.png")]
        if test is not None:
            matrix = plots.confusion_matrix(test.truth, test.predicted)
            written += [plots.confusion(plt, matrix, folder / "confusion.png"),
                        plots.misclassified(plt, test, folder / "misclassified.png")]
    page = analysis.html(study, list(weights), f"Study {folder.name}", folder / "report.html") if weights else None
    return written + ([page] if page else [])


def against_presets(best: TrialOutcome, final_test: float | None, rows: list[Baseline],
                    final_name: str = "the final model") -> str:
    """One sentence: how far the sweep's best trial is above the best notebook preset."""
    preset = max(rows, key=lambda r: r.val_accuracy)
    text = (f"best trial {best.number} reached {best.value:.4f} validation accuracy, "
            f"{100 * (best.value - preset.val_accuracy):+.2f} points against the best preset, "
            f"{preset.preset} ({preset.val_accuracy:.4f}, {preset.source})")
    tested = [r for r in rows if r.test_accuracy is not None]
    if final_test is not None and tested:
        test = max(tested, key=lambda r: r.test_accuracy)
        text += (f"; on the test set {final_name} scored {final_test:.4f}, "
                 f"{100 * (final_test - test.test_accuracy):+.2f} points against "
                 f"{test.preset} ({test.tested()}{'' if test.test_std is None else ', ' + test.source})")
    return text


def presets_markdown(rows: list[Baseline], gain: str | None) -> str:
    if not rows:
        return ("No notebook preset has been run on this space and data yet: `python -m mnist_sweep "
                "baselines` runs them, or a sweep with warm start tries those that fit.\n")
    lines = ["| preset | source | val_accuracy | test_accuracy |", "| --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: r.val_accuracy, reverse=True):
        lines.append(f"| {r.preset} | {r.source} | {r.val_accuracy:.4f} | {r.tested()} |")
    return "\n".join(lines) + f"\n\n{gain}.\n"


def table(trials: list[TrialOutcome]) -> Any:
    """All trials, best first: rank, outcome, validation accuracy, epochs run, time, parameters.

    `epochs_run`, not `epochs`: the space's `epochs` parameter (the planned count) is a column too."""
    import pandas as pd

    rows = [{"trial": t.number, "outcome": t.outcome.value, "val_accuracy": t.value, "epochs_run": t.epochs,
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
