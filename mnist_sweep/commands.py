"""What each subcommand does, step by step: load and check inputs, search, final step, export."""

from __future__ import annotations

import argparse
from typing import Any

import optuna

from mnist_sweep.baselines import run_baselines, table
from mnist_sweep.config import Settings, runs_dir
from mnist_sweep.data import MNIST, load_mnist, search_data
from mnist_sweep.engines import optuna as engine
from mnist_sweep.errors import UserError
from mnist_sweep.export import write_export
from mnist_sweep.final import FinalResult, run_final
from mnist_sweep.presets import load_presets, select
from mnist_sweep.progress import Progress
from mnist_sweep.space import load_space
from mnist_sweep.tracking import Tracker

optuna.logging.set_verbosity(optuna.logging.ERROR)  # our line per trial (with any failure reason) replaces its logs


def sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Search, then retrain the best once on the training set, test it once, and export it."""
    space = load_space(settings.space).with_max_epochs(settings.max_epochs)
    mnist = load_mnist(settings.data)  # checked before any trial starts
    data = search_data(mnist, settings.validation_size, settings.seed, settings.search_limit)
    tracker = _tracker(settings, settings.experiment)
    study = engine.open_study(settings, space)
    _check_digest(study, mnist)
    tags = {"engine": "optuna", "study": settings.study, "sampler": settings.sampler,
            "pruner": settings.pruner, "data_digest": mnist.digest, "space": space.model}
    parent = tracker.parent_run(settings.study, tags)
    study.set_user_attr("mlflow_parent_run_id", parent)
    engine.recover_stale(study, tracker, parent)
    objective = engine.Objective(space, data, tracker, parent, tags, settings.seed, settings.max_mflops)
    if settings.warm_start:
        _announce_warm_start(engine.warm_start(study, load_presets(), objective))
    progress = Progress(settings.trials, engine.finished_count(study), _best_value(study))
    with tracker.ended_on_error(parent), progress:  # the parent is closed whatever stops the sweep
        engine.optimize(study, objective, settings.trials, settings.timeout, progress)
        best = engine.best_summary(study)
        tracker.record_best(parent, best["number"], best["value"], best["params"], engine.finished_count(study))
        _report(study, run_final(study, mnist, tracker, settings.train_limit), settings, tracker)
    tracker.end_run(parent, "completed")
    return 0


def _announce_warm_start(names: list[str]) -> None:
    if names:
        print(f"warm start: the first {len(names)} trials are the notebooks' presets that fit this space "
              f"({', '.join(names)}); --no-warm-start skips them")


def final(settings: Settings, args: argparse.Namespace) -> int:
    """Show the recorded test result of a finished study, or (with --force) evaluate again."""
    study = engine.load_study(settings)
    tracker = _tracker(settings, study.user_attrs["settings"]["experiment"])
    mnist = load_mnist(settings.data)
    _check_digest(study, mnist)
    result = run_final(study, mnist, tracker, settings.train_limit, force=args.force)
    _report(study, result, settings, tracker)
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the final model of a finished study, and its records, again."""
    study = engine.load_study(settings)
    record = study.user_attrs.get("final")
    if not record:
        raise UserError(f"study '{study.study_name}' has no final model yet; run "
                        f"`python -m mnist_sweep final --study-name {study.study_name}` first")
    tracker = _tracker(settings, study.user_attrs["settings"]["experiment"])
    model = tracker.load_keras_model(record["model_uri"])
    folder = write_export(settings.export_path, model, record, study.user_attrs["space"], _extra(study))
    print(f"exported to {folder}")
    return 0


def baselines(settings: Settings, args: argparse.Namespace) -> int:
    """Train the notebooks' presets (or list them) and print them beside what they reported."""
    chosen = select(load_presets(), args.only)
    if args.list:
        for p in chosen:
            reported = "-" if p.reported is None else f"{p.reported:.4f}"
            print(f"{p.name:30s} notebook {p.notebook}  {p.model}  reported {reported}  {p.params}")
        return 0
    mnist = load_mnist(settings.data)
    data = search_data(mnist, settings.validation_size, settings.seed, settings.train_limit)
    rows = run_baselines(chosen, mnist, data, _tracker(settings, settings.experiment), settings.seed,
                         settings.max_epochs)
    print(table(rows))
    return 0


def _tracker(settings: Settings, experiment: str) -> Tracker:
    local = settings.tracking.startswith("sqlite:")
    return Tracker(settings.tracking, experiment, runs_dir() / "artifacts" if local else None)


def _check_digest(study: optuna.Study, mnist: MNIST) -> None:
    known = study.user_attrs.get("data_digest")
    if known is None:
        study.set_user_attr("data_digest", mnist.digest)
    elif known != mnist.digest:
        raise UserError(f"study '{study.study_name}' was run on other data (digest {known[:12]}…); "
                        "pass the same --data or use a new --study-name")


def _best_value(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:
        return None


def _extra(study: optuna.Study) -> dict[str, Any]:
    return {"study": study.study_name, "data_digest": study.user_attrs.get("data_digest")}


def _report(study: optuna.Study, result: FinalResult, settings: Settings, tracker: Tracker) -> None:
    record = result.record
    if result.model is not None:
        folder = write_export(settings.export_path, result.model, record, study.user_attrs["space"], _extra(study))
        # The records beside the model, one click away on the final run (the model itself is logged already).
        tracker.log_files(record["run_id"], [folder / n for n in ("params.json", "search_space.yaml", "metrics.json")])
        print(f"exported to {folder}")
    if result.reused:
        how = "as recorded earlier; --force evaluates again"
    else:
        how = f"test set evaluation number {record['evaluations']}" + (", forced" if record["forced"] else "")
    print(f"best trial {record['trial']}: val_accuracy {record['val_accuracy']:.4f}; retrained on "
          f"{record['train_size']} images for {record['epochs']} epochs; test_accuracy "
          f"{record['test_accuracy']:.4f} ({how})")
