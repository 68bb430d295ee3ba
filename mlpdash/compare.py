"""Comparing runs: the settings that differ between them, and what each reached.

Plain values from the run listing (`runs.RunInfo`), so that the page's comparison and
`python -m mlpdash compare` say the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpdash.runs import RunInfo


def differing_settings(runs: Sequence[RunInfo]) -> list[str]:
    """The settings (config fields, and the data source) whose values are not the same in every run,
    in the config's own order."""
    settings = [{**run.config.to_dict(), "data": run.data_source} for run in runs if run.config is not None]
    if len(settings) < 2:
        return []
    return [key for key in settings[0] if any(s.get(key) != settings[0][key] for s in settings[1:])]


def comparison(runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row a run: its id and state, the settings that differ between the runs, its test accuracy,
    epochs, training time and parameter count (None where the run does not say)."""
    keys = differing_settings(runs)
    rows = []
    for run in runs:
        summary = run.summary or {}
        settings = {**run.config.to_dict(), "data": run.data_source} if run.config is not None else {}
        rows.append({
            "run": run.run_id,
            "state": run.label,
            "settings": {key: settings.get(key) for key in keys},
            "test_accuracy": summary.get("test_accuracy"),
            "epochs": summary.get("epochs_completed", run.epochs_completed),
            "train_seconds": summary.get("train_seconds"),
            "parameters": run.config.parameters if run.config is not None else None,
        })
    return rows
