"""Comparing runs: validation curves, per-digit error rates and a sweep's parallel coordinates, each
run in the same colour in every chart. Run names are the user's text and are always escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from mlpdash.figures.base import (
    BOTTOM_LEGEND,
    EMPTY_LOSS_RANGE,
    ZOOM_FROM_ACCURACY,
    _figure,
    _layout,
    _placeholder,
    _plain,
    _zoomed_range,
    log_ticks,
)


# 24 distinct colours: a run keeps its own in every chart of the comparison.
RUN_PALETTE = pcolors.qualitative.Dark24
COMPARE_HEIGHT = 330
SWEEP_HEIGHT = 380


def run_colours(run_ids: Sequence[str]) -> dict[str, str]:
    """A colour a run by its place among all the runs, oldest first: the same in every chart, and
    unchanged as other runs are ticked and unticked (or new ones saved)."""
    return {run: RUN_PALETTE[i % len(RUN_PALETTE)] for i, run in enumerate(run_ids)}


def compare_curves_figure(runs: Sequence[tuple[str, str, Sequence[Mapping[str, float]]]], metric: str,
                          show_training: bool = False) -> go.Figure:
    """Validation `metric` ("accuracy" or "loss") per epoch of each (name, colour, metrics rows), solid;
    with `show_training`, each run's training curve dashed in the same colour."""
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric is accuracy or loss, not {metric!r}")
    fig = _figure()
    values, last_epoch = [], 0
    for name, colour, rows in runs:
        epochs = [int(row["epoch"]) for row in rows]
        last_epoch = max([last_epoch, *epochs])
        kinds = [("val_" + metric, "validation", "solid")] + ([(metric, "training", "dash")] if show_training else [])
        for key, kind, dash in kinds:
            ys = [float(row[key]) for row in rows]
            values.extend(ys)
            fig.add_trace(go.Scatter(
                x=epochs, y=ys, mode="markers+lines", name=_plain(name) + ("" if kind == "validation" else " (training)"),
                legendgroup=name, showlegend=kind == "validation",
                line=dict(color=colour, width=2, dash=dash), marker=dict(size=6),
                # The name through %{fullData.name}, never into the template: a run's name is the
                # user's text, and may hold "%{" or markup.
                hovertemplate=f"%{{fullData.name}}<br>epoch %{{x}}<br>{kind} {metric} " +
                              ("%{y:.2%}" if metric == "accuracy" else "%{y:.4f}") + "<extra></extra>",
            ))
    yaxis: dict[str, Any] = dict(title=metric)
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    if metric == "accuracy":
        yaxis.update(tickformat=".1%", range=_zoomed_range(finite) if len(finite) and
                     finite.min() >= ZOOM_FROM_ACCURACY else [0.0, 1.0])
    else:
        yaxis.update(type="log", tickvals=log_ticks(*_log_bounds(finite)))
    title = ("Validation " + metric) + (" (training dashed)" if show_training else "")
    _layout(fig, title=title, height=COMPARE_HEIGHT, uirevision="compare-" + metric,
            xaxis=dict(title="epoch", dtick=1 if last_epoch <= 12 else None), yaxis=yaxis, legend=BOTTOM_LEGEND,
            showlegend=True)
    if not runs:
        _placeholder(fig, "tick runs to compare them")
    elif not values:
        _placeholder(fig, "no finished epoch yet")
    return fig


def _log_bounds(values: np.ndarray) -> tuple[float, float]:
    positive = values[values > 0]
    if not len(positive):
        return EMPTY_LOSS_RANGE
    return float(positive.min()), float(positive.max())


def per_class_compare_figure(runs: Sequence[tuple[str, str, Sequence[float | None] | None]]) -> go.Figure:
    """Each run's test error rate per digit (1 - its per-class accuracy), side by side in its colour;
    a run with no test report is left out, and said to be."""
    fig = _figure()
    shown = [(name, colour, per) for name, colour, per in runs if per]
    for name, colour, per in shown:
        accuracy = np.array([np.nan if v is None else float(v) for v in per], float)
        fig.add_trace(go.Bar(
            x=[str(d) for d in range(len(accuracy))], y=1.0 - accuracy, name=_plain(name), marker_color=colour,
            customdata=accuracy, hovertemplate="%{fullData.name}<br>digit %{x}: %{y:.2%} wrong "
                                               "(accuracy %{customdata:.2%})<extra></extra>"))
    untested = [_plain(name) for name, _, per in runs if not per]
    title = "Test error rate per digit" + (f" ({', '.join(untested)}: not tested)" if untested else "")
    _layout(fig, title=title, height=COMPARE_HEIGHT, uirevision="compare-per-class",
            xaxis=dict(title="digit", type="category"), yaxis=dict(title="read wrong", tickformat=".1%", rangemode="tozero"),
            barmode="group", bargap=0.2, legend=BOTTOM_LEGEND, showlegend=True)
    if not shown:
        _placeholder(fig, "no tested run ticked" if runs else "tick runs to compare them")
    return fig


def sweep_figure(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> go.Figure:
    """A sweep as parallel coordinates: one axis a swept setting, the last the test accuracy, one line
    a tested run coloured by its accuracy. Settings that are not numbers (hidden sizes, activation)
    get an axis of their values in the order first met."""
    tested = [row for row in rows if row.get("test_accuracy") is not None]
    dimensions = []
    for setting in swept:
        values = [row[setting] for row in tested]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            logarithmic = setting == "learning_rate" and all(v > 0 for v in values)
            shown = [math.log10(v) for v in values] if logarithmic else values
            distinct = sorted(set(values))
            dimensions.append(dict(label=setting + (" (log)" if logarithmic else ""), values=shown,
                                   tickvals=[math.log10(v) for v in distinct] if logarithmic else distinct,
                                   ticktext=[f"{v:g}" for v in distinct]))
        else:
            labels = list(dict.fromkeys(_setting_text(v) for v in values))
            dimensions.append(dict(label=setting, values=[labels.index(_setting_text(v)) for v in values],
                                   tickvals=list(range(len(labels))), ticktext=labels))
    accuracy = [float(row["test_accuracy"]) for row in tested]
    dimensions.append(dict(label="test accuracy", values=accuracy, tickformat=".1%"))
    fig = _figure(go.Parcoords(
        dimensions=dimensions,
        line=dict(color=accuracy, colorscale="Viridis", showscale=True, colorbar=dict(title="accuracy", tickformat=".0%")),
    ))
    _layout(fig, title="Sweep: each line a run", height=SWEEP_HEIGHT, uirevision="sweep",
            margin=dict(l=70, r=40, t=100, b=30))
    if not tested:
        _placeholder(fig, "no run of this sweep has been tested yet")
    return fig


def _setting_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "linear"
    return str(value)
