"""Queued runs trained on a Dask distributed cluster: the sweep queue's second executor.

`DaskExecutor` hands each queued run to a worker of a Dask cluster (`dask scheduler` and `dask worker`
on any machines), as many at once as the cluster has workers. On the worker, `train_on_worker` trains
the run with our own engine (`TrainingJob`, headless) on the data source resolved there, sends each
finished epoch home through a `distributed.Queue`, stops when the run's `distributed.Event` is set
(`future.cancel()` does not stop a running task, dask/distributed#4694) and returns the run folder as
a zip archive. At home the archive is untrusted: it is unpacked under the same caps as any archive we
did not write (`files.iter_archive`), only the files a run folder holds are taken, and the folder is
read back by the validating run reader before it replaces, atomically, the run's home folder. That
guards against a damaged or wrong folder, not against a hostile cluster: Dask's own messages may
carry pickles, so the scheduler and workers must be trusted as the server is (README, Security).

The home folder is made when the run is handed to the cluster, and held (its lock) by this process
until the run ends, so that it is listed as training like a run trained here: each epoch that comes
home is written into its metrics, and the page draws its curve live. A run that fails or is refused
keeps that folder, with the reason in its failure record; a run to queue again (its cluster lost, or
cancelled before it began) leaves none.

A worker that dies mid-run makes the scheduler start the task again elsewhere; the task sees that it
has begun before (its "began" Event) and ends at once, so that the run is reported as lost, never
silently trained twice. A task stops its run as soon as nobody wants its result any more (its
client let go of it: the page's server restarted, or lost the scheduler), so a worker is never
left training a run that will not come home. The page's server never waits on the cluster:
connecting, following runs and passing on a cancel happen in threads of their own.
"""

from __future__ import annotations

import io
import logging
import math
import re
import secrets
import tempfile
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpdash.config import TrainConfig
from mlpdash.files import UnsafeFileError, iter_archive, write_dir_atomic
from mlpdash.queue import Outcome
from mlpdash.runs import NOTES_FILE, RunError, RunInfo, metrics_row, read_info, runs_root, set_notes
from mlpdash.runs.writer import RunWriter
from mlpdash.sweep import QueueItem

LOG = logging.getLogger("mlpdash")
CLUSTER_ENV_VAR = "MLPDASH_CLUSTER"
CONNECT_TIMEOUT_S = 5.0
# How often the worker looks at its run (epochs to send, a stop to pass on) and home at the future.
POLL_SECONDS = 0.25
# The files of a run folder that travel home: what mlpdash reads. model.keras and the SavedModel
# (model/) are for use outside mlpdash and stay on the worker's disk only as long as the task runs.
RUN_MEMBER = re.compile(  # used with fullmatch, on ASCII digits: no trailing newline, no other scripts
    r"config\.json|metrics\.jsonl|model\.weights\.npz|test_predictions\.npz|mistakes\.json|failure\.json"
    r"|summary\.json|snapshots/kernel-[0-9]{5}\.npy|timeline/epoch-[0-9]{5}\.npz|timeline/confusions\.npz")
# Caps on what comes back: a run of the default model keeps ~11 timeline files of ~5 MB and weights
# of 9 MB; a far wider network stays within these, a hostile archive does not pass them.
MAX_MEMBER_BYTES = 512 << 20
MAX_RUN_BYTES = 4 << 30
MAX_RUN_MEMBERS = 4096
WATCH_SECONDS = 2.0  # how often the cluster's workers are read again
RETRY_SECONDS = (5.0, 60.0)  # a cluster that could not be reached is tried again after 5 s, doubling to 60 s
# A task's states on its worker once its client has let go of it (the future released or cancelled).
LET_GO = ("cancelled", "released", "forgotten")
# What a run folder that came home may read as: it ended there (a damaged or unended one is refused).
ENDINGS = ("finished", "stopped", "diverged", "failed")


class ClusterError(RuntimeError):
    """The cluster cannot be reached or used: said in one line."""


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A Dask client of the scheduler at `address`; ClusterError in one line when it cannot be reached."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


# --- on the worker ---------------------------------------------------------------------------------

