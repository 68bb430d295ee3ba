"""Training throughput as a run folder records it: samples a second over whole epochs of one run,
with the CPU seconds of the processes involved over the same window. Used headless here and against
a real server by mlpdash/bench/tabs.py (`python -m mlpdash bench --tabs`)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Long enough that the run is still training when the window ends; the architecture is the default.
BENCH_EPOCHS = 200
PACE_EVERY_S = 2.0
POLL_S = 0.05
# How long past the window an epoch may take to end before the run counts as stuck.
EPOCH_GRACE_S = 120
# The page's charts refresh period (mlpdash/ui/panels.py: REFRESH_SECONDS x CHARTS_REFRESH_FACTOR),
# restated here because the bench must not import Streamlit.
CHARTS_REFRESH_S = 3.0


@dataclass(frozen=True)
class Throughput:
    """Training speed over whole epochs of one run, as the run folder records them."""

    samples_per_s: float  # training samples per wall-clock second, epoch end to epoch end
    epochs: int
    window_s: float
    pace: float | None  # median of the status line's samples/s (its last 20 training batches)
    server_cpu_s: float | None  # CPU seconds of the training process over the window
    browser_cpu_s: float | None  # CPU seconds of Chromium over the window
    ended: float = 0.0  # time.monotonic() at the window's end
    live_updates_per_s: float | None = None  # loss charts the server built a second (one per tab poll)
    tabs: int = 0


def headless_throughput(source: str, seconds: float) -> Throughput:
    """The same run with no server and no page: the job alone in this process."""
    from mlpdash.config import TrainConfig
    from mlpdash.training import TrainingJob

    with tempfile.TemporaryDirectory() as tmp:
        job = TrainingJob(TrainConfig(epochs=BENCH_EPOCHS), source, tmp).start()
        try:
            while job.snapshot().run_dir is None:  # loading data, building the model
                if job.join(POLL_S):
                    raise RuntimeError(f"the headless run ended early: {job.snapshot().error}")
            snap = job.snapshot()
            return measure(snap.run_dir / "metrics.jsonl", snap.train_size, seconds,
                           lambda: job.snapshot().samples_per_second, [os.getpid()], [])
        finally:
            job.stop()
            job.join(60)


def measure(metrics: Path, train_size: int, seconds: float, pace: Callable[[], float | None],
            server_pids: list[int], browser_pids: list[int]) -> Throughput:
    """Watch the run folder from one epoch end to the first epoch end `seconds` or more later."""
    began, first = _next_epoch_end(metrics, len(_rows(metrics)), seconds + EPOCH_GRACE_S)
    cpu0 = cpu_seconds(server_pids), cpu_seconds(browser_pids)
    paces: list[float] = []
    next_pace, ended, last = began, began, first
    while ended - began < seconds:
        now = time.monotonic()
        if now >= next_pace:
            paces += [p for p in [pace()] if p]
            next_pace += PACE_EVERY_S
        rows = len(_rows(metrics))
        if rows > last:
            ended, last = now, rows
        elif now - began > seconds + EPOCH_GRACE_S:
            raise TimeoutError(f"no epoch ended for {now - ended:.0f} s ({metrics})")
        time.sleep(POLL_S)
    cpu1 = cpu_seconds(server_pids), cpu_seconds(browser_pids)
    return Throughput(
        samples_per_s=(last - first) * train_size / (ended - began), epochs=last - first,
        window_s=ended - began, pace=statistics.median(paces) if paces else None,
        server_cpu_s=cpu1[0] - cpu0[0], browser_cpu_s=cpu1[1] - cpu0[1] if browser_pids else None,
        ended=ended,
    )


def throughput_line(result: Throughput) -> str:
    pace = f"{result.pace:,.0f}" if result.pace else "—"
    cpu = ""
    if result.server_cpu_s is not None:
        cpu = f"; CPU over the window: training process {result.server_cpu_s:.1f} s"
        if result.browser_cpu_s is not None:
            cpu += f", Chromium {result.browser_cpu_s:.1f} s"
    updates = "" if result.live_updates_per_s is None else f"; live updates {result.live_updates_per_s:.1f}/s"
    if result.tabs:
        updates += (f" (each of the {result.tabs} tab(s) asks every {CHARTS_REFRESH_S:g} s; tabs that show the "
                    "same state share one figure)")
    return (f"{result.samples_per_s:,.0f} samples/s ({result.epochs} epochs in {result.window_s:.1f} s; "
            f"status line {pace}){cpu}{updates}")


def _next_epoch_end(metrics: Path, seen: int, timeout: float) -> tuple[float, int]:
    """(time, rows) as soon as metrics.jsonl has more than `seen` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = len(_rows(metrics))
        if rows > seen:
            return time.monotonic(), rows
        time.sleep(POLL_S)
    raise TimeoutError(f"no epoch ended in {timeout:.0f} s ({metrics})")


def _rows(metrics: Path) -> list[str]:
    try:
        return metrics.read_text().splitlines()
    except FileNotFoundError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the live processes `pids` (from /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone: its time is lost, which is why windows are read from live processes
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(root: int, exclude: int | None = None) -> list[int]:
    """Every process below `root`, leaving out `exclude` and its own descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid != exclude]
        found += children
        frontier += children
    return found
