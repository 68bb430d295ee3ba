"""`train`: train one model with the settings its flags give, save the run, print where.

The settings flags (`--hidden`, `--lr`, `--epochs`...) take their defaults from `TrainConfig`, so the
command line and the page start from the same recipe. Ctrl-C or SIGTERM stops the run after the
current batch and saves it as stopped (exit code 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from mlpdash.cli.common import (DATA_SOURCES, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED, POLL_SECONDS,
                                add_data_flag, add_runs_out_flag, check_source, check_writable,
                                import_tensorflow, raise_interrupt, wait_ignoring_interrupts)
from mlpdash.config import TrainConfig, parse_hidden


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `train` and its flags on the `commands` subparsers."""
    defaults = TrainConfig()
    train = commands.add_parser("train", parents=[common], help="train a model and save the run")
    add_data_flag(train, DATA_SOURCES)
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
    add_runs_out_flag(train, "the folder in which the run's own timestamped folder is made "
                             "(default $MLPDASH_RUNS or ./runs); the run folder is printed at the end")
    train.add_argument("--deterministic", action="store_true",
                       help="TensorFlow op determinism (also across thread schedules; slower)")
    train.set_defaults(handler=cmd_train)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig that `train`'s settings flags describe (validated by TrainConfig itself)."""
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
        check_source(args.data)
    check_writable(runs_root(args.out), "the runs folder")
    # Imported here: TensorFlow loads only after the input is checked.
    import_tensorflow(args.verbose)
    from mlpdash.training import SHUTDOWN_GRACE_SECONDS, TrainingJob

    if args.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    # Keras' own progress bar on a terminal, one line per epoch otherwise.
    job = TrainingJob(config, args.data, args.out, verbose=1 if sys.stdout.isatty() else 2)
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        job.start()
        _watch(job, config)
    except KeyboardInterrupt:
        print("\nstopping after this batch; the partial run is saved…", file=sys.stderr, flush=True)
        job.stop()
        if not wait_ignoring_interrupts(job):
            snap = job.snapshot()
            print(f"mlpdash: the run did not finish saving within {SHUTDOWN_GRACE_SECONDS:.0f} s; "
                  f"{snap.run_dir or 'no run folder'} keeps its last finished epoch", file=sys.stderr)
            return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _report_end(job.snapshot())


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


def _report_end(snap: Any) -> int:
    from mlpdash.training import Status

    if snap.status == Status.FAILED:
        print(f"mlpdash: training failed: {snap.error}", file=sys.stderr)
        # No data source: it failed while loading the data, which the user named.
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
