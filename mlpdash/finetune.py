"""Fine-tuning a saved run's model on your drawings, as a new run.

The drawings (prepared as the canvas's are) are split, per digit and by a seed, into a part to train on
and a held-out part that only measures; the training part is mixed with a replay of MNIST training
digits (so many a drawing, 256 at least; none is an option) so that the model learns your hand without forgetting
MNIST. The result is a run folder like any other — it lists, answers drawings, is explained — whose
`finetune.json` says what it was fine-tuned from, how, and the before/after report: accuracy on the
held-out drawings, on all of them and on the MNIST test split, where forgetting would show.

A fine-tune can be stopped (`stop`, an event that a signal handler or a page's button sets): it ends
after the current batch and is saved as a *stopped* run when an epoch or more had finished, or leaves
nothing behind when none had. A model whose weights are not all finite numbers is never fine-tuned, and
a fine-tune that diverges (a loss or a weight that is no longer finite) is refused and leaves no run.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.drawings import DrawingsError, listing, prepared
from mlpdash.files import UnsafeFileError, read_json, write_json_atomic
from mlpdash.runs import MAX_NAME_CHARS, RunError, nonfinite, read_info, set_notes

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


def finetune(base: Path, drawings_root: Path, data: MnistSplits, settings: FinetuneSettings = FinetuneSettings(),
             runs_dir: str | Path | None = None, stop: threading.Event | None = None) -> FinetuneReport:
    """Fine-tune `base`'s model on the drawings in `drawings_root` (with `data`'s training digits
    replayed) and save it as a new run; RunError or DrawingsError saying what is missing.

    When `stop` is set (from a signal handler, another thread), training ends after the current
    batch: the run is saved as stopped, with the epochs that had finished, or FinetuneStopped is
    raised and nothing is saved when none had. FinetuneDiverged when the training diverges."""
    info = read_info(Path(base))
    if info.config is None or not info.can_answer:
        why = info.error if info.status == "damaged" and info.error else info.label  # the damage, named
        raise RunError(f"{Path(base).name} has no model to fine-tune ({why})")
    images, labels, files = prepared_drawings(drawings_root)
    if len(labels) < MIN_DRAWINGS:
        raise DrawingsError(f"fine-tuning needs at least {MIN_DRAWINGS} drawings with ink, one of them held out "
                            f"to measure; {drawings_root} has {len(labels)}")
    train, held = split_held_out(labels, settings.held_out, settings.seed)

    import keras  # TensorFlow only once the input is known to be good

    from mlpdash.model import network_weights, to_model_input
    from mlpdash.predict import Predictor
    from mlpdash.runs import load_run_model

    model = load_run_model(info.path)  # RunError for weights that are not all finite: NaN in, NaN out
    predictor = Predictor(model)
    x_test = to_model_input(data.x_test)

    def scores() -> Scores:
        answers = predictor.logits(images).argmax(axis=1)
        return Scores(float(np.mean(answers[held] == labels[held])), float(np.mean(answers == labels)),
                      float(np.mean(predictor.logits(x_test).argmax(axis=1) == data.y_test)))

    before = scores()
    rng = np.random.default_rng(settings.seed)
    # At least MIN_REPLAY digits when replaying at all: Adam moves every weight by about the learning
    # rate a step whatever the batch, and steps on a handful of drawings alone cost MNIST points.
    wanted = max(settings.replay * len(train), MIN_REPLAY if settings.replay else 0)
    count = min(wanted, MAX_REPLAY_DIGITS, len(data.x_train))
    replay = rng.choice(len(data.x_train), size=count, replace=False) if count else np.zeros(0, np.int64)
    x = np.concatenate([images[train], to_model_input(data.x_train[replay])])
    y = np.concatenate([labels[train], np.asarray(data.y_train)[replay].astype(np.int64)])
    config = dataclasses.replace(info.config, epochs=settings.epochs, learning_rate=settings.learning_rate,
                                 lr_schedule="constant", optimizer="adam", batch_size=BATCH_SIZE,
                                 seed=settings.seed, train_digits=0)
    keras.utils.set_random_seed(settings.seed)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    stop = stop if stop is not None else threading.Event()
    if stop.is_set():  # stopped while the drawings were prepared: no run folder is made at all
        raise FinetuneStopped(_NOTHING_SAVED)
    started = time.monotonic()
    run = _NewRun(runs_dir if runs_dir is not None else info.path.parent, config, data, predictor, model)
    try:
        run.start()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=settings.epochs, shuffle=True, verbose=0,
                  callbacks=[run.callback(math.ceil(len(x) / BATCH_SIZE), stop)])
        if nonfinite(network_weights(model)) is not None:  # the last, partial epoch of a stop included
            raise FinetuneDiverged(_diverged("its weights are no longer finite numbers", settings.learning_rate))
        epochs = run.epochs_completed
        if epochs == 0:
            raise FinetuneStopped(_NOTHING_SAVED)
        seconds = time.monotonic() - started
        after = scores()
        # A stop that came after the last batch of the last epoch cut nothing short.
        report = FinetuneReport(info.run_id, run.path, settings, before, after, len(labels), len(train), len(held),
                                int(count), seconds, epochs_completed=epochs, stopped=epochs < settings.epochs)
        run.finish(report, len(x), held_files=[files[i] for i in held])
    except BaseException:
        run.abandon()
        raise
    return report


def _epochs_note(report: FinetuneReport) -> str:
    if report.stopped:
        return f"stopped after {report.epochs_completed} of {report.settings.epochs} epochs"
    return f"{report.settings.epochs} epochs"


_NOTHING_SAVED = "fine-tuning stopped before its first epoch had finished; no run was saved"


def _diverged(what: str, learning_rate: float) -> str:
    return f"fine-tuning diverged: {what}; nothing was saved. Try a lower learning rate than {learning_rate:g}"


class _NewRun:
    """The fine-tuned model's run folder, written as the engine writes one: its start and every epoch
    (metrics, weights, and a timeline record with the validation answers, so the views over time show
    what fine-tuning changed), then the test results and the summary last."""

    def __init__(self, root: str | Path, config: Any, data: MnistSplits, predictor: Any, model: Any) -> None:
        from mlpdash.model import to_model_input
        from mlpdash.runs import RunWriter

        self.writer = RunWriter(root, config, data.source)
        self.path = self.writer.path
        self._data, self._predictor, self._model = data, predictor, model
        self._val = to_model_input(data.x_val)
        self._rows: list[dict[str, float]] = []
        self._confusions: list[np.ndarray] = []
        self._epoch_started = time.monotonic()

    @property
    def epochs_completed(self) -> int:
        return len(self._rows)

    def start(self) -> None:
        """The model as it came (epoch 0), where the views over time start."""
        self._validate(0)

    def _validate(self, epoch: int) -> dict[str, float]:
        from mlpdash.evaluate import report_from_logits
        from mlpdash.model import first_layer_kernel, network_weights
        from mlpdash.timeline import EpochRecord

        report = report_from_logits(self._predictor.logits(self._val), self._data.y_val)
        self.writer.write_record(EpochRecord.of(epoch, network_weights(self._model), report.predictions,
                                                report.confidences))
        self.writer.write_snapshot(first_layer_kernel(self._model), epoch)
        self._confusions.append(report.confusion)
        self.writer.write_confusions(range(len(self._confusions)), self._confusions)
        return {"val_loss": report.loss, "val_accuracy": report.accuracy}

    def callback(self, steps: int, stop: threading.Event) -> Any:
        """The Keras callback that records each finished epoch, and ends training after the batch in
        which `stop` was set (an epoch cut short is not recorded: its weights are newer than its
        metrics would say, as for a stopped training run)."""
        import keras

        run = self

        class _Epochs(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                run._epoch_started = time.monotonic()
                self.batches = 0

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                self.batches += 1
                if stop.is_set():
                    self.model.stop_training = True

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if self.batches == steps:  # Keras ends a stopped epoch too, with its partial logs
                    run.end_epoch(epoch + 1, logs or {})

        return _Epochs()

    def end_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        from mlpdash.model import network_weights

        seconds = time.monotonic() - self._epoch_started
        loss = float(logs["loss"])
        if not math.isfinite(loss):  # ends training now: every later step would be NaN too
            raise FinetuneDiverged(_diverged(f"the training loss of epoch {epoch} is {loss}",
                                             self.writer.config.learning_rate))
        row = {"epoch": epoch, "loss": loss, "accuracy": float(logs["accuracy"]),
               **self._validate(epoch), "seconds": seconds}
        self._rows.append(row)
        self.writer.write_epoch(self._rows, network_weights(self._model))

    def finish(self, report: FinetuneReport, samples: int, held_files: list[str]) -> None:
        from mlpdash.evaluate import report_from_logits
        from mlpdash.model import network_weights, to_model_input

        test = report_from_logits(self._predictor.logits(to_model_input(self._data.x_test)), self._data.y_test)
        self.writer.write_test_results(
            {"labels": test.labels.astype(np.uint8), "predictions": test.predictions.astype(np.uint8),
             "confidences": test.confidences}, test.mistakes())
        self.writer.write_model_weights(network_weights(self._model))
        self.writer.write_model(self._model)
        write_json_atomic(self.path / FINETUNE_FILE, {**report.to_dict(), "held_out_files": held_files})
        suffix = f" fine-tuned on {report.drawings} drawings"
        try:  # a name is a convenience: a trained run is never lost for want of one
            set_notes(self.path, report.base_run[:MAX_NAME_CHARS - len(suffix)] + suffix,
                      f"replay {report.settings.replay} MNIST digits a drawing, {_epochs_note(report)}; "
                      f"held-out drawings {report.before.held_out:.0%} -> {report.after.held_out:.0%}, "
                      f"MNIST test {report.before.mnist_test:.2%} -> {report.after.mnist_test:.2%}")
        except (OSError, ValueError):
            pass
        train_seconds = float(sum(row["seconds"] for row in self._rows))
        self.writer.write_summary({  # last: its presence marks the run as complete
            **test.summary(), "epochs_completed": len(self._rows), "stopped_early": report.stopped,
            "outcome": "stopped" if report.stopped else "finished",
            "data_source": self._data.source, "train_seconds": train_seconds,
            "samples_per_second": samples * len(self._rows) / train_seconds if train_seconds > 0 else None,
        })
        self.writer.close()

    def abandon(self) -> None:
        """A fine-tune that failed half-way leaves no run behind."""
        self.writer.discard()


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
