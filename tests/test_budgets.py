"""Byte budgets from the environment, and the time estimate shown before a long run."""

from __future__ import annotations

import pytest

from mlpdash.budgets import (
    DEFAULT_CACHE_MB,
    MB,
    cache_bytes,
    estimated_training_seconds,
    long_run_warning,
    loss_history_points,
)
from mlpdash.config import TrainConfig
from mlpdash.progress import LossHistory


@pytest.mark.parametrize(("value", "expected"), [("512", 512 * MB), ("0.5", MB // 2), ("-3", DEFAULT_CACHE_MB * MB),
                                                ("lots", DEFAULT_CACHE_MB * MB), ("inf", DEFAULT_CACHE_MB * MB)])
def test_budgets_come_from_the_environment_and_bad_values_fall_back(monkeypatch, value, expected):
    monkeypatch.setenv("MLPDASH_CACHE_MB", value)
    assert cache_bytes() == expected


def test_the_default_run_is_estimated_in_about_a_minute_and_a_huge_one_in_hours():
    default = estimated_training_seconds(TrainConfig(), 50_000)
    assert 20 < default < 120  # measured here: about 45-60 s
    assert long_run_warning(TrainConfig(), 50_000) is None
    huge = TrainConfig(hidden=(4096, 4096), epochs=1000, batch_size=1)
    warning = long_run_warning(huge, 50_000)
    assert warning and "hours" in warning and "can be stopped" in warning
    # Batch size 1 alone is slow: Keras' per-step cost dominates.
    assert estimated_training_seconds(TrainConfig(batch_size=1), 50_000) > 10 * default


def test_the_loss_history_keeps_its_size_and_its_newest_points(monkeypatch):
    monkeypatch.setenv("MLPDASH_LOSS_HISTORY_MB", str(1000 * 16 / MB))
    history = LossHistory(loss_history_points())
    assert history.capacity == 1000
    for step in range(1, 50_001):
        history.append(step, 1.0 / step, 2.0 / step)
    assert len(history) <= 1000 and history.nbytes <= 1000 * 16
    steps, loss, smoothed = history.view(max_points=200)
    assert len(steps) == 200 and steps[-1] == 50_000 - 50_000 % history.stride
    assert (steps % history.stride == 0).all() and (steps > 0).all()
    assert loss == pytest.approx(1.0 / steps) and smoothed == pytest.approx(2.0 / steps)
    short = LossHistory(100)
    for step in range(1, 41):
        short.append(step, float(step), float(step))
    assert list(short.view()[0]) == list(range(1, 41))  # a short run keeps every batch
