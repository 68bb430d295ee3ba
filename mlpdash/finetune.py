"""Fine-tuning a saved run's model on your drawings, as a new run.

The drawings (prepared as the canvas's are) are split, per digit and by a seed, into a part to train on
and a held-out part that only measures; the training part is mixed with a replay of MNIST training
digits (so many a drawing, 256 at least; none is an option) so that the model learns your hand without forgetting
MNIST. The result is a run folder like any other — it lists, answers drawings, is explained — whose
`finetune.json` says what it was fine-tuned from, how, and the before/after report: accuracy on the
held-out drawings, on all of them and on the MNIST test split, where forgetting would show.

A fine-tune is a training job (`mlpdash.training.TrainingJob`) with a plan of its own (`FinetunePlan`):
the same background thread, progress, pause and stop, the same recorder of metrics and timeline, the
same summary. `finetune_job` makes one for a job manager to start (`check_finetune` first says, without
TensorFlow, whether it can); `finetune` runs one to its end and returns its report, for the CLI.

A fine-tune can be stopped (the job's `stop`, or `finetune`'s `stop` event that a signal handler sets):
it ends after the current batch and is saved as a *stopped* run when an epoch or more had finished, or
leaves nothing behind when none had. A model whose weights are not all finite numbers is never
fine-tuned, and a fine-tune that diverges (a loss or a weight that is no longer finite) is refused and
leaves no run; so does one that fails.

TensorFlow is imported only inside functions: the page imports this module for its settings before
TensorFlow has loaded.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpdash.config import TrainConfig
from mlpdash.data import MnistSplits, load_mnist
from mlpdash.drawings import DrawingsError, listing, prepared
from mlpdash.files import UnsafeFileError, read_json, write_json_atomic
from mlpdash.mnist import IMAGE_SIDE, scale
from mlpdash.plan import TrainPlan
from mlpdash.progress import FINE_TUNING
from mlpdash.runs import MAX_NAME_CHARS, RunError, RunInfo, nonfinite, read_info, set_notes

if TYPE_CHECKING:
    import keras

    from mlpdash.evaluate import TestReport
    from mlpdash.model import SpareModel
    from mlpdash.predict import Predictor
    from mlpdash.training import TrainingJob

FINETUNE_FILE = "finetune.json"
REPLAY_CHOICES = (0, 1, 4, 16)  # MNIST training digits replayed per drawing trained on; 0: no replay
DEFAULT_EPOCHS = 5
MAX_EPOCHS = 20
DEFAULT_LEARNING_RATE = 3e-4  # measured: +20 points on slanted digits, -1.3 on MNIST test (README)
MAX_LEARNING_RATE = 0.01
DEFAULT_HELD_OUT = 0.25
MIN_DRAWINGS = 3  # one to hold out, two to learn from
MIN_REPLAY = 256
MAX_REPLAY_DIGITS = 20_000  # a page's fine-tune stays seconds long on 2 cores
BATCH_SIZE = 32
# How often `finetune` looks at its stop event while it waits for the job.
STOP_POLL_SECONDS = 0.05
# A saved report is untrusted: its text fields are bounded, so a planted one cannot flood the page.
MAX_REPORT_TEXT = 4096
MAX_HELD_OUT_NAME = 200


class FinetuneStopped(Exception):
    """The fine-tune was stopped before its first epoch had finished: no run was saved."""


class FinetuneDiverged(ValueError):
    """The fine-tune diverged (its loss or weights are no longer finite numbers): no run was saved."""


@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune; ValueError with a message a user can act on for a setting out of range."""

    epochs: int = DEFAULT_EPOCHS
    replay: int = 4
    learning_rate: float = DEFAULT_LEARNING_RATE
    held_out: float = DEFAULT_HELD_OUT
    seed: int = 22

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ValueError(f"fine-tuning epochs must be 1 to {MAX_EPOCHS} (got {self.epochs!r})")
        if not isinstance(self.replay, int) or not 0 <= self.replay <= max(REPLAY_CHOICES):
            raise ValueError(f"replay is 0 to {max(REPLAY_CHOICES)} MNIST digits a drawing (got {self.replay!r})")
        if not (isinstance(self.learning_rate, int | float) and 0 < self.learning_rate <= MAX_LEARNING_RATE):
            raise ValueError(f"the fine-tuning learning rate must be above 0 and at most {MAX_LEARNING_RATE} "
                             f"(got {self.learning_rate!r})")
        if not (isinstance(self.held_out, int | float) and 0 < self.held_out < 1):
            raise ValueError(f"the held-out share must be between 0 and 1 (got {self.held_out!r})")


