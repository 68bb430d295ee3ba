"""Slow motion as a class sees it: "an epoch a minute", "a batch a second", not digits a second.

A pace is resolved into digits a second by the job once it knows its data (an epoch a minute is
50,000 digits a minute on full MNIST and 6,000 on the bundled sample), so the same choice shows the
same thing on any data and any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

UNITS = ("sample", "batch", "epoch")


@dataclass(frozen=True)
class Pace:
    """`count` of `unit` (a training sample, a batch or an epoch) a second."""

    count: float
    unit: str = "sample"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"a pace counts one of {', '.join(UNITS)} (got {self.unit!r})")
        if not self.count > 0:
            raise ValueError(f"a pace is a positive number a second (got {self.count})")

    def samples_per_second(self, batch_size: int, train_size: int) -> float:
        """The digits a second this pace trains, for that batch size and that many training digits."""
        if self.unit == "batch":
            return self.count * batch_size
        if self.unit == "epoch":
            return self.count * max(train_size, 1)
        return self.count


FULL_SPEED = "full speed"
# The Speed box's choices, fastest first: each one shows the class something moving (a batch's loss a
# second, an epoch's accuracy a minute).
PACES: dict[str, Pace | None] = {
    FULL_SPEED: None,
    "an epoch a second": Pace(1, "epoch"),
    "an epoch in 5 seconds": Pace(0.2, "epoch"),
    "an epoch a minute": Pace(1 / 60, "epoch"),
    "5 batches a second": Pace(5, "batch"),
    "a batch a second": Pace(1, "batch"),
}


def pace_label(pace: Pace | None) -> str:
    """The Speed box's name for a pace; a pace set outside the box (the bench's digits a second) is
    written as what it is."""
    for label, value in PACES.items():
        if value == pace:
            return label
    assert pace is not None
    return f"{pace.count:,.0f} {pace.unit}s a second"
