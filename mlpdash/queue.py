"""Queued runs (a sweep's) trained one after another by a worker, behind an executor.

`SweepQueue` keeps the queue (`sweep.RunQueue`, saved in the runs folder) and one worker thread that
takes the next waiting run, hands it to an `Executor`, waits for it to end and records how it ended.
The executor is where runs train: today `InProcessExecutor`, which trains each run as the server's
one interactive job (it shows in the status line, with pause and stop, and waits while a job started
by hand trains); a cluster's executor implements the same two methods.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlpdash.config import TrainConfig
from mlpdash.jobs import JobManager
from mlpdash.progress import Status
from mlpdash.runs import MAX_NAME_CHARS, RunError, read_info, set_notes, trash_run
from mlpdash.sweep import QUEUE_FILE, WAITING, QueueItem, RunQueue, Sweep

if TYPE_CHECKING:
    from mlpdash.training import TrainingJob

LOG = logging.getLogger("mlpdash")
BUSY_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """How a queued run ended: its queue state, error and run folder's name."""

    state: str
    error: str | None
    run: str | None


class RunHandle(Protocol):
    """A queued run being trained by an executor."""

    def wait(self) -> Outcome:
        """Block until the run has ended."""

    def stop(self) -> None:
        """End the run early (it is saved, as a stopped run is)."""


