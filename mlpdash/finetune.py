"""Fine-tuning a saved run's model on your drawings, as a new run.

The drawings (prepared as the canvas's are) are split, per digit and by a seed, into a part to train on
and a held-out part that only measures; the training part is mixed with a replay of MNIST training
digits (so many a drawing, 256 at least; none is an option) so that the model learns your hand without forgetting
MNIST. The result is a run folder like any other — it lists, answers drawings, is explained — whose
`finetune.json` says what it was fine-tuned from, how, and the before/after report: accuracy on the
held-out drawings, on all of them and on the MNIST test split, where forgetting would show.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpdash.data import MnistSplits
from mlpdash.drawings import DrawingsError, listing, load
from mlpdash.files import UnsafeFileError, read_json, write_json_atomic
from mlpdash.runs import MAX_NAME_CHARS, RunError, read_info, set_notes

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

    def to_dict(self) -> dict[str, Any]:
        return {"base_run": self.base_run, "run_dir": str(self.run_dir), "settings": dataclasses.asdict(self.settings),
                "before": dataclasses.asdict(self.before), "after": dataclasses.asdict(self.after),
                "drawings": self.drawings, "trained_on": self.trained_on, "held_out": self.held_out,
                "replayed": self.replayed, "seconds": self.seconds}


def prepared_drawings(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The drawings with ink, prepared as the canvas's are: float32 [N, 28, 28], their labels and files."""
    from mlpdash.preprocess import canvas_to_mnist

    images, labels, files = [], [], []
    for drawing in listing(root):
        digit = canvas_to_mnist(load(root, drawing))
        if digit is not None:
            images.append(digit)
            labels.append(drawing.label)
            files.append(drawing.file)
    stacked = np.stack(images).astype(np.float32) if images else np.zeros((0, 28, 28), np.float32)
    return stacked, np.asarray(labels, np.int64), files


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
             runs_dir: str | Path | None = None) -> FinetuneReport:
    """Fine-tune `base`'s model on the drawings in `drawings_root` (with `data`'s training digits
    replayed) and save it as a new run; RunError or DrawingsError saying what is missing."""
    info = read_info(Path(base))
    if info.config is None or not info.can_answer:
        raise RunError(f"{Path(base).name} has no model to fine-tune ({info.label})")
    images, labels, files = prepared_drawings(drawings_root)
    if len(labels) < MIN_DRAWINGS:
        raise DrawingsError(f"fine-tuning needs at least {MIN_DRAWINGS} drawings with ink, one of them held out "
                            f"to measure; {drawings_root} has {len(labels)}")
    train, held = split_held_out(labels, settings.held_out, settings.seed)

    import keras  # TensorFlow only once the input is known to be good

    from mlpdash.model import to_model_input
    from mlpdash.predict import Predictor
    from mlpdash.runs import load_run_model

    model = load_run_model(info.path)
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
    started = time.monotonic()
    run = _NewRun(runs_dir if runs_dir is not None else info.path.parent, config, data, predictor, model)
    try:
        run.start()
        model.fit(x, y, batch_size=BATCH_SIZE, epochs=settings.epochs, shuffle=True, verbose=0,
                  callbacks=[run.callback()])
        seconds = time.monotonic() - started
        after = scores()
        report = FinetuneReport(info.run_id, run.path, settings, before, after, len(labels), len(train), len(held),
                                int(count), seconds)
        run.finish(report, len(x), held_files=[files[i] for i in held])
    except BaseException:
        run.abandon()
        raise
    return report


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

    def callback(self) -> Any:
        import keras

        run = self

        class _Epochs(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                run._epoch_started = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                run.end_epoch(epoch + 1, logs or {})

        return _Epochs()

    def end_epoch(self, epoch: int, logs: dict[str, Any]) -> None:
        from mlpdash.model import network_weights

        seconds = time.monotonic() - self._epoch_started
        row = {"epoch": epoch, "loss": float(logs["loss"]), "accuracy": float(logs["accuracy"]),
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
                      f"replay {report.settings.replay} MNIST digits a drawing, {report.settings.epochs} epochs; "
                      f"held-out drawings {report.before.held_out:.0%} -> {report.after.held_out:.0%}, "
                      f"MNIST test {report.before.mnist_test:.2%} -> {report.after.mnist_test:.2%}")
        except (OSError, ValueError):
            pass
        train_seconds = float(sum(row["seconds"] for row in self._rows))
        self.writer.write_summary({  # last: its presence marks the run as complete
            **test.summary(), "epochs_completed": len(self._rows), "stopped_early": False, "outcome": "finished",
            "data_source": self._data.source, "train_seconds": train_seconds,
            "samples_per_second": samples * len(self._rows) / train_seconds if train_seconds > 0 else None,
        })
        self.writer.close()

    def abandon(self) -> None:
        """A fine-tune that failed half-way leaves no run behind."""
        self.writer.discard()


def read_report(path: Path) -> dict[str, Any] | None:
    """A fine-tuned run's report as saved (None for a run that was not fine-tuned, or whose report is
    damaged: it only describes the run, which stands without it)."""
    try:
        raw = read_json(Path(path) / FINETUNE_FILE, 1 << 20)
    except UnsafeFileError:
        return None
    try:
        valid = (isinstance(raw, dict) and isinstance(raw.get("base_run"), str)
                 and all(isinstance(raw.get(k), dict) and all(isinstance(raw[k].get(f), float | int)
                         and 0 <= raw[k][f] <= 1 for f in ("held_out", "drawings", "mnist_test"))
                         for k in ("before", "after")))
    except (TypeError, AttributeError):
        valid = False
    return raw if valid else None


def report_text(report: dict[str, Any]) -> str:
    """The before/after report in one line, as the CLI prints it."""
    before, after = report["before"], report["after"]
    return (f"held-out drawings {before['held_out']:.1%} -> {after['held_out']:.1%}, all drawings "
            f"{before['drawings']:.1%} -> {after['drawings']:.1%}, MNIST test {before['mnist_test']:.2%} -> "
            f"{after['mnist_test']:.2%}")
