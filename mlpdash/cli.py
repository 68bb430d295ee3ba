"""Command line: `python -m mlpdash train | evaluate | predict | explain | ablate | compare | sweep |
drawings (evaluate | finetune | export | import) | bench`.

Bad input (a flag out of range, an unknown data folder, a missing model, an unreadable image, a folder
that cannot be written, a damaged zip or CSV file, a full disk) ends with one line on stderr and exit
code 2, never a traceback: `main` turns every OSError, zip and CSV error, and our own input errors, into
that line, and lets anything else (a bug) through as it is. Targets that a command writes are checked
before the work starts, so that the line names the problem. TensorFlow is imported only once the
arguments are known to be good, so mistakes are reported at once.

Ctrl-C before training has started (TensorFlow importing, data loading) ends with one line and exit code
130. Once a run trains, Ctrl-C or SIGTERM stops it after the current batch and saves it as stopped
(`train`, `sweep`, `drawings finetune`; exit code 0), or saves nothing when no epoch had finished
(`drawings finetune`: exit code 130). JSON output is always strict JSON: a number that is not finite
(a diverged model's loss) is written as null.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import numbers
import os
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

# Only the standard library and our stdlib-only config load before `main` runs: Ctrl-C during the
# imports of NumPy and the rest (inside `main`) is then one line, not a traceback.
from mlpdash.config import TrainConfig, parse_hidden

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command that Ctrl-C ended
POLL_SECONDS = 0.2
# `sweep`'s flags and the settings they vary.
SWEEP_FLAGS = {"--lr": "learning_rate", "--hidden": "hidden", "--dropout": "dropout", "--batch-size": "batch_size",
               "--activation": "activation", "--optimizer": "optimizer", "--lr-schedule": "lr_schedule",
               "--seed": "seed", "--train-digits": "train_digits"}


class UsageError(Exception):
    """Bad input from the user: reported as one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that names the problem is what we promise.
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    from mlpdash.finetune import FinetuneSettings  # NumPy: imported inside `main`, see above

    finetune_defaults = FinetuneSettings()
    parser = _Parser(prog="python -m mlpdash", description="Train and probe an MLP on MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up and progress messages on stderr")

    defaults = TrainConfig()
    train = commands.add_parser("train", parents=[common], help="train a model and save the run")
    train.add_argument("--data", default=None, help="tfds | idx:DIR | keras | sample | auto")
    train.add_argument("--hidden", default=",".join(map(str, defaults.hidden)),
                       help="hidden layer sizes, e.g. 700,500; 0 for the linear classifier")
    train.add_argument("--activation", default=defaults.activation)
    train.add_argument("--optimizer", default=defaults.optimizer)
    train.add_argument("--lr", type=float, default=defaults.learning_rate)
    train.add_argument("--lr-schedule", default=defaults.lr_schedule)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--dropout", type=float, default=defaults.dropout)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--train-digits", type=int, default=defaults.train_digits, metavar="N",
                       help="train on only the first N training digits (0: all); a small set shows "
                            "overfitting")
    train.add_argument("--out", default=None, metavar="RUNS_DIR",
                       help="the folder in which the run's own timestamped folder is made "
                            "(default $MLPDASH_RUNS or ./runs); the run folder is printed at the end")
    train.add_argument("--deterministic", action="store_true",
                       help="TensorFlow op determinism (also across thread schedules; slower)")

    evaluate = commands.add_parser("evaluate", parents=[common], help="evaluate a saved run on the test split")
    evaluate.add_argument("--model", required=True, metavar="RUN_DIR",
                          help="a run folder (as `train` prints it), or a folder holding exactly one run")
    evaluate.add_argument("--data", default=None)

    predict = commands.add_parser("predict", parents=[common], help="classify images of handwritten digits")
    predict.add_argument("--model", required=True, metavar="RUN_DIR",
                         help="a run folder, or a folder holding exactly one run")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, or folders whose images are all read")

    explain = commands.add_parser(
        "explain", parents=[common],
        help="why a saved model reads each image as it does: the exact local linear form of a ReLU "
             "network, the first-layer units that matter most, the nearest test digits")
    explain.add_argument("--model", required=True, metavar="RUN_DIR",
                         help="a run folder, or a folder holding exactly one run")
    explain.add_argument("--data", default=None,
                         help="the source whose test split gives the nearest digits (default: the run's own)")
    explain.add_argument("--json", action="store_true", help="one JSON object per image")
    explain.add_argument("--attack", type=int, default=None, metavar="DIGIT",
                         help="also find the smallest change (L-infinity budget) that makes it answer DIGIT")
    explain.add_argument("--out", default=None, metavar="DIR",
                         help="with --attack: write each changed 28x28 input there as a PNG")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")

    drawings = commands.add_parser(
        "drawings", parents=[common],
        help="your drawings as data: evaluate a saved model on them, fine-tune it on them as a new run, "
             "export them to a zip, import one")
    drawings.add_argument("action", choices=["evaluate", "finetune", "export", "import"])
    drawings.add_argument("archive", nargs="?", metavar="ZIP", help="export: the zip to write; import: the zip to read")
    drawings.add_argument("--model", metavar="RUN_DIR", help="evaluate: the run whose model answers")
    drawings.add_argument("--folder", default=None,
                          help="the drawings folder (default: $MLPDASH_DRAWINGS, else drawings beside the runs)")
    drawings.add_argument("--json", action="store_true", help="evaluate, finetune: one JSON object")
    drawings.add_argument("--epochs", type=int, default=finetune_defaults.epochs, help="finetune: epochs")
    drawings.add_argument("--replay", type=int, default=finetune_defaults.replay, metavar="N",
                          help="finetune: MNIST training digits mixed in per drawing (0: no replay)")
    drawings.add_argument("--lr", type=float, default=finetune_defaults.learning_rate,
                          help="finetune: Adam's learning rate")
    drawings.add_argument("--data", default=None,
                          help="finetune: the MNIST source replayed and tested on (default: the run's own)")
    drawings.add_argument("--out", default=None, metavar="RUNS_DIR",
                          help="finetune: where the new run is saved (default: beside the run fine-tuned)")

    compare = commands.add_parser(
        "compare", parents=[common],
        help="saved runs side by side: the settings that differ, test accuracy, epochs, training time, parameters")
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (or folders holding one run each)")
    compare.add_argument("--json", action="store_true", help="one JSON object per run")

    sweep = commands.add_parser(
        "sweep", parents=[common],
        help="train every combination of up to three settings, one run after another, then compare them")
    for flag, setting in SWEEP_FLAGS.items():
        sweep.add_argument(flag, dest=setting, default=None, metavar="VALUES",
                           help="values to sweep, comma-separated" + (
                               "; hidden sizes are separated by ':', e.g. 128:700,500 (0: no hidden layer)"
                               if setting == "hidden" else ""))
    sweep.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs of every run")
    sweep.add_argument("--data", default=None, help="tfds | idx:DIR | keras | sample | auto")
    sweep.add_argument("--out", default=None, metavar="RUNS_DIR",
                       help="where the runs are saved (default: $MLPDASH_RUNS, else ./runs)")
    sweep.add_argument("--json", action="store_true", help="the comparison as one JSON object per run")

    ablate = commands.add_parser(
        "ablate", parents=[common],
        help="switch hidden units of a saved model off and print the test accuracy, overall and per digit, "
             "intact and ablated")
    ablate.add_argument("--model", required=True, metavar="RUN_DIR",
                        help="a run folder, or a folder holding exactly one run")
    ablate.add_argument("--layer", type=int, required=True, metavar="N", help="the hidden layer, from 1")
    ablate.add_argument("--units", required=True, metavar="SPEC",
                        help="3,17,200 | top:50 (most important first) | bottom:50 | random:10%% | random:50 | all")
    ablate.add_argument("--data", default=None, help="the source whose test split is used (default: the run's own)")
    ablate.add_argument("--json", action="store_true", help="one JSON object")

    bench = commands.add_parser("bench", parents=[common], help="measure the engine's overhead and the drawing latency")
    bench.add_argument("--data", default=None)
    bench.add_argument("--epochs", type=int, default=defaults.epochs)
    bench.add_argument("--pairs", type=int, default=3)
    bench.add_argument("--latency-calls", type=int, default=200)
    bench.add_argument("--skip-training", action="store_true", help="skip the training-overhead part")
    bench.add_argument("--memory-runs", type=int, default=0, metavar="N",
                       help="RSS growth over N default-size 1-epoch runs in one process (0: skip)")
    bench.add_argument("--tabs", type=_tab_counts, default=[], metavar="LIST",
                       help="throughput on a real server with each number of browser tabs open, "
                            "e.g. 0,1,5, against headless; drawing latency with the most (empty: skip)")
    bench.add_argument("--tab-seconds", type=float, default=20.0,
                       help="how long each throughput window lasts (whole epochs, at least this)")
    bench.add_argument("--explain", action="store_true",
                       help="time the explanation of one input, the map's basis and the targeted attack")
    bench.add_argument("--units", action="store_true",
                       help="also time the units lab: a change answered on the whole test split, a unit's dream")
    bench.add_argument("--over-time", action="store_true",
                       help="also time one step of the weights-over-time view (the server's part)")
    bench.add_argument("--drawings", type=int, default=0, metavar="N",
                       help="also time the Your drawings tab (each rerun, server side) with N drawings in the "
                            "folder, e.g. 10000 (0: skip)")
    bench.add_argument("--explain-model", default=None, metavar="RUN_DIR",
                       help="with --explain: a saved run's model (default: train the default model on --data)")
    bench.add_argument("--tab-repeats", type=int, default=1, metavar="N",
                       help="measure headless and every tab count N times in turn and give the median "
                            "ratio (one window's ratio moves by 0.1 on a shared machine)")
    bench.add_argument("--draw-rounds", type=int, default=6,
                       help="rounds of one drawing in every tab for the latency with tabs open")
    bench.add_argument("--browser-nice", type=int, default=0, metavar="N",
                       help="run Chromium at this nice level, so that it takes less CPU from the "
                            "server (a starved browser also polls less)")
    return parser


