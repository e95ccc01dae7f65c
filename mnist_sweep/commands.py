"""What each subcommand does, step by step: load and check inputs, search, final step, export."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import optuna

from mnist_sweep.baselines import run_baselines, table
from mnist_sweep.config import Settings, runs_dir
from mnist_sweep.data import MNIST, SearchData, load_mnist, scale, search_data
from mnist_sweep.engines import optuna as engine
from mnist_sweep.errors import UserError
from mnist_sweep.export import FILES, write_export
from mnist_sweep.final import FinalResult, run_final
from mnist_sweep.locks import exclusive
from mnist_sweep.memory import MemoryBudget
from mnist_sweep.presets import load_presets, select
from mnist_sweep.progress import Progress
from mnist_sweep.space import SearchSpace, load_space
from mnist_sweep.studies import Study
from mnist_sweep.tracking import Tracker
from mnist_sweep.trials import TrialRunner
from mnist_sweep.workers import Workers, threads_per_worker, use_threads

optuna.logging.set_verbosity(optuna.logging.ERROR)  # our line per trial (with any failure reason) replaces its logs


def sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Search with Optuna, then retrain the best once on the training set, test it once, export it.

    With several workers, this process prepares the study and starts them (`workers.py`); each
    worker comes back here with `--worker I` and only runs trials. The same command started on
    other machines with a shared --storage joins the study: the study's lock (`locks.py`) lets
    one of them prepare it and one run its final step."""
    if args.worker is not None:
        return _work(settings, args.worker)
    space = _space(settings)
    mnist, data = _inputs(settings)
    if settings.workers > 1 and settings.storage_url.startswith("sqlite:"):  # refused before it is created
        raise UserError(f"{settings.storage_url}: SQLite locks under several writing processes; pass "
                        "--workers 1, or leave out --storage for the journal file, or use PostgreSQL")
    with exclusive(settings.storage_url, settings.study):
        study, tracker, objective = _prepare(settings, space, mnist, data)
    parent = objective.parent_id
    engine.recover_stale(study, tracker, parent)
    with tracker.ended_on_error(parent):  # the parent is closed whatever stops the sweep
        _search_all(study, objective, settings, args.argv)
        with exclusive(settings.storage_url, settings.study):  # another machine may have done it: then shown
            _finish(engine.Record(study), engine.finished_count(study), mnist, tracker, settings)
    return 0


def _prepare(settings: Settings, space: SearchSpace, mnist: MNIST,
             data: SearchData) -> tuple[optuna.Study, Tracker, engine.Objective]:
    """Create or resume the study, its parent run and its warm start."""
    study = engine.open_study(settings, space)
    tracker = _tracker(settings, settings.experiment)
    record = engine.Record(study)
    _check_digest(record, mnist)
    tags = _tags(settings, mnist, space, "optuna", settings.sampler, settings.pruner)
    parent = tracker.parent_run(settings.study, tags)
    record.set_attr("mlflow_parent_run_id", parent)
    objective = engine.Objective(space, data, tracker, parent, tags, settings.seed, settings.max_mflops)
    if settings.warm_start:
        _announce_warm_start(engine.warm_start(study, load_presets(), objective))
    return study, tracker, objective


def _search_all(study: optuna.Study, objective: engine.Objective, settings: Settings, argv: list[str]) -> None:
    """Search until the study has its trials, counting those that processes elsewhere run."""
    def recover() -> None:
        engine.recover_stale(study, objective.tracker, objective.parent_id)

    while True:
        if settings.workers > 1:
            Workers(argv, settings.workers, recover).run()
        else:
            _search(study, objective, settings, bar=True)
        engine.wait_for_others(study, recover)
        if engine.trials_missing(study, settings.trials) <= 0 or settings.timeout is not None:
            return


