"""What every command family shares: the exit codes and the one-line error, the parser that reports a
mistake in one line, the flags several commands take (`--verbose`, `--data`, `--model`, `--out`,
`--json`), the checks made before any work starts, strict JSON, Ctrl-C and SIGTERM handling, and
the run folder a command is pointed at.

Only the standard library loads here: `mlpdash.cli` imports this before `main` runs, and a Ctrl-C
during NumPy's or TensorFlow's import must come out as one line (see the package docstring). Anything
heavier is imported inside the function that needs it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import numbers
import os
import signal
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command that Ctrl-C ended
POLL_SECONDS = 0.2
DATA_SOURCES = "tfds | idx:DIR | keras | sample | auto"
ONE_RUN = "a run folder, or a folder holding exactly one run"


class UsageError(Exception):
    """Bad input from the user: reported as one line with exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are one line (a UsageError), not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that names the problem is what we promise.
        raise UsageError(message)


# --- flags ---------------------------------------------------------------------------------------


def verbose_parent() -> argparse.ArgumentParser:
    """The parent parser of every command: `--verbose`."""
    common = Parser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up and progress messages on stderr")
    return common


def add_data_flag(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """`--data SOURCE`; None (the default) lets the command pick: `auto`, or the run's own source."""
    parser.add_argument("--data", default=None, help=help_text)


def add_model_flag(parser: argparse.ArgumentParser, help_text: str = ONE_RUN) -> None:
    """`--model RUN_DIR`, required: the saved run a command reads."""
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help=help_text)


def add_runs_out_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--out RUNS_DIR`: the folder in which new runs are made (None: the command's default)."""
    parser.add_argument("--out", default=None, metavar="RUNS_DIR", help=help_text)


def add_json_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--json`: the command's output as strict JSON (see `json_line`)."""
    parser.add_argument("--json", action="store_true", help=help_text)


# --- the one-line error --------------------------------------------------------------------------


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


# --- checks before the work ----------------------------------------------------------------------


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


def check_source(source: str) -> None:
    """`data.validate_source`, imported when first needed (NumPy comes with it)."""
    from mlpdash.data import validate_source

    validate_source(source)


def check_writable(folder: Path, what: str) -> None:
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


def write_output(path: Path, data: bytes) -> None:
    """Write a file the user asked for, whole or not at all (a full disk leaves no half file)."""
    from mlpdash.files import write_bytes_atomic

    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise UsageError(f"cannot write {path} ({err.strerror or err})") from None


# --- strict JSON ---------------------------------------------------------------------------------


def json_line(value: Any) -> str:
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


# --- Ctrl-C and SIGTERM --------------------------------------------------------------------------


def interrupted() -> int:
    """Say that Ctrl-C ended the command; its exit code."""
    print("mlpdash: interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


@contextmanager
def noting_interrupts(flag: threading.Event) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as always, and also sets `flag`, so that `main` knows it came
    even when code it passed through turned it into another error. Only in the main thread (the only
    one that handles signals), and only over Python's own handler."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def note(signum: int, frame: Any) -> None:
        flag.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def raise_interrupt(signum: int, frame: Any) -> None:
    """A SIGTERM handler: a process manager's SIGTERM then stops a run as Ctrl-C does (saved, then exit)."""
    raise KeyboardInterrupt


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
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


def wait_ignoring_interrupts(job: Any) -> bool:
    """Wait for a stopped job to save (until its save deadline); a second Ctrl-C must not kill it
    half-way through."""
    while True:
        try:
            return job.wait_for_save()
        except KeyboardInterrupt:
            print("still saving the run…", file=sys.stderr, flush=True)


# --- the run a command reads ---------------------------------------------------------------------


def existing_run(path: str, need_model: bool = True) -> Path:
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


def run_model(run_dir: Path) -> Any:
    """The run's Keras model; a run folder that cannot give one is the user's input error."""
    from mlpdash.runs import RunError, load_run_model

    try:
        return load_run_model(run_dir)
    except RunError as err:
        raise UsageError(str(err)) from None


def run_network(run_dir: Path) -> tuple[Any, Any]:
    """(the run's info, its model as an `explain.Network` for our own NumPy passes)."""
    from mlpdash.explain import Network
    from mlpdash.model import network_weights
    from mlpdash.runs import read_info

    info = read_info(run_dir)
    return info, Network.from_weights(network_weights(run_model(run_dir)), info.config.activation)
