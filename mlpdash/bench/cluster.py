"""`bench --cluster`: a sweep trained here, one run after another, against the same sweep on a Dask
cluster of two single-thread worker processes started with Dask's own commands (`dask scheduler`,
`dask worker`), and what the cluster path itself costs a run.

Each run's overhead is its time from the hand-over to its folder home, less the time its task took on
the worker: the hand-over, the epochs and the end sent home, the run folder carried, checked and
written. It is printed for the sweep's short runs and for one default run (the recipe), against that
run's time. On 2 cores the cluster cannot be faster (both workers share the cores): what carries to N
machines is the overhead, not the wall time here.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from mlpdash.bench.common import REPO_ROOT, default_source
from mlpdash.config import TrainConfig

WORKERS = 2
START_TIMEOUT_S = 120.0


@contextmanager
def dask_cluster(log: Path) -> Iterator[str]:
    """A scheduler and `WORKERS` single-thread worker processes, started as a user would (`dask
    scheduler`, `dask worker ADDRESS --nthreads 1 --nworkers 2`); the scheduler's address."""
    folder = Path(tempfile.mkdtemp(prefix="mlpdash-bench-cluster-"))
    file = folder / "scheduler.json"
    # The workers import mlpdash by name, as Dask sends functions by reference: from this checkout.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
               TF_CPP_MIN_LOG_LEVEL="2")
    processes = []
    with open(log, "ab") as out:
        try:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "scheduler", "--scheduler-file", str(file), "--port", "0",
                 "--dashboard-address", ":0"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder))
            deadline = time.monotonic() + START_TIMEOUT_S
            while not file.exists():
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start (see {log})")
                time.sleep(0.1)
            address = _address(file)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1", "--nworkers", str(WORKERS),
                 "--no-dashboard"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=folder))
            yield address
        finally:
            for process in reversed(processes):
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def _address(file: Path) -> str:
    import json

    for _ in range(50):  # written by the scheduler as it starts: it may be read half-way
        try:
            return json.loads(file.read_text())["address"]
        except (ValueError, KeyError):
            time.sleep(0.1)
    raise RuntimeError(f"no address in {file}")


def _import_tensorflow() -> None:
    import tensorflow  # noqa: F401 - a worker's first run must not pay TensorFlow's import


def _sweep(queue, configs: list[TrainConfig], data: str) -> float:
    began = time.perf_counter()
    sweep = queue.enqueue(configs, data, "bench", ["seed"])
    while queue.running():
        time.sleep(0.1)
    states = [item.state for item in queue.queue.items() if item.sweep == sweep.sweep]
    if states != ["finished"] * len(configs):
        errors = [item.error for item in queue.queue.items() if item.sweep == sweep.sweep and item.error]
        raise RuntimeError(f"the bench's sweep did not finish: {states} {errors[:2]}")
    return time.perf_counter() - began


def print_cluster(data_spec: str | None, runs: int = 8) -> None:
    from distributed import Client

    from mlpdash.cluster import DaskExecutor
    from mlpdash.jobs import JobManager
    from mlpdash.queue import InProcessExecutor, SweepQueue

    source = data_spec or default_source()
    short = [TrainConfig(epochs=1, seed=seed) for seed in range(1, runs + 1)]
    print(f"cluster: a sweep of {runs} short runs (the default network, 1 epoch each) on {source}, here one "
          f"after another, then on a Dask cluster of {WORKERS} single-thread worker processes on this machine "
          "(dask scheduler, dask worker); then one default run on the cluster", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlpdash-bench-") as tmp:
        here_dir, there_dir = Path(tmp) / "here", Path(tmp) / "cluster"
        here = _sweep(SweepQueue(here_dir, InProcessExecutor(JobManager(here_dir)), keep_queue=False), short, source)
        print(f"  here, one after another: {here:.1f} s ({here / runs:.1f} s a run)", flush=True)
        with dask_cluster(Path(tmp) / "dask.log") as address:
            client = Client(address, timeout=30, set_as_default=False)
            client.wait_for_workers(WORKERS, timeout=START_TIMEOUT_S)
            client.run(_import_tensorflow)  # as a long-lived cluster's workers would have
            executor = DaskExecutor(address, there_dir, client=client)
            queue = SweepQueue(there_dir, executor, keep_queue=False)
            there = _sweep(queue, short, source)
            timings = list(executor.timings)
            print(f"  on the cluster ({WORKERS} runs at a time): {there:.1f} s ({there / here:.2f} of here; "
                  f"both workers share this machine's {os.cpu_count()} cores)", flush=True)
            _print_overheads("  short runs", timings)
            _sweep(queue, [TrainConfig()], source)
            _print_overheads("  one default run", list(executor.timings)[-1:])
            executor.close()


def _print_overheads(what: str, timings: list) -> None:
    overheads = [t.overhead for t in timings if t.overhead is not None]
    runs = [t.worker_seconds for t in timings if t.worker_seconds is not None]
    if not overheads:
        print(f"{what}: no timing came back", flush=True)
        return
    overhead, run = statistics.median(overheads), statistics.median(runs)
    size = statistics.median(t.archive_bytes for t in timings) / 1e6
    print(f"{what}: cluster overhead {overhead:.2f} s a run (median of {len(overheads)}; the run itself "
          f"{run:.1f} s on its worker; its folder {size:.1f} MB) = {overhead / run:.1%} of the run (goal: "
          "at most 5 % of a default run)", flush=True)
