"""Run folders: every training run saved as it goes, listed and read back without trusting the folder.

Layout of `runs/<YYYYmmdd-HHMMSS>-<id>/`:
  config.json           the TrainConfig, the data source and the creation time (`created`, Unix s)
  training.lock         held (flock) by the process that trains the run; gone once the run has ended
  metrics.jsonl         one JSON object per finished epoch
  model.weights.npz     the model's weights after the newest finished epoch (`w0`, `w1`, ... in layer
                        order: kernel, bias, kernel, bias, ...), rewritten at the end of every epoch
  snapshots/kernel-EEEEE.npy
                        the first-layer kernel [784, units] at step 0 and after each epoch (float16,
                        float32 where a weight is beyond float16's range); thinned like the live ones
  timeline/epoch-EEEEE.npz
                        every layer's weights (`w0`, `w1`, ... as above; float16, float32 where needed)
                        at step 0 and after each epoch, with the validation split's answers then
                        (`predictions` uint8, `confidences` float16); thinned like the live ones
  timeline/confusions.npz
                        `epochs` and `confusions` [E, 10, 10]: the validation confusion matrix of every
                        epoch, rewritten at each epoch's end (runs older than these files lack both)
  test_predictions.npz  `labels`, `predictions`, `confidences` for every test image, in test order
  mistakes.json         the misclassified test images: index, label, prediction, confidence
  model.keras           the Keras model, for use outside mlpdash (mlpdash itself never loads it)
  model/                a SavedModel: serving_default(images uint8 [N,28,28]) -> probabilities, digit
  failure.json          only when the run failed or diverged: the error
  summary.json          written last: its presence marks a run that ended (finished or stopped)

Every file is written atomically (see `files`), and the end-of-epoch files are synced, so a killed
process or a power loss loses at most the epoch in flight. A run whose process died is listed as
*interrupted after N epochs*: its `training.lock` exists but no process holds it (the kernel drops an
flock with its holder), which tells it apart from a run still training here or in another process.

Reading treats the folder as untrusted: only regular files, no symbolic links, size caps, every field
validated; a model is rebuilt from the validated config by our own code and only its weights are read.
A damaged folder is listed as damaged, naming the file and the problem; the rest still works.

The package, bottom floor first; each module imports only from the ones above it in this list:
  base      the error (RunError), the files' names, runs_root, the size caps an array is held to,
            the lock probe and the checked readers that every other module shares
  weights   the saved model's weights, read and validated; the one cache of each file's verdict
  notes     the user's name and note for a run; the trash that keeps a deleted run for a day
  legacy    files of earlier releases: a model saved only as model.keras, snapshots in weights.npz
  reader    RunInfo and the listing (list_runs, read_info), metrics, the summary's validation
  writer    RunWriter: creates a run folder, holds its lock, writes its files as the run trains
  arrays    SavedRun and load_run, load_run_model, the snapshots, the timeline, the test predictions
Everything other code uses is re-exported here: import it from `mlpdash.runs`, not from a module. A
test that patches a name must patch it in the module that looks it up (say `mlpdash.runs.reader`).
"""

from __future__ import annotations

from mlpdash.runs.base import (
    CONFUSIONS_FILE,
    DEFAULT_RUNS_DIR,
    LEGACY_MODEL,
    LEGACY_WEIGHTS,
    LOCK_FILE,
    LOG,
    METRIC_KEYS,
    MODEL_WEIGHTS,
    NOTES_FILE,
    NPY_HEADER_BYTES,
    RECORD_NAME,
    RUNS_ENV_VAR,
    SNAPSHOT_DIR,
    SNAPSHOT_NAME,
    TIMELINE_DIR,
    TRASH_DIR,
    RunError,
    layer_shapes,
    layer_sizes,
    nonfinite,
    runs_root,
)
# The weights check's cache is private, but kept reachable here as it always was: a test clears it
# with `_weights_problem.cache_clear()`.
from mlpdash.runs.weights import _check_saved_weights, _weights_problem, read_model_weights  # noqa: F401
from mlpdash.runs.notes import (
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    TRASH_KEEP_S,
    TrashedRun,
    empty_trash,
    restore_run,
    set_notes,
    trash_run,
    trashed_runs,
)
from mlpdash.runs.legacy import LEGACY_MEMBERS
from mlpdash.runs.reader import (
    ABANDONED_AFTER_S,
    CLOCK_SLACK_S,
    MAX_COUNT,
    MAX_METRICS_BYTES,
    OUTCOMES,
    STATUSES,
    RunInfo,
    list_runs,
    metrics_row,
    read_info,
    read_metrics,
    validate_summary,
)
from mlpdash.runs.writer import RunWriter
from mlpdash.runs.arrays import (
    MAX_TEST_RESULTS_BYTES,
    MAX_VALIDATION,
    SavedRun,
    load_run,
    load_run_model,
    read_test_predictions,
    saved_weights,
    read_timeline,
)

__all__ = [
    "ABANDONED_AFTER_S", "CLOCK_SLACK_S", "CONFUSIONS_FILE", "DEFAULT_RUNS_DIR", "LEGACY_MEMBERS", "LEGACY_MODEL",
    "LEGACY_WEIGHTS", "LOCK_FILE", "LOG", "MAX_COUNT", "MAX_METRICS_BYTES", "MAX_NAME_CHARS", "MAX_NOTE_CHARS",
    "MAX_TEST_RESULTS_BYTES", "MAX_VALIDATION", "METRIC_KEYS", "MODEL_WEIGHTS", "NOTES_FILE", "NPY_HEADER_BYTES",
    "OUTCOMES", "RECORD_NAME", "RUNS_ENV_VAR", "SNAPSHOT_DIR", "SNAPSHOT_NAME", "STATUSES", "TIMELINE_DIR",
    "TRASH_DIR", "TRASH_KEEP_S", "RunError", "RunInfo", "RunWriter", "SavedRun", "TrashedRun", "empty_trash",
    "layer_shapes", "layer_sizes", "list_runs", "load_run", "load_run_model", "nonfinite", "read_info",
    "metrics_row", "read_metrics", "read_model_weights", "read_test_predictions", "read_timeline", "restore_run", "runs_root",
    "saved_weights", "set_notes", "trash_run", "trashed_runs", "validate_summary",
]