def _work(settings: Settings, index: int) -> int:
    """One of several worker processes: trials only, with its share of the cores."""
    use_threads(threads_per_worker(settings.workers))
    space = _space(settings)
    mnist, data = _inputs(settings)
    study = engine.open_study(settings, space)
    tracker = _tracker(settings, settings.experiment)
    parent = engine.Record(study).attrs["mlflow_parent_run_id"]
    tags = _tags(settings, mnist, space, "optuna", settings.sampler, settings.pruner)
    objective = engine.Objective(space, data, tracker, parent, tags, settings.seed, settings.max_mflops)
    _search(study, objective, settings, bar=False, worker=index + 1)
    return 0


def _search(study: optuna.Study, objective: engine.Objective, settings: Settings, bar: bool, worker: int = 0) -> None:
    engine.start_search(study, settings, objective.space, worker)
    record = engine.Record(study)
    with Progress(settings.trials, engine.finished_count(study), record.best_value(), bar=bar) as progress:
        engine.optimize(study, objective, settings.trials, settings.timeout, progress,
                        MemoryBudget(settings.recycle_mb))


def kerastuner(settings: Settings, args: argparse.Namespace) -> int:
    """The same sweep, searched by Keras Tuner, recorded the same way, finished by the same step."""
    from mnist_sweep.engines import kerastuner as kt_engine

    space = _space(settings)
    kt_engine.check_tuner(settings.tuner, space)
    mnist, data = _inputs(settings)
    project = kt_engine.open_project(settings, space)
    tracker = _tracker(settings, settings.experiment)
    _check_digest(project, mnist)
    pruner = "hyperband" if settings.tuner == "hyperband" else "none"
    tags = _tags(settings, mnist, space, "keras-tuner", settings.tuner, pruner)
    parent = tracker.parent_run(settings.study, tags)
    project.set_attr("mlflow_parent_run_id", parent)
    runner = TrialRunner(space, data, tracker, parent, tags, settings.seed, settings.max_mflops)
    presets = kt_engine.fitting_presets(load_presets(), runner, settings.tuner == "hyperband") \
        if settings.warm_start else []
    if settings.tuner != "grid" and not project.trials:
        _announce_warm_start([p.name for p in presets])
    progress = Progress(settings.trials, project.finished(), project.best_value())
    with tracker.ended_on_error(parent), progress:
        kt_engine.search(settings, project, runner, progress, presets)
        _finish(project, project.finished(), mnist, tracker, settings)
    return 0


def _space(settings: Settings) -> SearchSpace:
    return load_space(settings.space).with_max_epochs(settings.max_epochs)


def _inputs(settings: Settings) -> tuple[MNIST, SearchData]:
    mnist = load_mnist(settings.data)  # checked before any trial starts
    return mnist, search_data(mnist, settings.validation_size, settings.seed, settings.search_limit)


def _tags(settings: Settings, mnist: MNIST, space: SearchSpace, engine_name: str,
          sampler: str, pruner: str) -> dict[str, str]:
    """The tags of the parent and of every trial run: the same keys for both engines."""
    return {"engine": engine_name, "study": settings.study, "sampler": sampler, "pruner": pruner,
            "data_digest": mnist.digest, "space": space.model, "test_set": mnist.test_set}


def _finish(study: Study, finished: int, mnist: MNIST, tracker: Tracker, settings: Settings) -> None:
    """Record the best trial on the parent run, run the final step, export, report, close the parent."""
    parent = study.attrs["mlflow_parent_run_id"]
    best = study.best()
    tracker.record_best(parent, best.number, best.value, best.params, finished)
    _report(study, run_final(study, mnist, tracker, settings.train_limit), settings, tracker)
    _write_report(study, tracker, Path("reports") / study.name)
    tracker.end_run(parent, "completed")


def _announce_warm_start(names: list[str]) -> None:
    if names:
        print(f"warm start: the first {len(names)} trials are the notebooks' presets that fit this space "
              f"({', '.join(names)}); --no-warm-start skips them")


