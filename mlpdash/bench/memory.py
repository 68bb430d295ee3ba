"""Memory, with `python -m mlpdash bench --memory-runs N`: the RSS (VmRSS) of a fresh child process
after each of N default-size 1-epoch runs trained one after another through the server's job manager,
as the server trains them; then what loading a hostile run folder costs (mlpdash/bench/run_loading.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile

from mlpdash.bench.common import default_architecture, sample_drawing, status_mb
from mlpdash.bench.run_loading import print_run_loading

# The goal: the server grows by at most this much over GOAL_RUNS runs.
GOAL_GROWTH_MB = 100
GOAL_RUNS = 10


def print_memory(data_spec: str | None, runs: int) -> None:
    """RSS growth over `runs` default-size jobs, measured in a fresh child process (see memory_child),
    then the hostile run folders."""
    source = data_spec or "sample"
    print(f"memory: RSS of one fresh process (a child of this one, nothing else loaded) training {runs} "
          f"default-size runs ({default_architecture()}, 1 epoch each, data {source}) one after another "
          "through JobManager, as the server does; the growth is per job, not per epoch", flush=True)
    code = f"from mlpdash.bench.memory import memory_child; memory_child({source!r}, {runs})"
    # The child's lines go straight to our stdout; its TensorFlow chatter is not part of the figure.
    subprocess.run([sys.executable, "-c", code], check=True, stderr=subprocess.DEVNULL)
    print_run_loading()


def memory_child(data_spec: str, runs: int) -> None:
    """Train `runs` 1-epoch default jobs through one server's job manager, asking each model for a
    drawing as a tab would, and print the RSS after each run and the growth."""
    from mlpdash.config import TrainConfig
    from mlpdash.predict import predict_drawing
    from mlpdash.server import Server

    drawing = sample_drawing()
    after: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server.open(tmp)
        print(f"  RSS before the first run (TensorFlow not yet imported): {rss_mb():.1f} MB", flush=True)
        for _ in range(runs):
            job = server.jobs.start(TrainConfig(epochs=1), data_spec)
            job.join()
            predictor = server.focus().predictor()  # the model a tab's drawing is answered by
            if predictor is not None:
                predict_drawing(predictor, drawing)
            after.append(rss_mb())
    print(f"  RSS after run 1: {after[0]:.1f} MB, after run {runs}: {after[-1]:.1f} MB "
          f"(each run: {', '.join(f'{mb:.0f}' for mb in after)})", flush=True)
    total = after[-1] - after[0]
    per_run = total / (runs - 1) if runs > 1 else 0.0
    print(f"  growth from run 1 to run {runs}: {total:.1f} MB total, {per_run:.1f} MB per run "
          f"(goal: growth <= {GOAL_GROWTH_MB} MB over {GOAL_RUNS} runs, i.e. <= "
          f"{GOAL_GROWTH_MB / (GOAL_RUNS - 1):.1f} MB per run)", flush=True)


def rss_mb() -> float:
    """This process's resident set size (VmRSS of /proc/self/status) in MB."""
    return status_mb("VmRSS")

