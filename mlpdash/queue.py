"""Queued runs (a sweep's) trained one after another by a worker, behind an executor.

`SweepQueue` keeps the queue (`sweep.RunQueue`, saved in the runs folder) and one worker thread that
hands the next waiting run to an `Executor` whenever the executor is free, and a follower thread per
run in progress that waits for it to end and records how it ended. The executor is where runs train:
`InProcessExecutor` (the default) trains each run as the server's one interactive job (it shows in the
status line, with pause and stop, and waits while a job started by hand trains), so runs train one
after another; `mlpdash.cluster.DaskExecutor` trains them on a Dask cluster's workers, as many at once
as it has workers.
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

    remote: bool  # whether runs train elsewhere (not as this process's job)

    @property
    def problem(self) -> str | None:
        """Why no run can be queued now (a cluster that does not answer), in one line; None: none."""

    def describe(self) -> str:
        """Where the runs train, in words ("this server, one run after another")."""


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

    remote = False
    problem = None

    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs

    def describe(self) -> str:
        return "this server, one run after another"

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

    # The executor, the queue and the runs in progress are shared by the worker, the followers and
    # the page's threads: every change to `_running` and `_worker` is made under `_lock`.

    def __init__(self, runs_dir: Path, executor: Executor, keep_queue: bool = True) -> None:
        self.runs_dir = Path(runs_dir)
        self.executor = executor
        # With `keep_queue` (the server's) the queue lives in the runs folder and survives a restart.
        self.queue = RunQueue(self.runs_dir / QUEUE_FILE if keep_queue else None)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._running: dict[str, tuple[QueueItem, RunHandle]] = {}  # the queued runs training now, by item
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
                current = self._running.get(item.item)
            if current is not None:
                self._cancelled.add(item.item)
                current[1].stop()

    def current(self) -> QueueItem | None:
        """The queued run being trained now (the first begun, when several are), if any."""
        training = self.training()
        return training[0] if training else None

    def training(self) -> list[QueueItem]:
        """The queued runs being trained now, in the order they began."""
        with self._lock:
            return [item for item, _ in self._running.values()]

    def running(self) -> bool:
        """Whether queued runs are training or waiting to."""
        with self._lock:
            return self._worker is not None or bool(self._running)

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
        except BaseException:
            LOG.exception("the sweep queue's worker failed")
            with self._lock:  # the runs begun go on: their followers record how each ends
                self._worker = None

    def _drain_queue(self) -> None:
        from mlpdash.training import ShuttingDownError

        while True:
            if not self.executor.wait_until_free(BUSY_POLL_SECONDS):
                # A job started by hand trains, or the cluster's workers are all busy: wait for them,
                # unless there is nothing left to wait for, or nothing it could be waited on.
                with self._lock:
                    if self.executor.problem and not self._running:
                        self._set_aside(self.executor.problem)
                    if not self.queue.waiting():
                        self._worker = None
                        return
                continue
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
                self._running[item.item] = (item, handle)
            threading.Thread(target=self._follow_safely, args=(item, handle), name=f"mlpdash-queue-{item.item}",
                             daemon=True).start()

    def _set_aside(self, problem: str) -> None:
        """The executor cannot train runs now (its cluster is lost): the waiting runs are marked
        "not run", with why, so that Resume queues them again (here or on a cluster)."""
        for item in self.queue.items():
            if item.state == WAITING:
                self.queue.update(item.item, state="not run", error=f"not started: {problem}"[:500])

    def _follow_safely(self, item: QueueItem, handle: RunHandle) -> None:
        """`_follow`, and whatever goes wrong in it, no run stays "running"."""
        try:
            self._follow(item, handle)
        except BaseException as err:
            LOG.exception("following the queued run %s failed", item.item)
            self.queue.update(item.item, state="failed", error=f"the queue's worker failed: {err}"[:500])
        finally:
            with self._lock:
                self._running.pop(item.item, None)

    def _record_run(self, item: QueueItem, path: Path) -> None:
        """The queued run's folder exists: record it at once (a restart then finds it) and name it."""
        self.queue.update(item.item, run=path.name)
        _name_sweep_run(path, item)

    def _follow(self, item: QueueItem, handle: RunHandle) -> None:
        """Wait for the queued run to end and record how it ended (in a thread of its own: an
        executor with several workers trains several runs at once)."""
        outcome = handle.wait()
        state = outcome.state
        if item.item in self._cancelled:
            self._cancelled.discard(item.item)
            if state == Status.STOPPED.value:  # a cancel that came after the run had finished is no stop
                state = "cancelled"
        self.queue.update(item.item, state=state, error=outcome.error, run=outcome.run)

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
