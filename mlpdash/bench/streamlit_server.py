"""A real `streamlit run app.py` for the bench and the browser tests, with the page's drawing path
timed inside it (mlpdash/ui/bench_server.py), and the reading of those timings: the server's work for
a drawing, and the tabs' polls a second. The bench starts the server as a separate process and never
imports the UI; the UI never imports the bench."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlpdash.bench.common import REPO_ROOT
from mlpdash.bench.throughput import Throughput

SERVER_START_TIMEOUT_S = 120


@dataclass(frozen=True)
class BenchServer:
    url: str
    pid: int
    runs: Path
    timings: Path  # one line a timed call: thread, name, began, ended (time.monotonic())


@contextmanager
def streamlit_server(source: str, folder: Path) -> Iterator[BenchServer]:
    """`streamlit run app.py` on a free port, as the browser tests start it, with its drawing path
    timed (mlpdash.ui.bench_server); stopped (the job saved) on leaving."""
    port = free_port()
    server = BenchServer(f"http://127.0.0.1:{port}", 0, folder / "runs", folder / "timings.txt")
    server.runs.mkdir(exist_ok=True)  # a later server on the same folder finds the runs of the last
    env = dict(os.environ, MLPDASH_DATA=source, MLPDASH_RUNS=str(server.runs), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONUNBUFFERED="1")
    # The timings file is named in the code the child runs: the page's module takes it as an argument
    # and shares no constant with the bench.
    serve = f"from mlpdash.ui.bench_server import serve_timed; serve_timed({str(server.timings)!r})"
    command = [sys.executable, "-c", serve,
               "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
    log = folder / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(server.url, proc, log)
        yield dataclasses.replace(server, pid=proc.pid)
    finally:
        proc.terminate()  # the server stops the job, which saves the run: allow for it
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a test or bench server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Wait until a Streamlit server answers its health check; RuntimeError with its log if it
    exits or takes longer than SERVER_START_TIMEOUT_S."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def server_drawing_seconds(log: Path) -> list[float]:
    """Per drawing: from the start of its preprocessing to the end of its prediction, in the script
    thread that did both."""
    started: dict[str, float] = {}
    seconds = []
    for line in log.read_text().splitlines() if log.exists() else []:
        thread, name, began, ended = line.split()
        if name == "preprocess":
            started[thread] = float(began)
        elif name == "predict" and thread in started:
            seconds.append(float(ended) - started.pop(thread))
    return seconds


def rate(log: Path, name: str, window: Throughput) -> float:
    """Calls of `name` a second that began inside the measuring window."""
    lines = log.read_text().splitlines() if log.exists() else []
    began = [float(line.split()[2]) for line in lines if line.split()[1] == name]
    return sum(window.ended - window.window_s <= t <= window.ended for t in began) / window.window_s