class Executor(Protocol):
    """Trains queued runs. The worker waits until the executor is free, then submits the next run;
    `submit` may still find it busy (work that came in between) and return None: the run waits on."""

    def submit(self, item: QueueItem, on_run_dir: Callable[[Path], None]) -> RunHandle | None:
        """Start `item`'s run; None when busy; ShuttingDownError when the process is exiting; any
        other exception is that run's failure."""

    def wait_until_free(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until a run can be submitted; whether it can now."""


class _JobHandle:
    def __init__(self, job: TrainingJob) -> None:
        self.job = job

    def wait(self) -> Outcome:
        self.job.join()
        snap = self.job.snapshot()
        return Outcome(snap.status.value if snap.status.ended else "failed", snap.error,
                       Path(snap.run_dir).name if snap.run_dir else None)

    def stop(self) -> None:
        self.job.stop()


class InProcessExecutor:
    """Trains each queued run in this process as the server's interactive job."""

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    def submit(self, item: QueueItem, on_run_dir: Callable[[Path], None]) -> RunHandle | None:
        # Decided and started under the manager's lock: a Start pressed meanwhile cannot slip between.
        with self.jobs.lock:
            if self.jobs.active():
                return None
            return _JobHandle(self.jobs.start_locked(item.config, item.data, None, on_run_dir=on_run_dir))

    def wait_until_free(self, timeout: float) -> bool:
        job = self.jobs.job
        if job is None or not job.status.active:
            return True
        return job.join(timeout) or not job.status.active


class SweepQueue:
    """The queue of sweep runs and its worker, for every tab of the server (and the CLI's sweep)."""

    def __init__(self, runs_dir: Path, executor: Executor, keep_queue: bool = True) -> None:
        self.runs_dir = Path(runs_dir)
        self.executor = executor
        # With `keep_queue` (the server's) the queue lives in the runs folder and survives a restart.
        self.queue = RunQueue(self.runs_dir / QUEUE_FILE if keep_queue else None)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._current: tuple[QueueItem, RunHandle] | None = None  # the queued run training now
        self._cancelled: set[str] = set()
        if keep_queue:
            self._unstarted_after_restart()

    def enqueue(self, configs: list[TrainConfig], data_spec: str | None, name: str, swept: list[str]) -> Sweep:
        """Queue a sweep's runs; they train one after another once the executor is free."""
        sweep = self.queue.add(configs, data_spec, name, swept)
        self._drain()
        return sweep

    def resume_sweep(self, sweep: str) -> int:
        """Queue again the runs of a sweep that a server restart left unstarted."""
        count = self.queue.resume(sweep)
        self._drain()
        return count

    def cancel(self, item_ids: list[str]) -> None:
        """Cancel queued runs; one being trained is stopped (it is saved, as a stopped run is)."""
        for item in self.queue.cancel(item_ids):
            with self._lock:
                current = self._current
            if current is not None and current[0].item == item.item:
                self._cancelled.add(item.item)
                current[1].stop()

    def current(self) -> QueueItem | None:
        """The queued run being trained now, if any."""
        current = self._current
        return None if current is None else current[0]

    def running(self) -> bool:
        """Whether queued runs are training or waiting to."""
        return self._worker is not None

    def _drain(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="mlpdash-queue", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """Train the queue's runs one at a time. Whatever happens, the worker ends cleanly: a later
        sweep starts a new one, and no run stays "running"."""
        try:
            self._drain_queue()
        except BaseException as err:
            LOG.exception("the sweep queue's worker failed")
            current = self._current
            if current is not None:
                self.queue.update(current[0].item, state="failed",
                                  error=f"the queue's worker failed: {err}"[:500])
            with self._lock:
                self._worker, self._current = None, None

    def _drain_queue(self) -> None:
        from mlpdash.training import ShuttingDownError

        while True:
            if not self.executor.wait_until_free(BUSY_POLL_SECONDS):
                continue  # a job started by hand trains: the queue waits for it
            # Taken, started and made current in one step under the lock: a cancel sees the run either
            # still waiting (and cancels it there) or current (and stops it), never in between.
            with self._lock:
                item = self.queue.take_next()
                if item is None:
                    self._worker = None  # under the lock: an enqueue now starts a new worker
                    return
                try:
                    handle = self.executor.submit(item, functools.partial(self._record_run, item))
                except ShuttingDownError:
                    self.queue.update(item.item, state="queued")  # read back as "not run"
                    self._worker = None
                    return
                except Exception as err:  # a run that cannot start must not stop the queue
                    self.queue.update(item.item, state="failed", error=str(err)[:500])
                    continue
                if handle is None:  # a Start came in between: this run waits its turn, first in line
                    self.queue.update(item.item, state=WAITING)
                    continue
                self._current = (item, handle)
            self._follow(item, handle)

    def _record_run(self, item: QueueItem, path: Path) -> None:
        """The queued run's folder exists: record it at once (a restart then finds it) and name it."""
        self.queue.update(item.item, run=path.name)
        _name_sweep_run(path, item)

    def _follow(self, item: QueueItem, handle: RunHandle) -> None:
        """Wait for the queued run to end and record how it ended."""
        outcome = handle.wait()
        state = outcome.state
        if item.item in self._cancelled:
            self._cancelled.discard(item.item)
            if state == Status.STOPPED.value:  # a cancel that came after the run had finished is no stop
                state = "cancelled"
        self.queue.update(item.item, state=state, error=outcome.error, run=outcome.run)
        with self._lock:
            self._current = None

    def _unstarted_after_restart(self) -> None:
        """A queued run whose process died after making its folder but before its first epoch left
        an empty "interrupted after 0 epochs" run: it goes to the trash (restorable for a day) and
        the run is "not run", so that Resume trains it."""
        for item in self.queue.items():
            if item.state != "interrupted" or not item.run:
                continue
            info = read_info(self.runs_dir / item.run)
            # Empty for sure: no epoch in its metrics (a damaged metrics file reads as none) and no
            # weights, which only an epoch's end writes.
            if info.status != "interrupted" or info.epochs_completed or info.has_model:
                continue
            try:
                trash_run(info.path)
            except (RunError, OSError) as err:
                LOG.warning("could not move the empty run %s to the trash: %s", info.path, err)
                continue
            self.queue.update(item.item, state="not run", run=None)


def _name_sweep_run(path: Path, item: QueueItem) -> None:
    """A sweep's runs are named for what they vary ("learning_rate 0.01, hidden 128"), so that the
    comparison's legends say it; a user may rename them."""
    try:
        set_notes(path, item.label[:MAX_NAME_CHARS], f"A run of {item.sweep_name}")
    except (OSError, ValueError):
        pass  # a name is a convenience: the run trains on without one
