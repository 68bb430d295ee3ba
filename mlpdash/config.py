"""The training configuration: one typed dataclass whose defaults are the tutorial recipe.

The classic TensorFlow MNIST tutorial trains 784 -> 700 ReLU -> 500 ReLU -> 10 logits with Adam(1e-3),
batch 128, 10 epochs, seed 22. Our one change is a cosine decay of the learning rate over the run
(`lr_schedule="cosine"`); `lr_schedule="constant"` reproduces the tutorial exactly.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTIVATIONS = ("relu", "tanh", "sigmoid")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("cosine", "constant")
MAX_HIDDEN_LAYERS = 4
MAX_UNITS = 4096
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 8192
MAX_SEED = 2**31 - 1
MAX_LEARNING_RATE = 10.0
MIN_TRAIN_DIGITS = 100
MAX_TRAIN_DIGITS = 1_000_000
# Above this, training usually diverges; the page says so before Start.
HIGH_LEARNING_RATE = 0.1


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (not where its data comes from)."""

    hidden: tuple[int, ...] = (700, 500)
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    batch_size: int = 128
    epochs: int = 10
    dropout: float = 0.0
    seed: int = 22
    # 0: the whole training split; N: only its first N digits (a small set shows overfitting).
    train_digits: int = 0
    # Adam's constants as the tutorial states them; SGD uses `momentum`.
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    momentum: float = 0.9

    def __post_init__(self) -> None:
        # Accept lists (from JSON) but store a tuple so configs stay hashable and comparable.
        if isinstance(self.hidden, (list, tuple)):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        found = problems(self.to_dict())
        if found:
            raise ValueError("; ".join(found.values()))

    @property
    def architecture(self) -> str:
        """A short human label, e.g. '784-700-500-10' ('784-10 linear' with no hidden layer)."""
        sizes = "-".join(str(n) for n in (784, *self.hidden, 10))
        return sizes + (" linear" if not self.hidden else "")

    @property
    def recipe(self) -> str:
        """The settings a person compares runs by, in one line: '784-700-500-10 relu · adam, learning
        rate 0.001, cosine · batch 128 · 10 epochs' (dropout and a training subset when set)."""
        parts = [self.architecture + ("" if not self.hidden else f" {self.activation}"),
                 f"{self.optimizer}, learning rate {self.learning_rate:g}, {self.lr_schedule}",
                 f"batch {self.batch_size}", f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"]
        if self.dropout:
            parts.append(f"dropout {self.dropout:g}")
        if self.train_digits:
            parts.append(f"{self.train_digits:,} training digits")
        return " · ".join(parts)

    @property
    def parameters(self) -> int:
        """Weights and biases of the model: 784*700+700 + 700*500+500 + 500*10+10 by default."""
        sizes = (784, *self.hidden, 10)
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden"] = list(data["hidden"]) if isinstance(data["hidden"], tuple) else data["hidden"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys so that a typo never silently uses a default."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def parse_hidden(text: str) -> tuple[int, ...]:
    """'700,500' -> (700, 500); '' or '0' or 'none' -> () (the linear classifier)."""
    cleaned = text.strip().lower()
    if cleaned in ("", "0", "none", "linear"):
        return ()
    sizes = []
    for part in cleaned.replace(" ", "").split(","):
        if not part.isdigit():
            raise ValueError(
                f"hidden layers must be comma-separated positive integers like 700,500 (got {text!r})"
            )
        sizes.append(int(part))
    return tuple(sizes)


def config_from_form(values: Mapping[str, Any]) -> tuple[TrainConfig | None, dict[str, str]]:
    """A config from a form's values (hidden layers as text such as '700,500'), or the problems.

    Returns (config, {}) when every value is valid, else (None, {field: message}) with one message
    per invalid field, so that a form can show each next to its widget.
    """
    values = dict(values)
    found: dict[str, str] = {}
    if isinstance(values.get("hidden"), str):
        try:
            values["hidden"] = parse_hidden(values["hidden"])
        except ValueError as err:
            found["hidden"] = str(err)
            values.pop("hidden")
    found.update(problems(values))
    return (None, found) if found else (TrainConfig(**values), {})


def problems(values: Mapping[str, Any]) -> dict[str, str]:
    """Every invalid setting among `values` (missing keys take defaults), keyed by field name.

    Forms use this to explain each problem next to its widget before a config is built; the
    dataclass itself raises ValueError with the same messages.
    """
    v = {**_DEFAULTS, **values}
    found: dict[str, str] = {}
    hidden = v["hidden"]
    if not isinstance(hidden, (list, tuple)):
        found["hidden"] = f"hidden layers must be a list of sizes (got {hidden!r})"
    elif len(hidden) > MAX_HIDDEN_LAYERS:
        found["hidden"] = f"at most {MAX_HIDDEN_LAYERS} hidden layers (got {len(hidden)})"
    elif not all(_is_int(n) and 1 <= n <= MAX_UNITS for n in hidden):
        found["hidden"] = f"each hidden layer needs 1 to {MAX_UNITS} units (got {list(hidden)})"
    for name, allowed in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS),
                          ("lr_schedule", LR_SCHEDULES)):
        if v[name] not in allowed:
            found[name] = f"{_LABELS[name]} must be one of {', '.join(allowed)} (got {v[name]!r})"
    ranges = (
        # Up to 10, not 1: a rate that makes the loss blow up is a lesson worth seeing (the page warns).
        ("learning_rate", _is_number, lambda x: 0 < x <= MAX_LEARNING_RATE,
         f"above 0 and at most {MAX_LEARNING_RATE:g}"),
        ("batch_size", _is_int, lambda x: 1 <= x <= MAX_BATCH_SIZE, f"1 to {MAX_BATCH_SIZE}"),
        ("epochs", _is_int, lambda x: 1 <= x <= MAX_EPOCHS, f"1 to {MAX_EPOCHS}"),
        ("dropout", _is_number, lambda x: 0 <= x < 1, "at least 0 and below 1"),
        ("seed", _is_int, lambda x: 0 <= x <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
        ("train_digits", _is_int, lambda x: x == 0 or MIN_TRAIN_DIGITS <= x <= MAX_TRAIN_DIGITS,
         f"0 (all) or {MIN_TRAIN_DIGITS} to {MAX_TRAIN_DIGITS:,}"),
        ("beta_1", _is_number, lambda x: 0 <= x < 1, "at least 0 and below 1"),
        ("beta_2", _is_number, lambda x: 0 <= x < 1, "at least 0 and below 1"),
        ("momentum", _is_number, lambda x: 0 <= x < 1, "at least 0 and below 1"),
        ("epsilon", _is_number, lambda x: x > 0, "above 0"),
    )
    for name, kind_ok, in_range, wanted in ranges:
        value = v[name]
        # NaN fails every comparison, so in_range rejects it too.
        if not (kind_ok(value) and in_range(value)):
            found[name] = f"{_LABELS[name]} must be {wanted} (got {value!r})"
    return found


_LABELS = {
    "hidden": "hidden layers", "activation": "activation", "optimizer": "optimizer",
    "lr_schedule": "learning-rate schedule", "learning_rate": "learning rate",
    "batch_size": "batch size", "epochs": "epochs", "dropout": "dropout", "seed": "seed",
    "train_digits": "training digits",
    "beta_1": "beta_1", "beta_2": "beta_2", "momentum": "momentum", "epsilon": "epsilon",
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # NaN fails every comparison, so the range checks above reject it too.
    return isinstance(value, (int, float)) and not isinstance(value, bool)