def _tab_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated counts such as 0,1,5, not {text!r}") from None
    if any(count < 0 for count in counts):
        raise argparse.ArgumentTypeError("a count of tabs cannot be negative")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    interrupted = threading.Event()
    with _noting_interrupts(interrupted):
        try:
            args = build_parser().parse_args(argv)
            return COMMANDS[args.command](args)
        except KeyboardInterrupt:
            # Training handles its own Ctrl-C (it stops and saves the run): one that reaches here came
            # before anything was trained, while TensorFlow imported or the data loaded, say.
            return _interrupted()
        except Exception as err:
            # Ctrl-C inside a C extension's import (NumPy's, TensorFlow's) can come out as the
            # ImportError it caused ("PyCapsule_Import could not import module ...").
            if interrupted.is_set() and isinstance(err, ImportError):
                return _interrupted()
            problem = bad_input(err)
            if problem is None:
                raise  # a bug, not the user's input: its traceback is what a report needs
            print(f"mlpdash: error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT


def _interrupted() -> int:
    print("mlpdash: interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


@contextmanager
def _noting_interrupts(interrupted: threading.Event) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as always, and also sets `interrupted`, so that `main` knows
    it came even when code it passed through turned it into another error. Only in the main thread
    (the only one that handles signals), and only over Python's own handler."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def note(signum: int, frame: Any) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def bad_input(err: BaseException) -> str | None:
    """The one line for an error caused by the input or the machine (a bad value, a file or folder
    that cannot be read or written, a full disk, a damaged zip or CSV file), or None for any other
    error, which is a bug."""
    if isinstance(err, UsageError | ValueError):  # ValueError: DataError, RunError, DrawingsError... too
        return str(err) or type(err).__name__
    if isinstance(err, OSError):
        return _os_error_text(err)
    if isinstance(err, csv.Error):
        return f"a damaged CSV file ({err})"
    # Every archive is read through files.iter_archive, which says what is wrong as a ValueError:
    # these two are the net under it.
    if isinstance(err, zipfile.BadZipFile | zipfile.LargeZipFile):
        return f"a damaged or unsupported zip archive ({err})"
    return None


def _os_error_text(err: OSError) -> str:
    what = err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return what
    if err.filename2 is not None:
        return f"{err.filename} -> {err.filename2}: {what}"
    return f"{err.filename}: {what}"


def import_tensorflow(verbose: bool) -> None:
    """Import TensorFlow and let it find its devices, keeping its start-up noise off stderr unless
    `verbose` (on a machine without a GPU: "failed call to cuInit: ... CUDA error", cudart and oneDNN
    notices, absl's pre-init warning). C++ writes these straight to file descriptor 2, so the
    descriptor itself is pointed elsewhere meanwhile; if the import fails, what it wrote is shown."""
    if verbose:
        import tensorflow  # noqa: F401 - imported for its side effects, with its messages
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # probes CUDA, which logs on a machine without one
        except Exception:  # not KeyboardInterrupt: Ctrl-C is one line, not TensorFlow's start-up noise
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    tf.get_logger().setLevel("ERROR")  # Python-side warnings (retracing notices and the like)


def _check_source(source: str) -> None:
    """`data.validate_source`, imported when first needed (NumPy comes with it)."""
    from mlpdash.data import validate_source

    validate_source(source)


def _json(value: Any) -> str:
    """`value` as one line of strict JSON: a number that is not finite (the loss of a model whose
    weights are NaN, say) is null, never the `NaN` that JSON readers refuse."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):  # NumPy's integers
        return int(value)
    if isinstance(value, numbers.Real):  # float and NumPy's floats
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _check_writable(folder: Path, what: str) -> None:
    """Fail now, naming `folder`, if files cannot be made in it (or in the folder that will hold it,
    when it is not made yet): before TensorFlow loads and the work is done, not after. A file is
    made there and removed (the only test that holds for root, whom permission bits do not stop)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        raise UsageError(f"{what} {folder} is a file, not a folder")
    if not existing.is_dir():
        raise UsageError(f"{what} {folder} cannot be made: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        where = "it" if existing == folder else existing
        raise UsageError(f"{what} {folder}: cannot make files in {where} ({err.strerror or err})") from None


def _write_output(path: Path, data: bytes) -> None:
    """Write a file the user asked for, whole or not at all (a full disk leaves no half file)."""
    from mlpdash.files import write_bytes_atomic

    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise UsageError(f"cannot write {path} ({err.strerror or err})") from None


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While the block runs, Ctrl-C and SIGTERM set `stop` (the work ends at its next safe point and
    saves what it has) rather than raise in the middle of it; a second one changes nothing."""
    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


# --- train ---------------------------------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        hidden=parse_hidden(args.hidden),
        activation=args.activation,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        lr_schedule=args.lr_schedule,
        batch_size=args.batch_size,
        epochs=args.epochs,
        dropout=args.dropout,
        seed=args.seed,
        train_digits=args.train_digits,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from mlpdash.runs import runs_root

    config = config_from_args(args)
    if args.data is not None:
        _check_source(args.data)
    _check_writable(runs_root(args.out), "the runs folder")
    # Imported here: TensorFlow loads only after the input is checked.
    import_tensorflow(args.verbose)
    from mlpdash.training import SHUTDOWN_GRACE_SECONDS, TrainingJob

    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    # Keras' own progress bar on a terminal, one line per epoch otherwise.
    job = TrainingJob(config, args.data, args.out, verbose=1 if sys.stdout.isatty() else 2)
    # A process manager's SIGTERM stops the run as Ctrl-C does: saved, then exit.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        job.start()
        _watch(job, config)
    except KeyboardInterrupt:
        print("\nstopping after this batch; the partial run is saved…", file=sys.stderr, flush=True)
        job.stop()
        if not _wait_ignoring_interrupts(job):
            snap = job.snapshot()
            print(f"mlpdash: the run did not finish saving within {SHUTDOWN_GRACE_SECONDS:.0f} s; "
                  f"{snap.run_dir or 'no run folder'} keeps its last finished epoch", file=sys.stderr)
            return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _report_end(job.snapshot())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _watch(job: Any, config: TrainConfig) -> None:
    """Wait for the job's own end signal (never Thread.is_alive, see training), announcing the data
    and the model once the data has loaded."""
    from mlpdash.budgets import long_run_warning

    announced = False
    while not job.join(POLL_SECONDS):
        snap = job.snapshot()
        if snap.data_source and not announced:
            print(f"data: {snap.data_reason}", flush=True)
            print(f"model: {config.architecture}, {config.activation}, {config.optimizer} "
                  f"lr {config.learning_rate:g} ({config.lr_schedule}), batch {config.batch_size}, "
                  f"{config.epochs} epochs, seed {config.seed}", flush=True)
            warning = long_run_warning(config, snap.train_size)
            if warning:
                print(f"note: {warning}", flush=True)
            announced = True


def _wait_ignoring_interrupts(job: Any) -> bool:
    """Wait for a stopped job to save (until its save deadline); a second Ctrl-C must not kill it
    half-way through."""
    while True:
        try:
            return job.wait_for_save()
        except KeyboardInterrupt:
            print("still saving the run…", file=sys.stderr, flush=True)


def _report_end(snap: Any) -> int:
    from mlpdash.training import Status

    if snap.status == Status.FAILED:
        print(f"mlpdash: training failed: {snap.error}", file=sys.stderr)
        return EXIT_BAD_INPUT if snap.data_source is None else EXIT_FAILED
    if snap.status == Status.DIVERGED:
        print(f"mlpdash: {snap.error}", file=sys.stderr)
        print(f"run saved to {snap.run_dir} (as diverged)")
        return EXIT_DIVERGED
    report = snap.report
    if report is None:
        print("stopped before training began; no run was saved")
        return 0
    note = f" (stopped after {snap.epochs_completed} full epochs)" if snap.status == Status.STOPPED else ""
    print(f"test accuracy {report.accuracy:.4f}, test loss {report.loss:.4f}{note}")
    print(f"run saved to {snap.run_dir}")
    return 0


# --- evaluate ------------------------------------------------------------------------------------


def cmd_evaluate(args: argparse.Namespace) -> int:
    run_dir = _existing_run(args.model)
    if args.data is not None:
        _check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.evaluate import report_from_logits
    from mlpdash.model import to_model_input
    from mlpdash.predict import Predictor

    model = _run_model(run_dir)
    data = load_mnist(args.data)
    report = report_from_logits(Predictor(model).logits(to_model_input(data.x_test)), data.y_test)
    summary = {"run": str(run_dir), "data_source": data.source, **report.summary()}
    print(_json(summary))
    return 0


def _run_model(run_dir: Path) -> Any:
    """The run's Keras model; a run folder that cannot give one is the user's input error."""
    from mlpdash.runs import RunError, load_run_model

    try:
        return load_run_model(run_dir)
    except RunError as err:
        raise UsageError(str(err)) from None


def _run_network(run_dir: Path) -> tuple[Any, Any]:
    """(the run's info, its model as an `explain.Network` for our own NumPy passes)."""
    from mlpdash.explain import Network
    from mlpdash.model import network_weights
    from mlpdash.runs import read_info

    info = read_info(run_dir)
    return info, Network.from_weights(network_weights(_run_model(run_dir)), info.config.activation)


def _existing_run(path: str, need_model: bool = True) -> Path:
    """The run folder `path`, or the one run inside it (as `train --out DIR` makes them); with
    `need_model`, one that holds a saved model."""
    from mlpdash.runs import list_runs, read_info

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UsageError(f"no run folder at {path}")
    if not (run_dir / "config.json").exists():
        runs = [run for run in list_runs(run_dir, clean=False) if (run.path / "config.json").exists()]
        if len(runs) != 1:
            found = f"{len(runs)} runs" if runs else "no run"
            raise UsageError(f"{path} is not a run folder and holds {found}: name one run folder")
        run_dir = runs[0].path
        print(f"using the run in {path}: {run_dir}", file=sys.stderr)
    info = read_info(run_dir)
    if info.status == "damaged":
        raise UsageError(info.error or f"{run_dir}: damaged run folder")
    if need_model and not info.has_model:
        raise UsageError(f"{run_dir} holds no saved model")
    return run_dir


# --- predict -------------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    run_dir = _existing_run(args.model)
    files = _image_files(args.images)
    import_tensorflow(args.verbose)
    from mlpdash.predict import Predictor, predict_drawing, read_image

    predictor = Predictor(_run_model(run_dir))
    failures = 0
    for file in files:
        result: dict[str, Any] = {"file": file, "digit": None, "probabilities": None, "error": None}
        try:
            prediction = predict_drawing(predictor, read_image(file))
            if prediction.digit is None:
                result["error"] = "no digit: the image is blank"
            else:
                result["digit"] = prediction.digit
                result["probabilities"] = [round(float(p), 6) for p in prediction.probabilities]
        except ValueError as err:
            result["error"] = str(err)
        if result["error"] is not None:
            failures += 1
            # Errors go to stderr; a JSON reader still gets one line per file, with its error field.
            print(f"mlpdash: {file}: {result['error']}", file=sys.stderr, flush=True)
            if args.json:
                print(_json(result), flush=True)
        else:
            print(_json(result) if args.json else _predict_line(result), flush=True)
    return EXIT_FAILED if failures else 0


def cmd_explain(args: argparse.Namespace) -> int:
    if args.attack is not None and not 0 <= args.attack <= 9:
        raise UsageError(f"--attack takes a digit 0-9, got {args.attack}")
    if args.out is not None and args.attack is None:
        raise UsageError("--out writes the attacked images: give --attack DIGIT too")
    run_dir = _existing_run(args.model)
    files = _image_files(args.images)
    out = Path(args.out) if args.out else None
    if out is not None:
        _check_writable(out, "--out")
    if args.data is not None:
        _check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.explain import attack, explain, fit_map, representation
    from mlpdash.model import to_model_input
    from mlpdash.predict import read_image
    from mlpdash.preprocess import canvas_to_mnist

    info, network = _run_network(run_dir)
    # The neighbours come from the test split of the data the run learned from, unless told otherwise.
    data = load_mnist(args.data or info.data_source)
    hidden_map = fit_map(network, to_model_input(data.x_test), data.y_test)
    failures = 0
    for number, file in enumerate(files, start=1):
        try:
            image = canvas_to_mnist(read_image(file))
            if image is None:
                raise ValueError("no digit: the image is blank")
        except ValueError as err:
            failures += 1
            print(f"mlpdash: {file}: {err}", file=sys.stderr, flush=True)
            if args.json:
                print(_json({"file": file, "error": str(err)}), flush=True)
            continue
        e = explain(network, image)
        result: dict[str, Any] = {
            "file": file, "error": None, "digit": e.digit, "exact": e.exact,
            "logits": [round(float(v), 5) for v in e.logits],
            # Each class's contribution map summed, plus its effective bias: the logit, for ReLU.
            "contributions_plus_bias": [round(float(e.contributions(c).sum() + e.effective_bias[c]), 5)
                                        for c in range(10)],
            "top_units": [{"unit": u, "activation": round(a, 5), "contribution": round(c, 5)}
                          for u, a, c in e.top_units(e.digit)],
            "nearest": [{"index": i, "label": int(data.y_test[i]), "distance": round(d, 4)}
                        for i, d in hidden_map.nearest(representation(network, image[None])[0])],
        }
        if args.attack is not None:
            result["attack"] = _attack_result(attack(network, image, args.attack), network, number, file, out)
        print(_json(result) if args.json else _explain_text(result), flush=True)
    return EXIT_FAILED if failures else 0


def cmd_drawings(args: argparse.Namespace) -> int:
    from mlpdash.drawings import MAX_ZIP_BYTES, drawings_root, export_zip, import_zip, listing, prepared

    folder = drawings_root(args.folder)
    named = f"--folder {folder}" if args.folder else f"the drawings folder {folder}"
    if args.action == "import":
        archive = _archive_to_import(args.archive, MAX_ZIP_BYTES)
        _check_writable(folder, "--folder" if args.folder else "the drawings folder")
        added = import_zip(folder, archive.read_bytes())
        print(f"{added} drawings added to {folder}", flush=True)
        if added:
            began = time.monotonic()
            prepared(folder, listing(folder))  # once, kept in the folder: the page opens on them at once
            print(f"prepared for the model in {time.monotonic() - began:.1f} s")
        return 0
    target = _export_target(args.archive) if args.action == "export" else None
    # The other actions read the drawings: a folder that is not there is a mistake (a typo in
    # --folder), not an empty set of drawings.
    if not folder.is_dir():
        raise UsageError(f"{named}: no such folder" if not folder.exists() else f"{named} is not a folder")
    if target is not None:
        data = export_zip(folder)
        _write_output(target, data)
        print(f"{len(listing(folder))} drawings written to {target}")
        return 0
    if not args.model:
        raise UsageError(f"drawings {args.action} needs --model RUN_DIR")
    run_dir = _existing_run(args.model)
    if args.action == "finetune":
        return _finetune(args, run_dir, folder)
    import_tensorflow(args.verbose)
    from mlpdash.drawings import evaluate
    from mlpdash.predict import Predictor

    predictor = Predictor(_run_model(run_dir))
    result = evaluate(folder, predictor.logits)
    summary = {"folder": str(folder), "accuracy": result.accuracy, "confusion": result.confusion.tolist(),
               "misread": [{"file": f, "label": t, "answer": a} for f, t, a in result.misread], "blank": result.blank}
    if args.json:
        print(_json(summary))
    elif result.accuracy is None:
        print(f"no drawing with ink in {folder}")
    else:
        drawn = int(result.confusion.sum())
        print(f"{drawn} drawings in {folder}: {result.accuracy:.2%} read right")
        for file, label, answer in result.misread:
            print(f"  {file}: a {label} read as {answer}")
    return 0


def _archive_to_import(archive: str | None, limit: int) -> Path:
    if not archive:
        raise UsageError("drawings import needs the zip to read")
    path = Path(archive)
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a file" if path.exists() else "no such file"
        raise UsageError(f"drawings import needs a zip file: {archive} is {kind}")
    size = path.stat().st_size
    if size > limit:  # before it is read into memory
        raise UsageError(f"{archive} is {size:,} bytes, more than the {limit:,} a drawings archive may be")
    return path


def _export_target(archive: str | None) -> Path:
    """The zip `drawings export` writes, checked before the drawings are packed."""
    if not archive:
        raise UsageError("drawings export needs the zip to write")
    target = Path(archive)
    if target.is_dir():
        raise UsageError(f"drawings export: {archive} is a folder; name the zip file to write in it")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"drawings export: no folder {parent} to write {target.name} in")
    _check_writable(parent, "drawings export: the folder")
    return target


def _finetune(args: argparse.Namespace, run_dir: Path, folder: Path) -> int:
    from mlpdash.finetune import FinetuneSettings
    from mlpdash.runs import read_info

    settings = FinetuneSettings(epochs=args.epochs, replay=args.replay, learning_rate=args.lr)
    source = args.data or read_info(run_dir).data_source
    if source is not None:
        _check_source(source)
    _check_writable(Path(args.out) if args.out else run_dir.parent, "--out" if args.out else "the runs folder")
    import_tensorflow(args.verbose)
    from mlpdash.data import load_mnist
    from mlpdash.finetune import FinetuneDiverged, FinetuneStopped, finetune, report_text

    data = load_mnist(source)
    stop = threading.Event()
    # From here Ctrl-C and SIGTERM stop the fine-tune after the current batch, as they stop `train`;
    # the report is printed under the same handlers, so a late Ctrl-C cannot cut it short.
    with _stop_on_signals(stop):
        try:
            report = finetune(run_dir, folder, data, settings, args.out, stop=stop)
        except FinetuneStopped as err:
            print(f"mlpdash: {err}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except FinetuneDiverged as err:
            print(f"mlpdash: {err}", file=sys.stderr)
            return EXIT_DIVERGED
        if args.json:
            print(_json(report.to_dict()), flush=True)
        else:
            print(f"{report.drawings} drawings: trained on {report.trained_on} with {report.replayed} MNIST digits "
                  f"replayed, {report.held_out} held out; {report.seconds:.1f} s")
            print(report_text(report.to_dict()))
            print(f"run saved to {report.run_dir}", flush=True)
        if report.stopped:
            # As `train` does: a run stopped and saved is a normal end (exit code 0), said on stderr.
            print(f"mlpdash: fine-tuning stopped after {report.epochs_completed} of {settings.epochs} epochs; "
                  f"the run is saved as stopped: {report.run_dir}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from mlpdash.compare import comparison
    from mlpdash.runs import read_info

    infos = [read_info(_existing_run(path, need_model=False)) for path in args.runs]
    _print_comparison(comparison(infos), args.json)
    return 0


def _print_comparison(rows: list[dict[str, Any]], as_json: bool) -> None:
    for row in rows:
        if as_json:
            print(_json(row))
            continue
        settings = ", ".join(f"{key} {value}" for key, value in row["settings"].items()) or "the same settings"
        accuracy = "not tested" if row["test_accuracy"] is None else f"test accuracy {row['test_accuracy']:.4f}"
        seconds = "" if row["train_seconds"] is None else f", {row['train_seconds']:.1f} s of training"
        epochs = f"{row['epochs']} epoch" + ("" if row["epochs"] == 1 else "s")
        print(f"{row['run']} ({row['state']}): {settings}; {accuracy}, {epochs}{seconds}, "
              f"{row['parameters']:,} parameters")


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlpdash.compare import comparison
    from mlpdash.sweep import grid, parse_values, varied

    axes = {setting: parse_values(setting, getattr(args, setting))
            for setting in SWEEP_FLAGS.values() if getattr(args, setting) is not None}
    if not axes:
        raise UsageError(f"sweep needs values for one setting or more: {', '.join(SWEEP_FLAGS)}")
    configs = grid(TrainConfig(epochs=args.epochs), axes)
    if args.data is not None:
        _check_source(args.data)
    from mlpdash.runs import read_info, runs_root

    _check_writable(runs_root(args.out), "the runs folder")
    import_tensorflow(args.verbose)
    from mlpdash.jobs import JobManager

    manager = JobManager(args.out, keep_queue=False)  # a server's queue in that folder is its own
    swept = varied(axes) or list(axes)
    sweep = manager.enqueue(configs, args.data, "sweep", swept)
    print(f"sweep: {len(configs)} runs of {', '.join(swept)}", flush=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _watch_sweep(manager, [item.item for item in sweep.items])
    except KeyboardInterrupt:
        print("\ncancelling the sweep: the run in progress stops and is saved…", file=sys.stderr, flush=True)
        manager.cancel_queued([item.item for item in sweep.items])
        if manager.job is not None and not _wait_ignoring_interrupts(manager.job):
            return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    items = [item for item in manager.queue.items() if item.sweep == sweep.sweep]
    ran = [read_info(manager.runs_dir / item.run) for item in items if item.run]
    print()
    _print_comparison(comparison(ran), args.json)
    return 0 if all(item.state == "finished" for item in items) else EXIT_FAILED


def _watch_sweep(manager: Any, item_ids: list[str]) -> None:
    """Print each run of the sweep as it ends, until none is left to train."""
    told: set[str] = set()
    while True:
        running = manager.queue_running()  # read first: the states printed below are then final
        for item in manager.queue.items():
            if item.item in item_ids and item.item not in told and item.state not in ("queued", "running"):
                told.add(item.item)
                where = f" -> {manager.runs_dir / item.run}" if item.run else ""
                why = f" ({item.error})" if item.error else ""
                number = item_ids.index(item.item) + 1
                print(f"run {number}/{len(item_ids)} ({item.label}): {item.state}{why}{where}", flush=True)
        if not running:
            return
        time.sleep(POLL_SECONDS)


def cmd_ablate(args: argparse.Namespace) -> int:
    run_dir = _existing_run(args.model)
    if args.data is not None:
        _check_source(args.data)
    import_tensorflow(args.verbose)
    import numpy as np

    from mlpdash.data import load_mnist
    from mlpdash.model import to_model_input
    from mlpdash.units import ablated, accuracy, check_layer, importance, parse_units

    info, network = _run_network(run_dir)
    try:
        count = check_layer(network, args.layer)
    except ValueError as err:
        raise UsageError(f"--layer: {err}") from None
    spec = args.units.strip()
    try:  # the spec's own mistakes first, before the data and the ranking are worked out
        parse_units(spec, count, np.zeros(count))
    except ValueError as err:
        raise UsageError(f"--units: {err}") from None
    data = load_mnist(args.data or info.data_source)
    images = to_model_input(data.x_test)
    ranked = spec.split(":")[0] in ("top", "bottom")
    units = parse_units(spec, count, importance(network, images, data.y_test, args.layer) if ranked else None)
    intact = accuracy(network, images, data.y_test)
    broken = accuracy(ablated(network, args.layer, units), images, data.y_test)
    result = {"run": str(run_dir), "layer": args.layer, "units_in_layer": count, "switched_off": units,
              "test_digits": len(images),
              "intact": {"accuracy": round(intact.overall, 5), "per_class": _rounded(intact.per_class)},
              "ablated": {"accuracy": round(broken.overall, 5), "per_class": _rounded(broken.per_class)}}
    if args.json:
        print(_json(result))
        return 0
    print(f"layer {args.layer}: {len(units)} of {count} units switched off ({spec}); "
          f"test split of {data.source}, {len(images):,} digits")
    print(f"accuracy: intact {intact.overall:.4f}, ablated {broken.overall:.4f} "
          f"({broken.overall - intact.overall:+.4f})")
    for digit in range(10):
        before, after = intact.per_class[digit], broken.per_class[digit]
        if before is not None and after is not None:
            print(f"  digit {digit}: {before:.4f} -> {after:.4f} ({after - before:+.4f})")
    return 0


def _rounded(values: Any) -> list[float | None]:
    return [None if v is None else round(v, 5) for v in values]


def _attack_result(found: Any, network: Any, number: int, file: str, out: Path | None) -> dict[str, Any]:
    result: dict[str, Any] = {"target": found.target, "epsilon": found.epsilon, "digit": found.digit,
                              "png": None, "png_digit": None}
    if out is not None and found.epsilon is not None:
        import numpy as np
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        # Numbered: two inputs may share a name (a/1.png and b/1.png, 1.png and 1.jpg).
        path = out / f"{number:03d}-{Path(file).stem}-to-{found.target}.png"
        pixels = np.round(found.image * 255).astype(np.uint8)
        png = io.BytesIO()
        Image.fromarray(pixels).save(png, format="PNG")
        _write_output(path, png.getvalue())
        result["png"] = str(path)
        # What the model reads in the file itself, 8-bit pixels and all.
        result["png_digit"] = int(np.argmax(network.logits(pixels[None].astype(np.float32) / 255)[0]))
    return result


def _explain_text(result: dict[str, Any]) -> str:
    digit = result["digit"]
    form = ("exact: each logit = its contribution map summed + its effective bias" if result["exact"]
            else "approximate (gradient x input: the activation is not ReLU)")
    lines = [f"{result['file']}: {digit} ({form})",
             "  logits:                  " + " ".join(f"{c}:{v:.3f}" for c, v in enumerate(result["logits"])),
             "  contributions + bias:    " + " ".join(f"{c}:{v:.3f}" for c, v in
                                                      enumerate(result["contributions_plus_bias"]))]
    if result["top_units"]:
        lines.append(f"  first-layer units adding most to {digit}: " + ", ".join(
            f"{u['unit']} (activation {u['activation']:.3f}, {u['contribution']:+.3f})" for u in result["top_units"]))
    lines.append("  nearest test digits: " + ", ".join(
        f"#{n['index']} ({n['label']}, distance {n['distance']:.3f})" for n in result["nearest"]))
    found = result.get("attack")
    if found is not None:
        if found["epsilon"] is None:
            lines.append(f"  attack to {found['target']}: not reached on the ladder (answers {found['digit']})")
        else:
            wrote = f"; wrote {found['png']}" if found["png"] else ""
            if found["png"] and found["png_digit"] != found["target"]:
                wrote += f" (rounded to 8-bit pixels it reads as {found['png_digit']})"
            lines.append(f"  attack to {found['target']}: reached at epsilon {found['epsilon']:g}{wrote}")
    return "\n".join(lines)


EXPLAIN_DIGITS = 200  # inputs timed through the explanation
EXPLAIN_ATTACKS = 200  # the measure: 200 test digits, random other targets

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def _image_files(paths: Sequence[str]) -> list[str]:
    """The files to read: each file as given, each folder's image files (by suffix, sorted)."""
    files: list[str] = []
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            files.append(path)
            continue
        try:
            found = sorted(str(f) for f in folder.iterdir()
                           if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        except OSError as err:
            raise UsageError(f"{path}: cannot read the folder ({err.strerror or err})") from err
        if not found:
            raise UsageError(f"{path}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files.extend(found)
    return files


def _predict_line(result: dict[str, Any]) -> str:
    confidence = max(result["probabilities"])
    return f"{result['file']}: {result['digit']} ({confidence:.1%})"


# --- bench ---------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    if min(args.pairs, args.epochs, args.latency_calls, args.draw_rounds, args.tab_repeats) < 1:
        raise UsageError("--pairs, --epochs, --latency-calls, --draw-rounds and --tab-repeats must be at "
                         "least 1")
    if args.memory_runs < 0 or args.tab_seconds <= 0 or not 0 <= args.browser_nice <= 19:
        raise UsageError("--memory-runs cannot be negative, --tab-seconds must be positive and "
                         "--browser-nice is 0 to 19")
    from mlpdash.drawings import MAX_DRAWINGS

    if not 0 <= args.drawings <= MAX_DRAWINGS:
        raise UsageError(f"--drawings is 0 to {MAX_DRAWINGS:,}, the most a drawings folder holds")
    if args.data is not None:
        _check_source(args.data)
    import_tensorflow(args.verbose)
    from mlpdash import bench

    if not args.skip_training:
        bench.print_training_overhead(args.data, args.epochs, args.pairs)
    bench.print_latency(args.latency_calls)
    if args.over_time:
        bench.print_over_time()
    if args.drawings:
        from mlpdash.ui.bench_drawings import print_drawings  # drives the page: Streamlit

        print_drawings(args.drawings)
    if args.units:
        bench.print_units(args.data)
    if args.explain:
        bench.print_explain(args.data, args.explain_model and str(_existing_run(args.explain_model)),
                            EXPLAIN_DIGITS, EXPLAIN_ATTACKS)
    if args.memory_runs:
        bench.print_memory(args.data, args.memory_runs)
    if args.tabs:
        bench.print_tabs(args.tabs, args.data, args.tab_seconds, args.draw_rounds, args.browser_nice,
                         args.tab_repeats)
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "explain": cmd_explain,
            "ablate": cmd_ablate, "compare": cmd_compare, "sweep": cmd_sweep, "drawings": cmd_drawings,
            "bench": cmd_bench}


def _a_job_lives() -> bool:
    """Whether a training job is still going (a second Ctrl-C in the moment before its save began):
    then the exit hook that stops and saves it must run, and the process leaves the usual way."""
    training = sys.modules.get("mlpdash.training")  # never imported for this: TensorFlow comes with it
    return training is not None and training.any_live_job()


def run() -> NoReturn:
    code = main()
    if code == EXIT_INTERRUPTED and not _a_job_lives():
        # Said, and nothing left to save. A Ctrl-C that passed through code a C extension ran (its
        # import) leaves CPython's "unhandled KeyboardInterrupt" flag set, and the interpreter would
        # then end itself by SIGINT at exit, losing this exit code: leave without the shutdown.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    # The command has ended and said so: a Ctrl-C while the interpreter shuts down (TensorFlow's
    # teardown takes a moment) would kill it by the signal, silently, and lose the exit code.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
