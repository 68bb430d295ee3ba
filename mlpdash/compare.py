"""Comparing runs: the settings that differ between them, and what each reached.

Plain values from the run listing (`runs.RunInfo`) and the sweep queue, so that the page's
comparison and `python -m mlpdash compare` say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlpdash.runs import RunInfo
from mlpdash.sweep import Sweep


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


def sweep_rows(sweep: Sweep, runs: Mapping[str, RunInfo]) -> list[dict[str, Any]]:
    """One row a run of the sweep, in its queued order: the swept settings' values, its state (the
    run folder's own once it has one), test accuracy, epochs and training time.
    `runs` maps run ids to the listing's entries; a run deleted since is said to be."""
    rows = []
    for item in sweep.items:
        info = runs.get(item.run) if item.run else None
        summary = (info.summary if info else None) or {}
        if item.run and info is None:
            state = "deleted"
        elif info is not None and item.state not in ("queued", "running", "cancelled"):
            state = info.label  # how it ended, as its folder says ("interrupted after 3 epochs")
        else:
            state = item.state
        settings = item.config.to_dict()
        rows.append({
            "run": item.run,
            "name": info.title if info else "",
            **{setting: settings[setting] for setting in sweep.swept},
            "state": state,
            "test_accuracy": summary.get("test_accuracy"),
            "epochs": info.epochs_completed if info else None,
            "train_seconds": summary.get("train_seconds"),
        })
    return rows