def train_on_worker(config: dict[str, Any], data_spec: str | None, key: str) -> dict[str, Any]:
    """Train one queued run on this Dask worker; its ending and run folder (a zip archive) as a dict.

    Each finished epoch's metrics row is put on the Queue named `key`; the run stops when the Event
    `key`-stop is set. A second start of the same run (its first worker died) ends at once as lost."""
    from distributed import Event, Queue, get_worker

    from mlpdash.training import TrainingJob

    worker = get_worker().address
    started = Event(f"{key}-began")
    if started.is_set():
        return {"state": "failed", "worker": worker, "archive": None,
                "error": "the Dask worker training this run was lost mid-run; it was not trained again "
                         "(queue it again to retry)"}
    started.set()
    stop, epochs = Event(f"{key}-stop"), Queue(key)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlpdash-worker-") as tmp:
        job = TrainingJob(TrainConfig.from_dict(config), data_spec, tmp).start()
        try:
            sent = 0
            while not job.join(POLL_SECONDS):
                sent = _send_epochs(job, epochs, sent)
                if stop.is_set() or _let_go(key):
                    job.stop()
            _send_epochs(job, epochs, sent)
        finally:  # whatever went wrong here, no run trains on into a folder that is going
            job.stop()
            job.join()
        epochs.close()  # this side's hold on it: the queue goes once home has read it and let go too
        snap = job.snapshot()
        error = f"on the Dask worker {worker}: {snap.error}" if snap.error else None
        archive = pack_run(snap.run_dir) if snap.run_dir else None
    return {"state": snap.status.value, "error": error, "worker": worker, "archive": archive,
            "seconds": time.perf_counter() - began}


def _let_go(key: str) -> bool:
    """Whether this task's client has let go of it: its result would reach nobody."""
    from distributed import get_worker

    task = get_worker().state.tasks.get(key)
    return task is None or task.state in LET_GO


def _send_epochs(job: Any, epochs: Any, sent: int) -> int:
    history = job.snapshot().history
    for row in history[sent:]:
        epochs.put(dict(row))
    return len(history)


def pack_run(run_dir: Path) -> bytes:
    """The run folder's files that mlpdash reads, as a zip archive (stored: the arrays are npz already)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(Path(run_dir).rglob("*")):
            member = path.relative_to(run_dir).as_posix()
            if path.is_file() and not path.is_symlink() and RUN_MEMBER.fullmatch(member):
                archive.write(path, member)
    return buffer.getvalue()


# --- at home -----------------------------------------------------------------------------------------

def receive_run(raw: bytes, path: Path, origin: str, config: TrainConfig | None = None) -> RunInfo:
    """Put the run folder that came back from `origin` at `path` (replacing, atomically, what is
    there) once the run reader has read it as a run that ended (and trained `config`, when given);
    its listing. RunError naming `origin` and the problem otherwise: `path` is then left as it was."""
    what = f"the run folder from {origin}"
    if len(raw) > MAX_RUN_BYTES:
        raise RunError(f"{what}: {len(raw):,} bytes, more than the {MAX_RUN_BYTES:,} allowed")
    notes = path / NOTES_FILE  # the name the queue gave the run at home travels on

    def fill(tmp: Path) -> None:
        # One member at a time, each checked before it is written: a refused one ends the whole.
        try:
            for name, data in iter_archive(raw, what, MAX_MEMBER_BYTES, MAX_RUN_BYTES, MAX_RUN_MEMBERS):
                if not RUN_MEMBER.fullmatch(name):
                    raise RunError(f"{what}: holds {name[:80]!r}, not a file of a run folder")
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except UnsafeFileError as err:
            raise RunError(str(err)) from None
        if notes.is_file() and not notes.is_symlink():
            (tmp / NOTES_FILE).write_bytes(notes.read_bytes())

    def check(tmp: Path) -> None:
        if not (tmp / "config.json").is_file():
            raise RunError(f"{what}: no config.json")
        info = read_info(tmp)
        if info.status not in ENDINGS:
            raise RunError(f"{what}: {_unprefixed(info.error, tmp) or 'a run that had not ended'}")
        if config is not None and info.config != config:
            raise RunError(f"{what}: it trained other settings than the ones queued")

    path.parent.mkdir(parents=True, exist_ok=True)
    write_dir_atomic(path, fill, check)
    return read_info(path)


def _unprefixed(error: str | None, tmp: Path) -> str | None:
    """The reader's error without the temporary folder's path it starts with."""
    return error.replace(f"{tmp}/", "").replace(str(tmp), "the folder") if error else error


def checked_rows(rows: list[Any]) -> list[dict[str, float]]:
    """The epochs a worker sent, as far as they are sound metrics rows in order (the rest dropped)."""
    kept: list[dict[str, float]] = []
    for raw in rows:
        row = metrics_row(raw)
        if row is None or row["epoch"] != len(kept) + 1:
            break
        kept.append(row)
    return kept


def _mark_origin(path: Path, worker: str) -> None:
    """The worker's address in the run's note, after whatever the queue named it."""
    info = read_info(path)
    try:
        set_notes(path, info.name, f"{info.note}\nTrained on the Dask worker {worker}.".strip())
    except (OSError, ValueError, RunError) as err:
        LOG.warning("could not note the worker of %s: %s", path, err)


@dataclass(frozen=True)
class RunTiming:
    """Where a run's time went: from its hand-over to its folder home, and on the worker."""

    seconds: float  # hand-over to the folder home
    worker_seconds: float | None  # in the worker's task: data, training, testing, saving, packing
    archive_bytes: int

    @property
    def overhead(self) -> float | None:
        """The cluster path's own cost: the hand-over, the wait for a place on a worker, the epochs
        and the end sent home, the folder carried and checked."""
        return None if self.worker_seconds is None else self.seconds - self.worker_seconds


