"""What a training job trains: the plan a `TrainingJob` follows, and a normal training run's plan.

Every job runs on one engine (`mlpdash.training`): a background thread with pause, slow motion and stop,
a run folder recorded as it goes (`mlpdash.recorder`), one summary written last. What differs between
kinds of job is said here, by the job's plan: where the model comes from, which arrays are fitted, the
work before the fit and before the summary, and which ends leave a run behind. `TrainPlan` is a normal
training run; `mlpdash.finetune.FinetunePlan` fine-tunes a saved run's model on drawings.

No TensorFlow here: a plan is made before TensorFlow loads (the page makes a fine-tune's in its script
thread); its hooks run in the job's thread, where TensorFlow has loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.mnist import scale
from mlpdash.progress import TRAINING

if TYPE_CHECKING:
    import keras

    from mlpdash.evaluate import TestReport
    from mlpdash.predict import Predictor


class TrainPlan:
    """A normal training run: a new model of the job's config (an ended job's spare one reused when its
    graph fits), fitted to the training split. A kind of job overrides the hooks it needs; each hook
    runs in the job's thread, in the order they are listed here."""

    task: str = TRAINING  # what the status line calls the job
    # Whether a failed or diverged run keeps its folder, with the failure recorded in it (a normal run
    # does: what went wrong, and the epochs before, stay visible), or leaves nothing behind.
    keeps_failures: bool = True
    # Whether the engine judges divergence beyond the numbers (a loss far above a uniform guess's, a
    # network stuck at chance); a loss that is no finite number ends any job as diverged.
    judges_divergence: bool = True

    def arrays(self, data: MnistSplits) -> tuple[np.ndarray, np.ndarray]:
        """The inputs (as the model takes them: float32 in [0, 1]) and the labels to fit."""
        return scale(data.x_train), np.asarray(data.y_train)

    def model(self, data: MnistSplits) -> keras.Model | None:
        """The compiled model to train, or None for a new one of the job's config (the job builds it,
        or resets a spare one). Called after the job has seeded every generator with the config's seed."""
        return None

    def before_fit(self, model: keras.Model, predictor: Predictor, data: MnistSplits) -> None:
        """Work on the model as it is before training, done before the run folder is made."""

    def after_fit(self, model: keras.Model) -> None:
        """Checks on the trained model before anything is tested or saved; `DivergedError` ends the
        job as diverged."""

    def keeps(self, epochs_completed: int, batches_at_stop: int) -> bool:
        """Whether a stopped run is saved (True) or its folder removed. A normal run is kept once one
        batch had finished when the stop came, so that no model trained on nothing answers drawings."""
        return batches_at_stop != 0

    def before_summary(self, run_dir: Path, predictor: Predictor, report: TestReport, epochs_completed: int,
                       stopped: bool) -> None:
        """Last writes into the run folder, after the test results and the model, before the summary
        (which marks the run complete)."""

    def failure(self, err: Exception) -> Exception:
        """The exception the job ends with when `err` ends it: what a caller waiting for the job re-raises."""
        return err

    def close(self) -> None:
        """The job has ended, however it ended: let go of what the hooks kept for it (a server keeps its
        last job, and with it its plan)."""

    @property
    def result(self) -> Any:
        """What the plan makes of a run that was saved (None for a normal run: its snapshot says it all)."""
        return None