def final(settings: Settings, args: argparse.Namespace) -> int:
    """Show the recorded test result of a finished study, or (with --force) evaluate again."""
    study = _load(settings)
    tracker = _tracker(settings, study.attrs["settings"]["experiment"])
    mnist = load_mnist(settings.data)
    _check_digest(study, mnist)
    result = run_final(study, mnist, tracker, settings.train_limit, force=args.force)
    _report(study, result, settings, tracker)
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the final model of a finished study, and its records, again."""
    study = _load(settings)
    record = study.attrs.get("final")
    if not record:
        raise UserError(f"study '{study.name}' has no final model yet; run "
                        f"`python -m mnist_sweep final --study-name {study.name}` first")
    tracker = _tracker(settings, study.attrs["settings"]["experiment"])
    model = tracker.load_keras_model(record["model_uri"])
    folder = write_export(settings.export_path, model, record, study.attrs["space"], _extra(study), args.formats)
    print(f"exported to {folder}: {', '.join(FILES[f] for f in args.formats)}")
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


def predict(settings: Settings, args: argparse.Namespace) -> int:
    """Classify image files with an exported model or a registered one, one line per file."""
    import numpy as np

    from mnist_sweep.images import read_digit

    images = np.stack([read_digit(Path(name)) for name in args.files])  # bad files fail before the model loads
    model = _predictor(args.model, settings)
    for name, p in zip(args.files, model.predict(scale(images), verbose=0)):
        print(f"{name}: {int(p.argmax())} (probability {float(p.max()):.3f})")
    return 0


def _predictor(source: str, settings: Settings) -> Any:
    if source.startswith(("models:/", "runs:/")):
        try:
            return _tracker(settings, settings.experiment).load_keras_model(source)
        except Exception as err:  # MLflow raises several types for "no such model"
            raise UserError(f"{source}: cannot load it from {settings.tracking} ({type(err).__name__}); "
                            "check the name and --tracking-uri") from None
    if not Path(source).is_file():
        raise UserError(f"{source}: no such model file; pass --model with an exported model.keras or "
                        "models:/NAME/latest")
    import keras

    try:
        return keras.saving.load_model(source, safe_mode=True)  # no code from a file someone handed over
    except (OSError, ValueError) as err:
        raise UserError(f"{source}: not a loadable Keras model ({type(err).__name__})") from None


def report(settings: Settings, args: argparse.Namespace) -> int:
    """The study's report, written out and logged to its parent run."""
    study = _load(settings)
    tracker = _tracker(settings, study.attrs["settings"]["experiment"])
    _write_report(study, tracker, Path(args.report_dir or Path("reports") / study.name))
    return 0


def _write_report(study: Study, tracker: Tracker, folder: Path) -> None:
    from mnist_sweep import report as rep

    written = rep.build(study, tracker, folder)
    print(written.table.head(10).to_string(index=False, max_colwidth=12))
    if written.gain:
        print(written.gain)
    for warning in written.warnings:
        print(f"warning: {warning}")
    print(f"report in {folder} ({', '.join(p.name for p in written.files)}), also on the study's parent run")


def _tracker(settings: Settings, experiment: str) -> Tracker:
    local = settings.tracking.startswith("sqlite:")
    return Tracker(settings.tracking, experiment, runs_dir() / "artifacts" if local else None)


def _load(settings: Settings) -> Study:
    """A finished study of either engine, by name: a Keras Tuner project if there is one."""
    from mnist_sweep.engines import kerastuner as kt_engine

    if kt_engine.project_exists(settings):
        return kt_engine.Project(settings.project_root, settings.study)
    return engine.Record(engine.load_study(settings))


def _check_digest(study: Study, mnist: MNIST) -> None:
    known = study.attrs.get("data_digest")
    if known is None:
        study.set_attr("data_digest", mnist.digest)
    elif known != mnist.digest:
        raise UserError(f"study '{study.name}' was run on other data (digest {known[:12]}…); "
                        "pass the same --data or use a new --study-name")



def _extra(study: Study) -> dict[str, Any]:
    return {"study": study.name, "data_digest": study.attrs.get("data_digest")}


def _report(study: Study, result: FinalResult, settings: Settings, tracker: Tracker) -> None:
    record = result.record
    if result.model is not None:
        folder = write_export(settings.export_path, result.model, record, study.attrs["space"], _extra(study))
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
