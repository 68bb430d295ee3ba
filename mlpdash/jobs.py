"""The server's one training job, and the model that answers drawings when no job runs.

A dashboard page is rerun for every browser tab and every interaction, but training belongs to the
server process: one `JobManager` (the page keeps it in `st.cache_resource`) holds at most one active
job, so a refresh or a second tab finds the same job, and a second Start is refused while it runs.
Loaded datasets and reloaded run models are kept here too, so neither is read twice.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist, resolve_source
from mlpdash.progress import Status
from mlpdash.runs import (
    RunInfo,
    SavedRun,
    list_runs,
    load_keras_model,
    load_run,
    runs_root,
)

if TYPE_CHECKING:
    from mlpdash.predict import Predictor
    from mlpdash.training import TrainingJob

# One full MNIST in memory is ~55 MB and one saved run's weight snapshots ~24 MB: keep only a
# few (first in, first out), so a long-lived server does not grow with every run viewed.
MAX_CACHED_SOURCES = 3
MAX_CACHED_RUNS = 8


class JobBusyError(RuntimeError):
    """A job is already running; only one trains at a time."""


class JobManager:
    """Starts jobs one at a time and remembers the last one, for every tab of the server."""

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.runs_dir = runs_root(runs_dir)
        self._lock = threading.Lock()
        self._job: TrainingJob | None = None
        self._data: dict[str, MnistSplits] = {}
        self._predictors: dict[Path, Predictor] = {}
        self._saved: dict[Path, SavedRun] = {}

    def active(self) -> bool:
        """Whether a job is loading, training, paused, stopping or evaluating."""
        return self._job is not None and self._job.status.active

    @property
    def job(self) -> TrainingJob | None:
        """The current or most recent job (None before the first Start)."""
        return self._job

    def start(self, config: TrainConfig, data_spec: str | None = None) -> TrainingJob:
        """Start a job for `config`; JobBusyError while another one is active."""
        # Imported here: TensorFlow loads on the first Start, not on page load.
        from mlpdash.training import TrainingJob

        with self._lock:
            if self.active():
                raise JobBusyError("a training run is already in progress: stop it or wait for it to end")
            self._job = TrainingJob(config, data_spec, self.runs_dir, loader=self.load_data)
            return self._job.start()

    def load_data(self, spec: str | None) -> MnistSplits:
        """`load_mnist`, kept per resolved source so that a second run starts at once."""
        source, reason = resolve_source(spec)
        cached = self._cached(self._data, source, lambda: load_mnist(source), MAX_CACHED_SOURCES)
        # The arrays are shared; the reason is this request's own (auto's "offline — ..." and so on).
        return dataclasses.replace(cached, reason=reason)

    def runs(self) -> list[RunInfo]:
        return list_runs(self.runs_dir)

    def predictor_for_run(self, path: Path) -> Predictor:
        """A Predictor on a saved run's model, loaded once per run folder."""
        from mlpdash.predict import Predictor

        path = Path(path)
        return self._cached(self._predictors, path, lambda: Predictor(load_keras_model(path)),
                            MAX_CACHED_RUNS)

    def has_model(self) -> bool:
        """Whether a drawing can be answered (now, or once the job has built its model), decided
        without loading TensorFlow."""
        if self.active():
            return True
        return self._live_predictor() is not None or self._newest_model_run() is not None

    def answering_predictor(self) -> Predictor | None:
        """The current job's model (live while it trains), else the newest saved run's, else None."""
        live = self._live_predictor()
        if live is not None:
            return live
        newest = self._newest_model_run()
        return self.predictor_for_run(newest.path) if newest else None

    def saved_run(self, path: Path) -> SavedRun:
        """A run folder read back once (its weight snapshots are megabytes); RunError if damaged."""
        path = Path(path)
        return self._cached(self._saved, path, lambda: load_run(path), MAX_CACHED_RUNS)

    def _live_predictor(self) -> Predictor | None:
        job = self._job
        if job is None or job.status == Status.FAILED:
            return None
        return job.predictor

    def _newest_model_run(self) -> RunInfo | None:
        return next((run for run in self.runs() if run.has_model and run.summary), None)

    def _cached(self, cache: dict, key: Any, load: Callable[[], Any], limit: int) -> Any:
        """`cache[key]`, loading it (outside the lock: loads take seconds) when missing; the oldest
        entries beyond `limit` are dropped, so a long-lived server does not grow without bound."""
        with self._lock:
            if key in cache:
                return cache[key]
        value = load()
        with self._lock:
            cache[key] = value
            while len(cache) > limit:
                cache.pop(next(iter(cache)))  # dicts keep insertion order: this is the oldest
        return value