@dataclass(frozen=True)
class Scores:
    """Accuracy on the held-out drawings, on all drawings and on the MNIST test split."""

    held_out: float
    drawings: float
    mnist_test: float


@dataclass(frozen=True)
class FinetuneReport:
    base_run: str
    run_dir: Path
    settings: FinetuneSettings
    before: Scores
    after: Scores
    drawings: int  # with ink, used
    trained_on: int  # drawings in the training part
    held_out: int
    replayed: int  # MNIST digits mixed in
    seconds: float
    epochs_completed: int | None = None  # None in reports saved before stopping existed: all of them
    stopped: bool = False  # stopped early, saved with the epochs it had finished

    def to_dict(self) -> dict[str, Any]:
        return {"base_run": self.base_run, "run_dir": str(self.run_dir), "settings": dataclasses.asdict(self.settings),
                "before": dataclasses.asdict(self.before), "after": dataclasses.asdict(self.after),
                "drawings": self.drawings, "trained_on": self.trained_on, "held_out": self.held_out,
                "replayed": self.replayed, "seconds": self.seconds,
                "epochs_completed": self.epochs_completed, "stopped": self.stopped}


def prepared_drawings(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The drawings with ink, prepared as the canvas's are (`drawings.prepared`, kept in the folder):
    float32 [N, 28, 28], their labels and files."""
    kept = listing(root)
    ready = prepared(root, kept)
    inked = [d for d, ink in zip(kept, ready.inked) if ink]
    return ready.digits[ready.inked], np.asarray([d.label for d in inked], np.int64), [d.file for d in inked]


def split_held_out(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) indices: of each digit drawn twice or more, about `share` held out (at
    least one of a digit drawn twice); a digit drawn once is trained on. At least one drawing is held
    out overall and one trained on."""
    rng = np.random.default_rng(seed)
    held = []
    for digit in np.unique(labels):
        of_digit = rng.permutation(np.flatnonzero(labels == digit))
        if len(of_digit) >= 2:
            held.extend(of_digit[:max(1, int(round(share * len(of_digit))))][:len(of_digit) - 1])
    if not held and len(labels) >= 2:  # every digit drawn once: hold one out all the same
        held = [int(rng.integers(len(labels)))]
    held_out = np.sort(np.asarray(held, np.int64))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def check_finetune(base: Path, drawings_root: Path) -> RunInfo:
    """What can be checked of a fine-tune in a blink, without TensorFlow: that `base` has a model to
    fine-tune (RunError), and that `drawings_root` does not hold too few drawings (DrawingsError). The
    drawings with ink are counted to the last one by the job itself, which prepares them. Returns the
    base run's info."""
    info = read_info(Path(base))
    if info.config is None or not info.can_answer:
        why = info.error if info.status == "damaged" and info.error else info.label  # the damage, named
        raise RunError(f"{Path(base).name} has no model to fine-tune ({why})")
    if len(listing(Path(drawings_root))) < MIN_DRAWINGS:
        # Too few whatever their ink: those few are prepared (milliseconds) to say how many have ink.
        raise _too_few(len(prepared_drawings(Path(drawings_root))[1]), drawings_root)
    return info


def finetune_job(base: Path, drawings_root: Path, data: str | MnistSplits | None, settings: FinetuneSettings,
                 runs_dir: str | Path | None = None, *, loader: Callable[[str | None], MnistSplits] = load_mnist,
                 spare: SpareModel | None = None) -> TrainingJob:
    """A job, not started yet, that fine-tunes `base`'s model on the drawings in `drawings_root` and
    saves it as a new run in `runs_dir` (None: beside `base`). `data` is the MNIST source replayed and
    tested on: a spec for `loader`, or loaded splits (None: the base run's own source). `spare` is an
    ended job's model, handed on untouched to the next job (a fine-tune trains the base run's model).
    RunError or DrawingsError at once for what `check_finetune` finds; once the job has ended,
    `report_of(job)` is its report or the exception it ended with."""
    from mlpdash.training import TrainingJob  # TensorFlow

    info = check_finetune(Path(base), Path(drawings_root))
    assert info.config is not None
    return TrainingJob(finetune_config(info.config, settings), info.data_source if data is None else data,
                       runs_dir if runs_dir is not None else info.path.parent, loader=loader, spare=spare,
                       plan=FinetunePlan(info, Path(drawings_root), settings))


def finetune_config(base: TrainConfig, settings: FinetuneSettings) -> TrainConfig:
    """The config a fine-tune of a run of `base` trains with, and its new run records: the same network,
    trained by Adam at a constant learning rate, seeded, on all the arrays it is given."""
    return dataclasses.replace(base, epochs=settings.epochs, learning_rate=settings.learning_rate,
                               lr_schedule="constant", optimizer="adam", batch_size=BATCH_SIZE,
                               seed=settings.seed, train_digits=0)


def report_of(job: TrainingJob) -> FinetuneReport:
    """An ended fine-tune job's report; else the exception it ended with (FinetuneDiverged, RunError,
    DrawingsError...), or FinetuneStopped when it was stopped before it had anything to save."""
    if not job.done:
        raise RuntimeError("the fine-tune has not ended yet")
    if job.exception is not None:
        raise job.exception
    if job.result is None:
        raise FinetuneStopped(_NOTHING_SAVED)
    return job.result


def finetune(base: Path, drawings_root: Path, data: str | MnistSplits | None,
             settings: FinetuneSettings = FinetuneSettings(), runs_dir: str | Path | None = None,
             stop: threading.Event | None = None) -> FinetuneReport:
    """Fine-tune `base`'s model on the drawings in `drawings_root` (with `data`'s training digits
    replayed) and save it as a new run; RunError or DrawingsError saying what is missing. The job runs
    in its own thread (`finetune_job`); this waits for it.

    When `stop` is set (from a signal handler, another thread), training ends after the current
    batch: the run is saved as stopped, with the epochs that had finished, or FinetuneStopped is
    raised and nothing is saved when none had. FinetuneDiverged when the training diverges."""
    job = finetune_job(Path(base), Path(drawings_root), data, settings, runs_dir)
    job.start()
    try:
        while not job.done:
            if stop is not None and stop.is_set():
                job.stop()  # once it is stopping, again is a no-op
            job.join(STOP_POLL_SECONDS)
    except BaseException:  # the wait interrupted: the job is not left training on its own
        job.stop()
        job.wait_for_save()
        raise
    return report_of(job)


class FinetunePlan(TrainPlan):
    """The fine-tune as a training job's plan: the base run's model, compiled afresh (Adam at the
    settings' learning rate, seeded), fitted to the training part of the drawings mixed with replayed
    MNIST digits; scored before and after; saved with `finetune.json` and a name and notes of its own.
    Its end rules: a stop before its first epoch has finished, a divergence (a loss, or after the fit a
    weight, that is not finite) or any failure leaves no run folder."""

    task = FINE_TUNING
    keeps_failures = False
    judges_divergence = False  # a fine-tune diverges when its numbers are no longer finite, not before

    def __init__(self, base: RunInfo, drawings_root: Path, settings: FinetuneSettings) -> None:
        self.base = base
        self.drawings_root = drawings_root
        self.settings = settings
        self._report: FinetuneReport | None = None
        # Set by the hooks, in the job's thread.
        self._images = np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._files: list[str] = []
        self._held = np.zeros(0, np.int64)
        self._trained_on = 0
        self._replayed = 0
        self._before: Scores | None = None
        self._started = 0.0
        self._seconds = 0.0

    def arrays(self, data: MnistSplits) -> tuple[np.ndarray, np.ndarray]:
        images, labels, files = prepared_drawings(self.drawings_root)
        if len(labels) < MIN_DRAWINGS:
            raise _too_few(len(labels), self.drawings_root)
        train, held = split_held_out(labels, self.settings.held_out, self.settings.seed)
        rng = np.random.default_rng(self.settings.seed)
        # At least MIN_REPLAY digits when replaying at all: Adam moves every weight by about the learning
        # rate a step whatever the batch, and steps on a handful of drawings alone cost MNIST points.
        wanted = max(self.settings.replay * len(train), MIN_REPLAY if self.settings.replay else 0)
        count = min(wanted, MAX_REPLAY_DIGITS, len(data.x_train))
        replay = rng.choice(len(data.x_train), size=count, replace=False) if count else np.zeros(0, np.int64)
        self._images, self._labels, self._files, self._held = images, labels, files, held
        self._trained_on, self._replayed = len(train), int(count)
        x = np.concatenate([images[train], scale(data.x_train[replay])])
        y = np.concatenate([labels[train], np.asarray(data.y_train)[replay].astype(np.int64)])
        return x, y

    def model(self, data: MnistSplits) -> keras.Model:
        import keras

        from mlpdash.runs import load_run_model

        model = load_run_model(self.base.path)  # RunError for weights that are not all finite: NaN in, NaN out
        # Seeded after loading: the optimizer and the fit's shuffling start from the settings' seed alone.
        keras.utils.set_random_seed(self.settings.seed)
        model.compile(optimizer=keras.optimizers.Adam(self.settings.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    def before_fit(self, model: keras.Model, predictor: Predictor, data: MnistSplits) -> None:
        answers = predictor.logits(scale(data.x_test)).argmax(axis=1)
        self._before = self._scores(predictor, float(np.mean(answers == data.y_test)))
        self._started = time.monotonic()

    def _scores(self, predictor: Predictor, mnist_test: float) -> Scores:
        answers = predictor.logits(self._images).argmax(axis=1)
        held, labels = self._held, self._labels
        return Scores(float(np.mean(answers[held] == labels[held])), float(np.mean(answers == labels)), mnist_test)

    def after_fit(self, model: keras.Model) -> None:
        from mlpdash.model import network_weights
        from mlpdash.recorder import DivergedError

        self._seconds = time.monotonic() - self._started
        if nonfinite(network_weights(model)) is not None:  # the last, partial epoch of a stop included
            raise DivergedError("its weights are no longer finite numbers")

    def keeps(self, epochs_completed: int, batches_at_stop: int) -> bool:
        return epochs_completed >= 1

    def failure(self, err: Exception) -> Exception:
        from mlpdash.recorder import DivergedError

        if not isinstance(err, DivergedError):
            return err
        diverged = FinetuneDiverged(_diverged(err.what, self.settings.learning_rate))
        diverged.__cause__ = err
        return diverged

    def before_summary(self, run_dir: Path, predictor: Predictor, report: TestReport, epochs_completed: int,
                       stopped: bool) -> None:
        assert self._before is not None
        # The test report's accuracy is the after-score on MNIST test: the same model on the same split.
        after = self._scores(predictor, report.accuracy)
        result = FinetuneReport(self.base.run_id, run_dir, self.settings, self._before, after, len(self._labels),
                                self._trained_on, len(self._held), self._replayed, self._seconds,
                                epochs_completed=epochs_completed, stopped=stopped)
        write_json_atomic(run_dir / FINETUNE_FILE,
                          {**result.to_dict(), "held_out_files": [self._files[i] for i in self._held]})
        suffix = f" fine-tuned on {result.drawings} drawings"
        try:  # a name is a convenience: a trained run is never lost for want of one
            set_notes(run_dir, result.base_run[:MAX_NAME_CHARS - len(suffix)] + suffix,
                      f"replay {result.settings.replay} MNIST digits a drawing, {_epochs_note(result)}; "
                      f"held-out drawings {result.before.held_out:.0%} -> {result.after.held_out:.0%}, "
                      f"MNIST test {result.before.mnist_test:.2%} -> {result.after.mnist_test:.2%}")
        except (OSError, ValueError):
            pass
        self._report = result

    def close(self) -> None:
        self._images = np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.float32)  # up to 31 MB for a full folder of drawings

    @property
    def result(self) -> FinetuneReport | None:
        """The report, once the run is saved (None before, and for a run that was not)."""
        return self._report


def _too_few(count: int, root: Path) -> DrawingsError:
    return DrawingsError(f"fine-tuning needs at least {MIN_DRAWINGS} drawings with ink, one of them held out "
                         f"to measure; {root} has {count}")


def _epochs_note(report: FinetuneReport) -> str:
    if report.stopped:
        return f"stopped after {report.epochs_completed} of {report.settings.epochs} epochs"
    return f"{report.settings.epochs} epochs"


_NOTHING_SAVED = "fine-tuning stopped before its first epoch had finished; no run was saved"


def _diverged(what: str, learning_rate: float) -> str:
    return f"fine-tuning diverged: {what}; nothing was saved. Try a lower learning rate than {learning_rate:g}"


def read_report(path: Path) -> dict[str, Any] | None:
    """A fine-tuned run's report as saved (None for a run that was not fine-tuned, or whose report is
    damaged: it only describes the run, which stands without it). Every field the page and the CLI
    read is checked for its type and range, so that a planted or hand-edited report cannot break them."""
    try:
        raw = read_json(Path(path) / FINETUNE_FILE, 1 << 20)
    except UnsafeFileError:
        return None
    try:
        return _valid_report(raw)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _valid_report(raw: Any) -> dict[str, Any] | None:
    """The report with every field checked, or None; only the fields known here are kept."""
    if not isinstance(raw, dict):
        return None
    counts = {key: raw.get(key) for key in ("drawings", "trained_on", "held_out", "replayed")}
    settings = raw.get("settings")
    checks = [
        _is_text(raw.get("base_run")), _is_text(raw.get("run_dir")),
        all(_is_count(v) for v in counts.values()),
        _is_number(raw.get("seconds")) and raw["seconds"] >= 0,
        isinstance(settings, dict) and set(settings) == {f.name for f in dataclasses.fields(FinetuneSettings)},
    ]
    if not all(checks):
        return None
    if (counts["drawings"] < MIN_DRAWINGS or counts["trained_on"] < 1 or counts["held_out"] < 1
            or counts["trained_on"] + counts["held_out"] != counts["drawings"]
            or counts["replayed"] > MAX_REPLAY_DIGITS):
        return None
    if not (all(_is_count(settings[k]) for k in ("epochs", "replay", "seed"))
            and all(_is_number(settings[k]) for k in ("learning_rate", "held_out"))):
        return None
    FinetuneSettings(**settings)  # its own ranges: ValueError for one out of them
    scores = {}
    for key in ("before", "after"):
        found = raw.get(key)
        if not (isinstance(found, dict) and set(found) >= {f.name for f in dataclasses.fields(Scores)}):
            return None
        if not all(_is_number(found[f]) and 0 <= found[f] <= 1 for f in ("held_out", "drawings", "mnist_test")):
            return None
        scores[key] = {f: float(found[f]) for f in ("held_out", "drawings", "mnist_test")}
    report = {"base_run": raw["base_run"], "run_dir": raw["run_dir"], "settings": dict(settings), **scores,
              **counts, "seconds": float(raw["seconds"]), "epochs_completed": None, "stopped": False}
    # Written since stopping exists: absent from older reports, which were all whole runs.
    epochs = raw.get("epochs_completed")
    if epochs is not None:
        if not (_is_count(epochs) and 1 <= epochs <= settings["epochs"]):
            return None
        report["epochs_completed"] = epochs
    if "stopped" in raw:
        if not isinstance(raw["stopped"], bool):
            return None
        report["stopped"] = raw["stopped"]
    if "held_out_files" in raw:
        files = raw["held_out_files"]
        if not (isinstance(files, list) and len(files) == counts["held_out"]
                and all(isinstance(f, str) and len(f) <= MAX_HELD_OUT_NAME for f in files)):
            return None
        report["held_out_files"] = list(files)
    return report


def _is_text(value: Any) -> bool:
    """A short, printable, single-line string (a run's name or folder)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_REPORT_TEXT and value.isprintable()


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31 - 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def report_text(report: dict[str, Any]) -> str:
    """The before/after report in one line, as the CLI prints it."""
    before, after = report["before"], report["after"]
    return (f"held-out drawings {before['held_out']:.1%} -> {after['held_out']:.1%}, all drawings "
            f"{before['drawings']:.1%} -> {after['drawings']:.1%}, MNIST test {before['mnist_test']:.2%} -> "
            f"{after['mnist_test']:.2%}")
