"""What each subcommand does, step by step: load and check inputs, search, final step, export.

The search itself belongs to the engine (`engines/`); this module only chooses it, and runs
the steps after it the same way for both.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from mnist_sweep import engines
from mnist_sweep.baselines import run_baselines, table
from mnist_sweep.budget import choose_for_study
from mnist_sweep.config import Settings, runs_dir, sqlite_file
from mnist_sweep.data import MNIST, load_mnist, scale, search_data
from mnist_sweep.deadlines import SearchEnds, search_ends
from mnist_sweep.engines import SweepJob
from mnist_sweep.engines.specs import spec
from mnist_sweep.errors import UserError
from mnist_sweep.export import FILES, export_complete, write_export
from mnist_sweep.final import FinalResult, run_final
from mnist_sweep.outcomes import Outcome
from mnist_sweep.presets import load_presets, select
from mnist_sweep.space import SearchSpace
from mnist_sweep.studies import Study, check_digest
from mnist_sweep.tracking import Tracker


def sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Search with the settings' engine, then retrain the best once on the training set, test it
    once, export it and write the report. A worker process (`--worker I`) only runs trials."""
    engine = engines.get(settings.engine)
    ends = search_ends(settings, args.started)  # the search's share of `minutes`, or --timeout
    space = args.inputs.space  # read by the checks (checks.SweepInputs)
    mnist = load_mnist(settings.data)  # checked before any trial starts
    tracker = _tracker(settings, settings.experiment)
    job = SweepJob(settings, space, args.inputs.presets,
                   search_data(mnist, settings.validation_size, settings.seed, settings.search_limit),
                   tracker, _tags(settings, mnist, space), args.argv, args.worker, ends)
    study = engine.search(job)
    if study is None:  # a worker: the sweep's own process finishes
        return 0
    _say_if_cut_short(settings, ends, study.finished())
    parent = study.record().parent_run_id
    with study.exclusive(), tracker.ended_on_error(parent):  # another machine may have done it: then shown
        _finish(study, mnist, tracker, settings, args.started)
    tracker.end_run(parent, Outcome.COMPLETED)
    return 0


def _say_if_cut_short(settings: Settings, ends: SearchEnds, finished: int) -> None:
    """One line when the search's time (its share of `minutes`, or --timeout) ended it short of --trials."""
    if ends.last_start is None or finished >= settings.trials:
        return
    share = ends.stop_trials_at is not None and ends.last_start == ends.stop_trials_at  # the sooner of the two
    limit = (f"its share of the minutes (search_share {settings.search_share} of {settings.minutes})" if share
             else "--timeout")
    print(f"the search stopped starting trials at {limit} with {finished} of {settings.trials} trials; the final "
          "step gets the rest of the time, and the same command resumes the study towards its --trials")


def _tags(settings: Settings, mnist: MNIST, space: SearchSpace) -> dict[str, str]:
    """The tags of the parent and of every trial run: the same keys for every engine, its spec
    giving its own values (`engine`, `sampler`, `pruner`)."""
    engine = spec(settings.engine)
    return {"engine": engine.run_tag, "study": settings.study, **engine.tags(settings),
            "data_digest": mnist.digest, "space": space.model, "test_set": mnist.test_set}


def _finish(study: Study, mnist: MNIST, tracker: Tracker, settings: Settings, started: float) -> None:
    """Record the best trial on the parent run, run the final step (within what the command's
    `minutes`, counted from `started`, leave), export, report."""
    record, best = study.record(), study.best()
    tracker.record_best(record.parent_run_id, best.number, best.value, best.params, study.finished())
    result = run_final(study, mnist, tracker, _keep(study), settings.train_limit,
                       choose=lambda: choose_for_study(study, settings, len(mnist.y_train), started))
    _export_final(study, result, settings, tracker)
    _show_final(result)
    _write_report(study, tracker, Path("reports") / study.name)


