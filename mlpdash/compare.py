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


# --- as the page shows them ------------------------------------------------------------------------


def shown_value(value: object) -> str:
    """A setting's value as a table cell: hidden sizes '700,500' ('none (linear)' for none), a
    number as %g."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none (linear)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_label(run: RunInfo) -> str:
    """A run as a choice to tick: 'its title · 784-128-10 · 97.12%' (its state while it has no test
    accuracy)."""
    accuracy = (run.summary or {}).get("test_accuracy")
    shown = f"{accuracy:.2%}" if accuracy is not None else run.label
    model = run.config.architecture if run.config else "?"
    return f"{run.title} · {model} · {shown}"


def comparison_table(runs: Sequence[RunInfo]) -> list[dict[str, object]]:
    """`comparison` as the page's table: the settings that differ, then what each run reached, one
    row a run, every cell text."""
    rows = []
    for run, row in zip(runs, comparison(runs), strict=True):
        accuracy, seconds = row["test_accuracy"], row["train_seconds"]
        rows.append({
            "run": run.title,
            "state": row["state"],
            **{key: shown_value(value) for key, value in row["settings"].items()},
            "test accuracy": f"{accuracy:.2%}" if accuracy is not None else "—",
            "epochs": row["epochs"],
            "training time": f"{seconds:.0f} s" if seconds is not None else "—",
            "parameters": f"{row['parameters']:,}" if row["parameters"] is not None else "—",
        })
    return rows


def runs_table_row(run: RunInfo) -> dict[str, object]:
    """A saved run as a row of the runs table."""
    summary = run.summary or {}
    config = run.config
    accuracy = summary.get("test_accuracy")
    # What tells runs apart first: on a phone the grid shows its first columns and scrolls the rest.
    return {
        "run": run.run_id,
        "name": run.name,
        "test accuracy": f"{accuracy:.4f}" if accuracy is not None else "—",
        "status": run.label,
        "model": config.architecture if config else "—",
        "epochs": f"{run.epochs_completed}/{config.epochs}" if config else "—",
        "data": run.data_source or "—",
        "note": run.error or run.note,
    }


def sweep_label(sweep: Sweep) -> str:
    """A queued sweep as a choice: 'its name · 4 runs'. Nothing in it changes while the sweep trains:
    Streamlit keeps a select box's value as its label, so a label that changed under the browser left
    a stale one on screen (how far the sweep got is said beside the box, drawn afresh every time)."""
    return f"{sweep.name} · {len(sweep.items)} run{'s' if len(sweep.items) != 1 else ''}"


def state_counts(sweep: Sweep) -> dict[str, int]:
    """How many of the sweep's runs are in each state, in the order the states first appear."""
    states = [item.state for item in sweep.items]
    return {state: states.count(state) for state in dict.fromkeys(states)}


def sweep_table(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> list[dict[str, object]]:
    """`sweep_rows` as the page's table: the swept settings' values as text, test accuracy in %,
    training time in s to one place, the run's name (or folder)."""
    return [{
        **{setting.replace("_", " "): shown_value(row[setting]) for setting in swept},
        "state": row["state"],
        "test accuracy": None if row["test_accuracy"] is None else 100 * float(row["test_accuracy"]),
        "epochs": row["epochs"],
        "training time (s)": None if row["train_seconds"] is None else round(float(row["train_seconds"]), 1),
        "run": row["name"] or row["run"] or "—",
    } for row in rows]
