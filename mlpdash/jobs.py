"""The server's one interactive job: start it, watch it, one at a time, training and fine-tuning alike.

A dashboard page is rerun for every browser tab and every interaction, but a job belongs to the server
process: one `JobManager` holds at most one active job, so a refresh or a second tab finds the same
job (with its pause and stop), and a second start is refused while it runs. The sweep queue
(`mlpdash.queue`) starts its runs through here too, so they show in the same status line. What the
views show of a job is decided in `mlpdash.focus`; what is loaded for them is kept in `mlpdash.store`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist
from mlpdash.pace import Pace
from mlpdash.progress import TRAINING
from mlpdash.runs import RunError, RunInfo, list_runs, read_info, runs_root

if TYPE_CHECKING:
    from mlpdash.finetune import FinetuneSettings
    from mlpdash.training import TrainingJob


class JobBusyError(RuntimeError):
    """A job is already running; only one trains at a time."""


BUSY = "a training run is already in progress: stop it or wait for it to end"


class JobManager:
    """Starts jobs one at a time and remembers the last one, for every tab of the server.

    `loader` loads a data source for a job (the page passes its store's, so that data is read once
    for every run and view)."""

    def __init__(self, runs_dir: str | Path | None = None,
                 loader: Callable[[str | None], MnistSplits] = load_mnist) -> None:
        self.runs_dir = runs_root(runs_dir)
        self.lock = threading.Lock()  # held while a job is started: the queue's worker starts under it too
        self._loader = loader
        self._job: TrainingJob | None = None
        self._serial = 0

    def active(self) -> bool:
        """Whether a job is loading, training, paused, stopping or evaluating."""
        return self._job is not None and self._job.status.active

    @property
    def job(self) -> TrainingJob | None:
        """The current or most recent job (None before the first start)."""
        return self._job

    def settings(self) -> TrainConfig:
        """The training settings a new tab starts from: the current job's when it trains a model from
        scratch (a refresh shows the run it watches), else the recipe's (a fine-tune's are not
        settings to train with)."""
        job = self._job
        return job.config if job is not None and job.plan.task == TRAINING else TrainConfig()

    def current(self) -> tuple[TrainingJob | None, int]:
        """(the current job, its serial number), read together: the number names the job in caches,
        where an id() could be reused once a job is freed."""
        with self.lock:
            return self._job, self._serial

    def start(self, config: TrainConfig, data_spec: str | None = None, pace: Pace | float | None = None,
              on_run_dir: Callable[[Path], None] | None = None) -> TrainingJob:
        """Start training `config` (slowed to `pace`, a Pace or samples a second; None: full speed);
        JobBusyError while another job is active."""
        with self.lock:
            return self.start_locked(config, data_spec, pace, on_run_dir)

    def start_locked(self, config: TrainConfig, data_spec: str | None, pace: Pace | float | None = None,
                     on_run_dir: Callable[[Path], None] | None = None) -> TrainingJob:
        """`start`, for a caller that holds `lock` (the queue decides and starts in one step)."""
        # Imported here: TensorFlow loads on the first start, not on page load.
        from mlpdash.training import TrainingJob

        return self._launch(lambda spare: TrainingJob(config, data_spec, self.runs_dir, loader=self._loader,
                                                      spare=spare, pace=pace, on_run_dir=on_run_dir))

    def start_finetune(self, base: Path, drawings_root: Path, settings: FinetuneSettings) -> TrainingJob:
        """Fine-tune `base`'s model on the drawings in `drawings_root` as the server's job, a new run
        like any other; RunError or DrawingsError for a base or drawings that cannot be used,
        JobBusyError while another job is active."""
        import mlpdash.training  # noqa: F401  (TensorFlow, loaded before the lock and before a model is handed on)
        from mlpdash.finetune import check_finetune, finetune_job

        info = check_finetune(Path(base), Path(drawings_root))  # before the lock: it reads files
        with self.lock:
            return self._launch(lambda spare: finetune_job(info.path, Path(drawings_root), info.data_source,
                                                           settings, self.runs_dir, loader=self._loader,
                                                           spare=spare))

    def _launch(self, make: Callable[[object], TrainingJob]) -> TrainingJob:
        if self.active():
            raise JobBusyError(BUSY)
        previous = self._job
        spare = previous.release_model() if previous is not None else None
        job = make(spare)
        job.start()  # ShuttingDownError leaves the previous job in place
        self._serial += 1
        self._job = job
        return job

    def runs(self) -> list[RunInfo]:
        """The saved runs, newest first."""
        return list_runs(self.runs_dir)

    def evaluate_run(self, path: Path, data_spec: str | None = None) -> RunInfo:
        """Test an interrupted run's model and record the result in its folder (its summary), so
        that it lists with a test accuracy; RunError when it cannot be."""
        from mlpdash.training import evaluate_saved_run  # TensorFlow

        info = read_info(Path(path))
        if info.status != "interrupted":
            raise RunError(f"{info.run_id} is {info.label}: only an interrupted run needs evaluating")
        evaluate_saved_run(info, self._loader(data_spec or info.data_source))
        return read_info(info.path)