def final(settings: Settings, args: argparse.Namespace) -> int:
    """Show the recorded test result of a finished study, or (with --force) evaluate again."""
    study = engines.find(settings)
    record = study.record()
    tracker = _tracker(settings, record.settings.experiment)
    mnist = load_mnist(settings.data)
    check_digest(study, record, mnist.digest)
    settings = replace(settings, final_minutes=settings.final_minutes or record.settings.final_minutes,
                       minutes=settings.minutes or record.settings.minutes,
                       final_models=args.final_models or record.settings.final_models or 1)  # as the sweep had them
    with study.exclusive():  # one process at a time in a study's final step
        result = run_final(study, mnist, tracker, _keep(study), settings.train_limit, force=args.force,
                           choose=lambda: choose_for_study(study, settings, len(mnist.y_train), args.started))
        _export_final(study, result, settings, tracker)
    _show_final(result)
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the final model of a finished study, and its records, again."""
    study = engines.find(settings)
    record = study.record()
    if record.final is None:
        raise UserError(f"study '{study.name}' has no final model yet; run "
                        f"`python -m mnist_sweep final --study-name {study.name}` first")
    if record.final.model_uri is None:
        raise UserError(f"study '{study.name}': its final model is not logged yet (the final step was stopped "
                        f"after its evaluation); run `python -m mnist_sweep final --study-name {study.name}` "
                        "to finish it")
    tracker = _tracker(settings, record.settings.experiment)
    model = tracker.load_keras_model(record.final.model_uri)
    folder = write_export(settings.export_path, model, record.final.params, record.space,
                          record.final.metrics(study.name, record.data_digest), args.formats)
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
                         settings.max_epochs, args.seeds)
    print(table(rows))
    return 0


def predict(settings: Settings, args: argparse.Namespace) -> int:
    """Classify image files with an exported model or a registered one, one line per file."""
    import numpy as np

    from mnist_sweep.images import read_digit

    images = np.stack([read_digit(Path(name)) for name in args.files])  # bad files fail before the model loads
    model = _digit_model(_predictor(args.model, settings), args.model)
    for name, p in zip(args.files, model.predict(scale(images), verbose=0)):
        print(f"{name}: {int(p.argmax())} (probability {float(p.max()):.3f})")
    return 0


def _digit_model(model: Any, source: str) -> Any:
    """A model from 28x28 images to 10 digits; any other raised inside Keras's predict (another
    input), or answered a digit it cannot be (another number of classes)."""
    inputs, outputs = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if not isinstance(inputs, tuple) or tuple(inputs[1:]) not in ((28, 28), (28, 28, 1)) \
            or not isinstance(outputs, tuple) or outputs[-1] != 10:
        raise UserError(f"{source}: a model from {inputs} to {outputs}, not from 28x28 images to 10 digits; "
                        "pass a model this project exported")
    return model


def _predictor(source: str, settings: Settings) -> Any:
    if source.startswith(("models:/", "runs:/")):
        try:
            return _tracker(settings, settings.experiment).load_keras_model(source)
        except Exception as err:  # MLflow raises several types for "no such model"
            raise UserError(f"{source}: cannot load it from {settings.tracking} ({type(err).__name__}); "
                            "check the name and --tracking-uri") from None
    if not Path(source).is_file():
        raise UserError(f"{source}: no such model file; pass --model with an exported model.keras or "
                        "models:/NAME@champion")
    import keras

    try:
        return keras.saving.load_model(source, safe_mode=True)  # no code from a file someone handed over
    except Exception as err:  # Keras raises many types for a file it cannot rebuild a model from
        raise UserError(f"{source}: not a loadable Keras model ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:120] if str(err) else 'no detail'})") from None


def report(settings: Settings, args: argparse.Namespace) -> int:
    """The study's report, written out and logged to its parent run."""
    study = engines.find(settings)
    tracker = _tracker(settings, study.record().settings.experiment)
    _write_report(study, tracker, Path(args.report_dir or Path("reports") / study.name))
    return 0


def _write_report(study: Study, tracker: Tracker, folder: Path) -> None:
    from mnist_sweep.reporting import report as rep

    written = rep.build(study, tracker, folder)
    print(written.table.head(10).to_string(index=False, max_colwidth=12))
    if written.gain:
        print(written.gain)
    for warning in written.warnings:
        print(f"warning: {warning}")
    print(f"report in {folder} ({', '.join(p.name for p in written.files)}), also on the study's parent run")


def _tracker(settings: Settings, experiment: str) -> Tracker:
    """MLflow's store; a SQLite file's artifacts go beside it (mlruns/artifacts for the default one)."""
    database = sqlite_file(settings.tracking)
    return Tracker(settings.tracking, experiment, database.parent.resolve() / "artifacts" if database else None)


def _keep(study: Study) -> Path:
    """Where the final step keeps each evaluated model until MLflow holds it."""
    return runs_dir() / "finals" / study.name


def _export_final(study: Study, result: FinalResult, settings: Settings, tracker: Tracker) -> None:
    """The final model in the export folder with its records, also on its run: written after a new
    evaluation, and again whenever the folder does not hold what the record says (a kill, a user)."""
    record, final = study.record(), result.record
    metrics = final.metrics(study.name, record.data_digest)
    if result.model is None and export_complete(settings.export_path, metrics):
        return
    model = result.model if result.model is not None else tracker.load_keras_model(final.model_uri)
    folder = write_export(settings.export_path, model, final.params, record.space, metrics)
    # The records beside the model, one click away on the final run (the model itself is logged already).
    tracker.log_files(final.run_id, [folder / n for n in ("params.json", "search_space.yaml", "metrics.json")])
    print(f"exported to {folder}")


def _show_final(result: FinalResult) -> None:
    final = result.record
    if result.reused:
        how = "as recorded earlier; --force evaluates again"
    else:
        how = f"test set evaluation number {final.evaluations}" + (", forced" if final.forced else "")
    epochs = f" for {final.epochs} epochs" if final.members == 1 else f", the first for {final.epochs} epochs"
    # The first member is not always the study's best trial (an augmented one tied with it may lead):
    # the line names it by number only, beside its own score, and leaves "best" to the report.
    print(f"{final.model_name()[4:]} on {final.train_size} images{epochs} (trial {final.trial}: val_accuracy "
          f"{final.val_accuracy:.4f}); test_accuracy {final.test_accuracy:.4f} ({how})")