@dataclass(eq=False)
class _DaskHandle:
    """A queued run on a Dask worker: its future, its home folder, its epochs so far, its stop."""

    executor: DaskExecutor
    item: QueueItem
    key: str
    future: Any
    writer: RunWriter
    history: list[dict[str, float]] = field(default_factory=list)
    submitted: float = field(default_factory=time.perf_counter)
    timing: RunTiming | None = None
    epochs: Any = None  # the run's distributed.Queue, once made
    cancelled: bool = False  # Cancel was pressed

    def wait(self) -> Outcome:
        outcome = None
        try:
            outcome = self._wait()
            return outcome
        finally:  # whatever happened, the worker's place is freed and the home folder ends
            try:
                self.executor._release(self)
            finally:
                try:
                    self._settle(outcome)
                finally:
                    self._forget()

    def stop(self) -> None:
        """Cancel: the run stops on its worker (saved there, as a stopped run, and brought home), or,
        not begun yet, is dropped. Asked in a thread of its own: the page does not wait on the cluster."""
        self.cancelled = True
        threading.Thread(target=self._stop_remotely, name=f"mlpdash-cancel-{self.key}", daemon=True).start()

    def _stop_remotely(self) -> None:
        from distributed import Event

        client = self.executor.client
        try:
            Event(f"{self.key}-stop", client=client).set()
            if not Event(f"{self.key}-began", client=client).is_set():
                self.future.cancel()  # still waiting for a worker: it never will now
        except Exception as err:  # noqa: BLE001 - a cluster gone: the run ends as not run anyway
            LOG.warning("could not ask the cluster to stop %s: %s", self.key, err)

    @property
    def path(self) -> Path:
        return self.writer.path

    def _forget(self) -> None:
        """The run's queue and events leave the scheduler (a cleared Event is deleted there): a server
        that queues sweeps for weeks leaves nothing behind. Best effort: the scheduler may be gone."""
        from distributed import Event

        client = self.executor.client
        try:
            if client is None or client.status != "running":
                return
            if self.epochs is not None:
                self.epochs.close()
            for suffix in ("-began", "-stop"):
                Event(f"{self.key}{suffix}", client=client).clear()
        except Exception as err:  # noqa: BLE001 - tidying must never change how the run ended
            LOG.info("could not tidy the cluster's record of %s: %s", self.key, err)

    def _wait(self) -> Outcome:
        from distributed import Queue
        from distributed.client import FutureCancelledError

        try:
            self.epochs = Queue(self.key, client=self.executor.client)
            while not self.future.done():
                self._take_epochs(self.epochs)
                time.sleep(POLL_SECONDS)
            self._take_epochs(self.epochs)
            result = self.future.result()
        except FutureCancelledError:
            if self.cancelled:
                return Outcome("cancelled", None, None)
            return Outcome("not run", f"the cluster at {self.executor.address} was lost before this run ended: "
                                      "Resume queues it again", None)
        except (OSError, TimeoutError) as err:  # the scheduler lost: the run can be queued again
            return Outcome("not run", f"the cluster at {self.executor.address} was lost: "
                                      f"{_first_line(err)}", None)
        except Exception as err:  # KilledWorker, or the task itself raised
            return Outcome("failed", f"on the cluster at {self.executor.address}: {type(err).__name__}: "
                                     f"{_first_line(err)}", self.path.name)
        return self._bring_home(result)

    def _take_epochs(self, epochs: Any) -> None:
        try:
            came = epochs.get(batch=True) or []  # whatever has come, without waiting
        except (OSError, TimeoutError):
            return  # the next look, or the future's end, says what happened
        if came:
            self.history = checked_rows(self.history + list(came))
            self.writer.write_epoch(self.history, None)

    def _bring_home(self, result: Any) -> Outcome:
        if not isinstance(result, dict):
            return Outcome("failed", "the Dask worker sent back something that is not a run's ending", self.path.name)
        worker = str(result.get("worker", "an unknown worker"))[:200]
        error = result.get("error")
        error = str(error)[:500] if error is not None else None
        raw = result.get("archive")
        worker_seconds = result.get("seconds")
        if not (isinstance(worker_seconds, int | float) and math.isfinite(worker_seconds)):
            worker_seconds = None
        if not isinstance(raw, bytes):
            return Outcome("failed", error or f"the Dask worker {worker} sent no run folder back", self.path.name)
        try:
            info = receive_run(raw, self.path, f"the Dask worker {worker}", self.item.config)
        except (RunError, OSError) as err:
            return Outcome("failed", f"refused: {err}"[:500], self.path.name)
        self.writer.close()
        self.timing = RunTiming(time.perf_counter() - self.submitted, worker_seconds, len(raw))
        _mark_origin(info.path, worker)
        # How it ended as read here, from the folder; the worker's word only for the error.
        return Outcome(info.status, error or info.error, info.path.name)

    def _settle(self, outcome: Outcome | None) -> None:
        """The home folder once the run has ended: replaced by the worker's (closed already), a failure
        record with the reason, or (a run to queue again) gone."""
        if self.writer.closed:
            return
        if outcome is not None and outcome.state in ("not run", "cancelled"):
            self.writer.discard()
            return
        try:
            self.writer.write_failure(outcome.error if outcome is not None and outcome.error
                                      else "the queue lost track of this run on the cluster")
        finally:
            self.writer.close()


