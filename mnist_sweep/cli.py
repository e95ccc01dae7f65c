"""Command line: parse, load, call. The work lives in the modules it calls."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

# Keras Tuner's chief serves gRPC while it starts worker processes, which exec at once: gRPC's
# fork handlers have nothing to do, and would only say so on stderr at every start.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from mnist_sweep import __version__  # noqa: E402
from mnist_sweep.checks import before_data  # noqa: E402
from mnist_sweep.config import ENVIRONMENT, PRECEDENCE, SETTINGS, Settings, load_settings  # noqa: E402
from mnist_sweep.declare import positive_int  # noqa: E402
from mnist_sweep.engines.specs import EngineSpec, names, spec, specs  # noqa: E402
from mnist_sweep.errors import (CANNOT_GO_ON_EXIT, RECYCLE_EXIT, USER_ERROR_EXIT,  # noqa: E402
                                Recycle, SweepCannotGoOn, UserError)
from mnist_sweep.files import find_file  # noqa: E402
from mnist_sweep.quiet import load_tensorflow  # noqa: E402
from mnist_sweep.runtime import devices, precision, signals  # noqa: E402
from mnist_sweep.runtime.memory import restart, restart_command  # noqa: E402
from mnist_sweep.runtime.workers import STARTED_ENV  # noqa: E402


# Every command's --help ends with where its settings come from, one rule for all of them.
SETTINGS_ORDER = (f"Precedence, the same for every setting: {PRECEDENCE}. Environment variables: "
                  + ", ".join(f"{name} (--{key.replace('_', '-')})" for key, name in ENVIRONMENT.items()) + ".")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, like every other bad input
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

# RFC 1123: labels of letters, digits and inner hyphens, 1-63 characters, 253 in all.
HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:  # else the UI's server fails to bind, with a traceback and exit 0
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not '{text}'")
    return value


def _seeds(text: str) -> int:
    from mnist_sweep.seeds import SEED_ROOM

    value = positive_int(text)
    if value > SEED_ROOM:  # --seed+K-1 must stay a seed numpy takes (below 2**32)
        raise argparse.ArgumentTypeError(f"must be at most {SEED_ROOM}, not '{text}'")
    return value


def _host(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        if HOST_NAME.fullmatch(text):
            return text  # a host name; whether it resolves, the server says
    raise argparse.ArgumentTypeError(f"'{text[:100]}' is not an address or host name (say 127.0.0.1 or 0.0.0.0)")


def _formats(text: str) -> tuple[str, ...]:
    from mnist_sweep.export import FORMATS  # light: no TensorFlow at import

    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown format '{unknown[0] if unknown else text}'; "
                                         f"choose from {', '.join(FORMATS)}")
    return names


def _settings_args(p: argparse.ArgumentParser, command: str, engine: EngineSpec | None) -> None:
    """The flags of the settings (config.Settings) that `command` takes, as each declares it."""
    for setting in SETTINGS:
        if setting.offered_in(command, engine is not None):
            help = setting.helps.get(command, setting.help)
            setting.add_flag(p, help if setting.engine_help is None else _engine_help(setting.engine_help, engine))


def _engine_help(attribute: str, engine: EngineSpec | None) -> str:
    """--study-name's, --storage's and --workers' help: the sweep's engine says it; in final, export
    and report, where no engine is chosen yet, the default engine does, or each engine for its store."""
    if engine is not None:
        return getattr(engine, attribute)
    if attribute == "storage_help":
        return ", or ".join(e.found_storage_help for e in specs())
    return getattr(spec(Settings().engine), attribute)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnist-sweep", description="Hyperparameter sweeps for Keras models on MNIST.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for engine in specs():  # each engine's sweep command, named after it
        run = sub.add_parser(engine.name, help=engine.help, description=engine.description)
        run.add_argument("--sweep", help=f"sweep settings: a name in sweeps/ or a path (default: {engine.sweep_help})")
        _settings_args(run, engine.name, engine)
        engine.add_arguments(run)
        run.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # set by the sweep for the processes it starts
    final = sub.add_parser("final", help="retrain a finished study's best on all training images, test once")
    final.add_argument("--force", action="store_true", help="evaluate on the test set again (recorded)")
    export = sub.add_parser("export", help="write a finished study's final model and its records again")
    export.add_argument("--format", dest="formats", type=_formats, default=("keras",),
                        help="one or more of keras, savedmodel, tflite, onnx, comma-separated (default: keras); "
                             "onnx needs pip install -e '.[onnx]'")
    base = sub.add_parser("baselines", help="train the notebooks' presets under this project's protocol")
    base.add_argument("--list", action="store_true", help="print the presets without training")
    base.add_argument("--only", metavar="NAME", help="train one preset")
    base.add_argument("--seeds", type=_seeds, default=1,
                      help="train each preset with K seeds (--seed, --seed+1, ...) and print the mean and "
                           "standard deviation of its test accuracy beside what its notebook reported")
    rep = sub.add_parser("report", help="a study's trial table, gain over the presets, range warnings and "
                                        "plots (every sweep writes it at its end)")
    rep.add_argument("--report-dir", help="default: reports/<study>/")
    predict = sub.add_parser("predict", help="classify PNG/JPEG images of digits with an exported or registered model")
    predict.add_argument("files", nargs="+", metavar="FILE", help="images of one digit each, any size; "
                                                                  "dark on light (paper) is inverted")
    predict.add_argument("--model", default="models/mlp-optuna/model.keras",
                         help="an exported model.keras or a registered model, models:/NAME@champion (a "
                              "study's newest final model) (default: models/mlp-optuna/model.keras, the "
                              "default sweep's export)")
    ui = sub.add_parser("ui", help="open the MLflow UI over the project's tracking store")
    ui.add_argument("--host", type=_host, default="127.0.0.1", help="default: 127.0.0.1 (this machine only)")
    ui.add_argument("--port", type=_port, default=5000)
    for command in ("final", "export", "baselines", "report", "predict", "ui"):
        _settings_args(sub.choices[command], command, None)
    for p in (parser, *sub.choices.values()):
        p.epilog = SETTINGS_ORDER
    return parser


def _started(program: bool, worker: int | None) -> float:
    """When this command began, in seconds since the epoch: a process that outgrew its memory goes on
    with os.execv (runtime/memory.py), which keeps its PID and so its creation time; a caller's
    main() begins now; a worker's command began when the sweep's that started it did."""
    if worker is not None and STARTED_ENV in os.environ:
        return float(os.environ[STARTED_ENV])
    if program:
        import psutil

        started = psutil.Process().create_time()
    else:
        started = time.time()
    os.environ[STARTED_ENV] = repr(started)  # for the workers this command starts, a caller's too
    return started


def main(argv: list[str] | None = None) -> int:
    program = argv is None  # only the program itself may replace its process, never a caller's
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed on one line
        return int(stop.code or 0)
    try:
        if args.command == "ui":
            return _ui(args)
        settings = _settings(args)
        inputs = before_data(args.command, settings, args)  # in a fraction of a second, before TensorFlow loads
        load_tensorflow()
        precision.use(settings.precision, devices.gpu_count())  # before any model, here and in what it starts
        from mnist_sweep import commands  # heavy: TensorFlow, Optuna, MLflow

        handler = {**dict.fromkeys(names(), commands.sweep), "final": commands.final,
                   "export": commands.export, "baselines": commands.baselines,
                   "predict": commands.predict, "report": commands.report}[args.command]
        signals.install()  # a plain `kill` ends trials as cleanly as Ctrl-C
        args.argv = argv  # the command as given: worker processes run it again
        args.inputs = inputs  # a sweep's space and presets, as the checks read them
        args.started = _started(program, getattr(args, "worker", None))
        return handler(settings, args)
    except Recycle as grown:
        return _recycle(grown, restart_command(argv), program)
    except UserError as err:
        print(f"mnist-sweep: error: {err}", file=sys.stderr)
        return USER_ERROR_EXIT
    except SweepCannotGoOn as err:
        print(f"mnist-sweep: the sweep cannot go on: {err}", file=sys.stderr)
        return CANNOT_GO_ON_EXIT
    except KeyboardInterrupt:
        if getattr(args, "worker", None) is None:  # a worker's sweep process says it for all of them
            print(f"\ninterrupted; resume with: python -m mnist_sweep {' '.join(argv)}", file=sys.stderr)
        return signals.exit_code()


def _recycle(grown: Recycle, command: list[str], program: bool) -> int:
    how = " ".join(["python", *command[1:]])
    if not program:  # called from Python: hand back, do not replace the caller's process
        print(f"mnist-sweep: {grown}; continue with: {how}", file=sys.stderr)
        return RECYCLE_EXIT
    print(f"\n{grown}; going on in a fresh process, same pid {os.getpid()}: {how}", file=sys.stderr)
    restart(command)


def _settings(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    sweep = getattr(args, "sweep", None)
    if args.command in names():  # a sweep command is its engine's name
        flags["engine"] = args.command
        if sweep is None:
            sweep = _default_sweep(args.space, spec(args.command).sweep_suffix(args))
    return load_settings(sweep, flags)


def _default_sweep(space: str | None, suffix: str) -> str | None:
    """sweeps/<space>-<suffix>.yaml when there is one, so `--space cnn` picks its own settings."""
    name = f"{Path(space).stem if space else 'mlp'}-{suffix}"
    try:
        find_file(name, "sweeps")
    except UserError:
        return None
    return name


def _ui(args: argparse.Namespace) -> int:
    uri = args.tracking_uri or Settings().tracking
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process
