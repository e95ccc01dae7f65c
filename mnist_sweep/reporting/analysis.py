"""The finished trials of either engine as an Optuna study: importances, parallel coordinates, HTML.

Optuna's analysis and plots work on any study, so the report rebuilds one in memory from
the MLflow record rather than reading the engine's own storage (Keras Tuner has none of
Optuna's). Only completed trials go in: a pruned trial's last value is not comparable.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from mnist_sweep.outcomes import Outcome
from mnist_sweep.space import Param, SearchSpace

optuna.logging.set_verbosity(optuna.logging.ERROR)  # "A new study created in memory" is no news here


def as_study(trials: list[Any], space: SearchSpace) -> optuna.Study:
    """An in-memory study holding the completed trials, with the space's distributions."""
    study = optuna.create_study(direction="maximize")
    for trial in trials:
        if trial.outcome != Outcome.COMPLETED or trial.value is None:
            continue
        distributions = _distributions(trial.params, space)
        params = {name: trial.params[name] for name in distributions}
        try:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=trial.value))
        except ValueError:  # a value outside today's range (the space was edited since): leave it out
            continue
    return study


def _distributions(values: dict[str, Any], space: SearchSpace) -> dict[str, BaseDistribution]:
    found = {}
    for param in space.params:
        if param.kind == "fixed" or not param.active(values) or (param.per_layer and param.per_layer not in values):
            continue
        found.update({name: _distribution(param) for name in param.names(values) if name in values})
    return found


def _distribution(param: Param) -> BaseDistribution:
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=int(param.step or 1))
    if param.kind == "float":
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    return CategoricalDistribution(list(param.choices))


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA importances of the parameters every completed trial has, largest first.

    Empty when there is nothing to explain: fewer than two trials, or all with one value."""
    if len({t.value for t in study.trials}) < 2:
        return {}
    return optuna.importance.get_param_importances(study, evaluator=_evaluator())


def _evaluator() -> optuna.importance.FanovaImportanceEvaluator:
    return optuna.importance.FanovaImportanceEvaluator(seed=0)  # the same report every time


def parallel_coordinates(study: optuna.Study, names: list[str], path: Path) -> Path:
    """Optuna's parallel-coordinate plot of the completed trials over `names`, as a PNG."""
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    names = [n for n in names if len({str(t.params[n]) for t in study.trials}) > 1]  # a constant axis says nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axis = plot_parallel_coordinate(study, params=names, target_name="validation accuracy")
    axis.figure.set_size_inches(max(8.0, 1.2 * len(names)), 5)
    axis.figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def html(study: optuna.Study, names: list[str], title: str, path: Path) -> Path | None:
    """One interactive page of Optuna's plotly plots, or None when plotly is not installed."""
    try:
        import plotly  # noqa: F401  (only to learn whether it is there)
    except ImportError:
        return None
    from optuna import visualization as vis

    figures = [vis.plot_optimization_history(study, target_name="validation accuracy"),
               vis.plot_parallel_coordinate(study, params=names, target_name="validation accuracy"),
               vis.plot_slice(study, params=names, target_name="validation accuracy")]
    if len(names) > 1:
        figures.insert(1, vis.plot_param_importances(study, evaluator=_evaluator(), params=names,
                                                           target_name="validation accuracy"))
    # plotly.js once, inside the page: it opens offline and as an MLflow artifact.
    parts = [f.to_html(full_html=False, include_plotlyjs=i == 0) for i, f in enumerate(figures)]
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                    f"<body><h1>{title}</h1>{''.join(parts)}</body></html>")
    return path
