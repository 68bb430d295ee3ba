"""`sweep`: train every combination of up to three settings, one run after another, then compare them.

The runs go through a sweep queue (as the page's sweep form's do), in a queue of this process's own,
not the one a server keeps in the runs folder: trained here one after another, or with `--cluster`
(or MLPDASH_CLUSTER) on a Dask cluster's workers, as many at once as it has workers, each run's folder
coming home into the runs folder. Ctrl-C or SIGTERM cancels the runs not yet begun and stops those in
progress, which are saved as stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from mlpdash.cli.common import (DATA_SOURCES, EXIT_FAILED, POLL_SECONDS, UsageError, add_data_flag,
                                add_json_flag, add_runs_out_flag, check_source, check_writable,
                                import_tensorflow, raise_interrupt, wait_ignoring_interrupts)
from mlpdash.cli.compare import print_comparison
from mlpdash.config import TrainConfig

# `sweep`'s flags and the settings they vary.
SWEEP_FLAGS = {"--lr": "learning_rate", "--hidden": "hidden", "--dropout": "dropout", "--batch-size": "batch_size",
               "--activation": "activation", "--optimizer": "optimizer", "--lr-schedule": "lr_schedule",
               "--seed": "seed", "--train-digits": "train_digits"}


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register `sweep` and its flags (one per setting it can vary) on the `commands` subparsers."""
    sweep = commands.add_parser(
        "sweep", parents=[common],
        help="train every combination of up to three settings, one run after another, then compare them")
    for flag, setting in SWEEP_FLAGS.items():
        sweep.add_argument(flag, dest=setting, default=None, metavar="VALUES",
                           help="values to sweep, comma-separated" + (
                               "; hidden sizes are separated by ':', e.g. 128:700,500 (0: no hidden layer)"
                               if setting == "hidden" else ""))
    sweep.add_argument("--epochs", type=int, default=TrainConfig().epochs, help="epochs of every run")
    add_data_flag(sweep, DATA_SOURCES)
    add_runs_out_flag(sweep, "where the runs are saved (default: $MLPDASH_RUNS, else ./runs)")
    add_json_flag(sweep, "the comparison as one JSON object per run")
    sweep.add_argument("--cluster", default=None, metavar="ADDRESS",
                       help="train the runs on the Dask cluster whose scheduler is at ADDRESS "
                            "(tcp://HOST:8786; default: $MLPDASH_CLUSTER, else here, one after another)")
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from mlpdash.compare import comparison
    from mlpdash.sweep import grid, parse_values, varied

    axes = {setting: parse_values(setting, getattr(args, setting))
            for setting in SWEEP_FLAGS.values() if getattr(args, setting) is not None}
    if not axes:
        raise UsageError(f"sweep needs values for one setting or more: {', '.join(SWEEP_FLAGS)}")
    configs = grid(TrainConfig(epochs=args.epochs), axes)
    if args.data is not None:
        check_source(args.data)
    from mlpdash.runs import read_info, runs_root

    check_writable(runs_root(args.out), "the runs folder")
    from mlpdash.cluster import CLUSTER_ENV_VAR

    address = args.cluster or os.environ.get(CLUSTER_ENV_VAR) or None
    import_tensorflow(args.verbose)
    from mlpdash.jobs import JobManager
    from mlpdash.queue import InProcessExecutor, SweepQueue

    jobs = JobManager(args.out)
    # Reached before anything is queued: an address that does not answer is one line, and no run.
    executor = _cluster_executor(address, jobs.runs_dir) if address else InProcessExecutor(jobs)
    queue = SweepQueue(jobs.runs_dir, executor, keep_queue=False)  # a server's queue is its own
    swept = varied(axes) or list(axes)
    sweep = queue.enqueue(configs, args.data, "sweep", swept)
    where = f", on {executor.describe()}" if address else ""
    print(f"sweep: {len(configs)} runs of {', '.join(swept)}{where}", flush=True)
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        _watch_sweep(queue, [item.item for item in sweep.items])
    except KeyboardInterrupt:
        print("\ncancelling the sweep: the runs in progress stop and are saved…", file=sys.stderr, flush=True)
        queue.cancel([item.item for item in sweep.items])
        if jobs.job is not None and not wait_ignoring_interrupts(jobs.job):
            return EXIT_FAILED
        _wait_for_followers(queue)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if address:
            executor.close()
    items = [item for item in queue.queue.items() if item.sweep == sweep.sweep]
    ran = [read_info(queue.runs_dir / item.run) for item in items if item.run]
    print()
    print_comparison(comparison(ran), args.json)
    return 0 if all(item.state == "finished" for item in items) else EXIT_FAILED


def _cluster_executor(address: str, runs_dir: Any) -> Any:
    from mlpdash.cluster import ClusterError, DaskExecutor

    try:
        return DaskExecutor(address, runs_dir)
    except ClusterError as err:
        raise UsageError(str(err)) from None


def _wait_for_followers(queue: Any) -> None:
    """After a cancel, until every stopped run has come home (a second Ctrl-C leaves them)."""
    while queue.running():
        try:
            time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            return


def _watch_sweep(queue: Any, item_ids: list[str]) -> None:
    """Print each run of the sweep (in `queue`, a SweepQueue) as it ends, until none is left to train."""
    told: set[str] = set()
    while True:
        running = queue.running()  # read first: the states printed below are then final
        for item in queue.queue.items():
            if item.item in item_ids and item.item not in told and item.state not in ("queued", "running"):
                told.add(item.item)
                where = f" -> {queue.runs_dir / item.run}" if item.run else ""
                why = f" ({item.error})" if item.error else ""
                number = item_ids.index(item.item) + 1
                print(f"run {number}/{len(item_ids)} ({item.label}): {item.state}{why}{where}", flush=True)
        if not running:
            return
        time.sleep(POLL_SECONDS)
