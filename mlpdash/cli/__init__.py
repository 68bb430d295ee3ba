"""Command line: `python -m mlpdash COMMAND ...`, one module per command family, each owning its flags.

    train      train a model and save the run                                    (cli/train.py)
    evaluate   evaluate a saved run on the test split                            (cli/predict.py)
    predict    classify images of handwritten digits                             (cli/predict.py)
    explain    why a saved model reads each image as it does; with --attack, the
               smallest change that makes it answer another digit                (cli/predict.py)
    drawings   your drawings as data: evaluate | finetune | export | import      (cli/drawings.py)
    compare    saved runs side by side                                           (cli/compare.py)
    sweep      train every combination of up to three settings, then compare     (cli/sweep.py)
    ablate     switch hidden units off and print the test accuracy, per digit    (cli/units.py)
    bench      measure the engine's overhead, the drawing latency and more       (cli/bench.py)

What they share (exit codes, the one-line error, common flags, checks, Ctrl-C handling) is in
cli/common.py. Each family's `add_parsers` registers its commands with their flags and handler.

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
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

# Only the standard library and our stdlib-only config load before `main` runs (every module of the
# package keeps to that at import): Ctrl-C during the imports of NumPy and the rest (inside `main`) is
# then one line, not a traceback.
from mlpdash.cli import bench, compare, drawings, predict, sweep, train, units
from mlpdash.cli.common import (EXIT_BAD_INPUT, EXIT_INTERRUPTED, Parser, bad_input, interrupted, noting_interrupts,
                                verbose_parent)

# In this order in `--help`: the order the commands were listed in before the split.
FAMILIES = (train, predict, drawings, compare, sweep, units, bench)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; a parsed command's `handler` runs it and returns the exit code."""
    parser = Parser(prog="python -m mlpdash", description="Train and probe an MLP on MNIST.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    common = verbose_parent()
    for family in FAMILIES:
        family.add_parsers(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (bad input: 2, with one line on stderr; Ctrl-C: 130)."""
    flag = threading.Event()
    with noting_interrupts(flag):
        try:
            args = build_parser().parse_args(argv)
            return args.handler(args)
        except KeyboardInterrupt:
            # Training handles its own Ctrl-C (it stops and saves the run): one that reaches here came
            # before anything was trained, while TensorFlow imported or the data loaded, say.
            return interrupted()
        except Exception as err:
            # Ctrl-C inside a C extension's import (NumPy's, TensorFlow's) can come out as the
            # ImportError it caused ("PyCapsule_Import could not import module ...").
            if flag.is_set() and isinstance(err, ImportError):
                return interrupted()
            problem = bad_input(err)
            if problem is None:
                raise  # a bug, not the user's input: its traceback is what a report needs
            print(f"mlpdash: error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT


def _a_job_lives() -> bool:
    """Whether a training job is still going (a second Ctrl-C in the moment before its save began):
    then the exit hook that stops and saves it must run, and the process leaves the usual way."""
    training = sys.modules.get("mlpdash.training")  # never imported for this: TensorFlow comes with it
    return training is not None and training.any_live_job()


def run() -> NoReturn:
    """`main` on the process's own arguments, then exit with its code (`python -m mlpdash`)."""
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
