"""The long-lived parts of a dashboard server, shared by every tab: the one job, the sweep queue, the
store and the guided lesson's place, each doing one thing.

The page keeps one `Server` (in `st.cache_resource`) and makes a `Focus` from it on every run; the
CLI's sweep command opens one too. Jobs load their data through the store, so a dataset is read once
for training and for every view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlpdash.focus import Focus
from mlpdash.guide import Guide
from mlpdash.jobs import JobManager
from mlpdash.queue import InProcessExecutor, SweepQueue
from mlpdash.store import Store


@dataclass(frozen=True)
class Server:
    jobs: JobManager
    sweeps: SweepQueue
    store: Store
    guide: Guide

    @classmethod
    def open(cls, runs_dir: str | Path | None = None, keep_queue: bool = True) -> Server:
        """The parts for the runs folder `runs_dir` (None: the default); with `keep_queue` the sweep
        queue is saved in that folder and read back after a restart."""
        store = Store()
        jobs = JobManager(runs_dir, loader=store.data)
        return cls(jobs, SweepQueue(jobs.runs_dir, InProcessExecutor(jobs), keep_queue), store, Guide(jobs))

    @property
    def runs_dir(self) -> Path:
        return self.jobs.runs_dir

    def focus(self, picked: Path | None = None) -> Focus:
        """What the views are about now, with `picked` the run chosen under Runs (None: none)."""
        return Focus(self.jobs, self.store, picked)