class DaskExecutor:
    """Trains queued runs on the Dask cluster at `address`, one run a worker at a time.

    The client connects in a thread of its own (with `wait=False`) and the cluster's workers are read
    every few seconds there too, so that the page, which asks where runs train and whether one can be
    queued, never waits on the cluster."""

    remote = True

    def __init__(self, address: str, runs_dir: str | Path | None = None, client: Any = None,
                 wait: bool = True) -> None:
        self.address = address
        self.runs_dir = runs_root(runs_dir)
        self.client = client
        self._problem: str | None = None  # why the cluster could not be used at its last look
        self._workers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Condition()
        self._active: list[_DaskHandle] = []
        self.timings: deque[RunTiming] = deque(maxlen=1000)  # of the runs brought home, newest last
        self._closed = threading.Event()
        if client is None and wait:
            self.client = connect(address)  # ClusterError: the caller says it in one line
        if self.client is not None:
            self._refresh()
        threading.Thread(target=self._watch, name="mlpdash-cluster", daemon=True).start()

    @property
    def connected(self) -> bool:
        return self.client is not None and self._problem is None

    @property
    def problem(self) -> str | None:
        """Why no run can be queued now, in one line; None when the cluster answers."""
        if self._problem:
            return self._problem
        return None if self.client is not None else f"still connecting to the Dask scheduler at {self.address}"

    def workers(self) -> int:
        """How many workers the cluster had at its last look (0 when it could not say)."""
        return len(self._workers)

    def describe(self) -> str:
        """Where the runs train, in words: the address, its workers and their threads."""
        if not self.connected:
            return f"the Dask cluster at {self.address} (not answering now)" if self._problem else \
                f"the Dask cluster at {self.address} (connecting)"
        workers = self._workers
        threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
        return (f"the Dask cluster at {self.address}: {len(workers)} worker{'s' * (len(workers) != 1)}, "
                f"{threads} thread{'s' * (threads != 1)}")

    def submit(self, item: QueueItem, on_run_dir: Callable[[Path], None]) -> _DaskHandle | None:
        with self._lock:
            client = self.client
            if client is None or not self.connected:
                raise ClusterError(f"the Dask cluster at {self.address} cannot take runs now: {self.problem}")
            if len(self._active) >= self.workers():
                return None  # all busy, or no worker at all yet: the run waits
            key = f"mlpdash-{item.item}-{secrets.token_hex(4)}"
            try:
                future = client.submit(train_on_worker, item.config.to_dict(), item.data, key,
                                       key=key, pure=False, retries=0)
            except Exception as err:  # noqa: BLE001 - a client closing (the scheduler went): the run waits, set aside
                self._problem = f"the Dask scheduler at {self.address} does not answer: {_first_line(err)}"
                return None
            try:
                writer = RunWriter(self.runs_dir, item.config, item.data or "the worker's default source")
            except BaseException:
                future.cancel()  # not begun yet, or stopped by its event below
                _DaskHandle(self, item, key, future, None).stop()
                raise
            try:
                on_run_dir(writer.path)
            except Exception:  # bookkeeping of the queue's, as for a run trained here: the run goes on
                LOG.exception("recording the run folder %s failed", writer.path)
            handle = _DaskHandle(self, item, key, future, writer)
            self._active.append(handle)
            return handle

    def wait_until_free(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.connected or len(self._active) >= self.workers():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 1.0))  # a worker joining the cluster frees a place too
            return True

    def running(self) -> list[_DaskHandle]:
        """The runs training on the cluster now, in the order they were handed to it."""
        with self._lock:
            return list(self._active)

    def close(self) -> None:
        self._closed.set()
        if self.client is not None:
            self.client.close()

    def _release(self, handle: _DaskHandle) -> None:
        with self._lock:
            if handle in self._active:
                self._active.remove(handle)
            if handle.timing is not None:
                self.timings.append(handle.timing)
            self._lock.notify_all()

    def _watch(self) -> None:
        retry = RETRY_SECONDS[0]
        while not self._closed.is_set():
            if self.client is None:
                try:
                    self.client = connect(self.address)
                except ClusterError as err:
                    self._problem = str(err)
            if self.client is not None:
                self._refresh()
            if self.connected:
                retry = RETRY_SECONDS[0]
                self._closed.wait(WATCH_SECONDS)
            else:  # a cluster that is not there is asked less and less often
                self._closed.wait(retry)
                retry = min(retry * 2, RETRY_SECONDS[1])

    def _refresh(self) -> None:
        client = self.client
        try:
            if client.status != "running":  # reconnecting, or given up: its record is stale
                raise OSError(f"the client is {client.status}")
            self._workers = dict(client.scheduler_info(n_workers=-1)["workers"])
            self._problem = None
        except (OSError, TimeoutError, KeyError, TypeError, AttributeError) as err:
            # A closed client answers with an empty record (KeyError): its connection is gone.
            why = "its connection was lost" if isinstance(err, KeyError) else _first_line(err)
            self._problem = f"the Dask scheduler at {self.address} does not answer: {why}"
            if getattr(client, "status", None) in ("closed", "closing"):
                self.client = None  # it gave up reconnecting: the watch makes a new one
        with self._lock:
            self._lock.notify_all()
