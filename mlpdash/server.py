"""The long-lived parts of a dashboard server, shared by every tab: the one job, the sweep queue, the
store and the guided lesson's place, each doing one thing.

The page keeps one `Server` (in `st.cache_resource`) and makes a `Focus` from it on every run; the
CLI's sweep command opens one too. Jobs load their data through the store, so a dataset is read once
for training and for every view.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlpdash.focus import Focus
from mlpdash.guide import Guide
from mlpdash.jobs import JobManager
from mlpdash.queue import Executor, InProcessExecutor, SweepQueue
from mlpdash.store import Store


@dataclass(frozen=True)
class Server:
    jobs: JobManager
    sweeps: SweepQueue
    store: Store
    guide: Guide

    @classmethod
    def open(cls, runs_dir: str | Path | None = None, keep_queue: bool = True, cluster: str | None = None) -> Server:
        """The parts for the runs folder `runs_dir` (None: the default); with `keep_queue` the sweep
        queue is saved in that folder and read back after a restart. Queued runs train on the Dask
        cluster at `cluster` (None: $MLPDASH_CLUSTER; empty or unset: here, as the server's job)."""
        store = Store()
        jobs = JobManager(runs_dir, loader=store.data)
        return cls(jobs, SweepQueue(jobs.runs_dir, _executor(jobs, cluster), keep_queue), store, Guide(jobs))

    @property
    def runs_dir(self) -> Path:
        return self.jobs.runs_dir

    def focus(self, picked: Path | None = None) -> Focus:
        """What the views are about now, with `picked` the run chosen under Runs (None: none)."""
        return Focus(self.jobs, self.store, picked)


def _executor(jobs: JobManager, cluster: str | None) -> Executor:
    from mlpdash.cluster import CLUSTER_ENV_VAR, DaskExecutor

    address = os.environ.get(CLUSTER_ENV_VAR, "") if cluster is None else cluster
    if not address.strip():
        return InProcessExecutor(jobs)
    # Connected in the executor's own thread: a cluster that is slow to answer never holds up the page.
    return DaskExecutor(address.strip(), jobs.runs_dir, wait=False)
