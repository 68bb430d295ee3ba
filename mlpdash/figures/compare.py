"""Comparing runs: validation curves, per-digit error rates and a sweep's parallel coordinates, each
run in the same colour in every chart. Run names are the user's text and are always escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
# The sweep chart's lines: thick enough to see two runs at a glance, on a scale with no near-white end
# (Viridis' yellow vanished on the white page).
SWEEP_LINE_WIDTH = 4
SWEEP_MARKER_SIZE = 11
SWEEP_COLORSCALE = [[0.0, "#3b1c8c"], [0.5, "#21908d"], [1.0, "#e0701a"]]
SWEEP_AXIS_COLOR = "#b8bcc6"
SWEEP_TICK_COLOR = "#444444"
SWEEP_ROOM = 0.08  # above and below the axes, so a marker at an end is whole
SWEEP_ACCURACY_TICKS = 6


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


DIGITS = [str(digit) for digit in range(10)]


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
        # Plotly's range for no data read 0-400 % and named no digit.
        fig.update_xaxes(categoryorder="array", categoryarray=DIGITS, range=[-0.5, len(DIGITS) - 0.5])
        fig.update_yaxes(range=[0, 1])
        _placeholder(fig, "no tested run ticked" if runs else "tick runs to compare them")
    return fig


def sweep_figure(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> go.Figure:
    """A sweep as parallel coordinates: one vertical axis a swept setting, the last the test accuracy,
    one thick line (with a marker on each axis) a tested run, coloured by its accuracy. Settings that
    are not numbers (hidden sizes, activation) get an axis of their values in the order first met.

    Drawn with plain lines rather than Plotly's parcoords, whose 1-px lines left a 2-run sweep looking
    empty. Each axis spans its values with some room, or sits them in the middle when every run shares
    one; the accuracy's ticks and colour bar are labelled with as many decimals as it takes for the
    runs' accuracies to read differently."""
    tested = [row for row in rows if row.get("test_accuracy") is not None]
    accuracy = np.array([float(row["test_accuracy"]) for row in tested], float)
    axes = [_sweep_axis(setting, [row[setting] for row in tested]) for setting in swept]
    axes.append(_accuracy_axis(accuracy))
    fig = _figure()
    low, high = _colour_bounds(accuracy)
    for n, row in enumerate(tested):
        colour = pcolors.sample_colorscale(SWEEP_COLORSCALE, [(accuracy[n] - low) / (high - low)])[0]
        name = _plain(str(row.get("name") or row.get("run") or f"run {n + 1}"))
        fig.add_trace(go.Scatter(
            x=list(range(len(axes))), y=[axis.positions[n] for axis in axes], mode="lines+markers", name=name,
            line=dict(color=colour, width=SWEEP_LINE_WIDTH), marker=dict(color=colour, size=SWEEP_MARKER_SIZE),
            customdata=[axis.texts[n] for axis in axes], showlegend=False,
            hovertemplate="%{fullData.name}<br>%{customdata}<extra></extra>"))
    ticks = _accuracy_ticks(accuracy)
    # The colour bar: one invisible marker a run carries the scale, its ticks at the runs' accuracies.
    fig.add_trace(go.Scatter(
        x=[0] * len(tested), y=[0.5] * len(tested), mode="markers", hoverinfo="skip", showlegend=False,
        marker=dict(color=accuracy, cmin=low, cmax=high, colorscale=SWEEP_COLORSCALE, opacity=0, size=1,
                    showscale=bool(tested), colorbar=dict(title=dict(text="accuracy", side="right"), tickvals=ticks,
                                                          ticktext=_percent_texts(ticks), thickness=14))))
    for i, axis in enumerate(axes):
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line=dict(color=SWEEP_AXIS_COLOR, width=2), layer="below")
        for position, text in zip(axis.tickvals, axis.ticktext, strict=True):
            # Beside the axis, outside the chart on the last one; on a light ground where a line passes.
            last = i == len(axes) - 1
            fig.add_annotation(x=i, y=position, text=text, showarrow=False, xanchor="left" if last else "right",
                               xshift=9 if last else -9, bgcolor="rgba(255,255,255,0.85)",
                               font=dict(size=11, color=SWEEP_TICK_COLOR))
    _layout(fig, title="Sweep: each line a run", height=SWEEP_HEIGHT, uirevision="sweep",
            margin=dict(l=70, r=40, t=90, b=30),
            xaxis=dict(tickvals=list(range(len(axes))), ticktext=[axis.label for axis in axes], side="top",
                       range=[-0.35, len(axes) - 0.5], showgrid=False, zeroline=False, fixedrange=True),
            yaxis=dict(range=[-SWEEP_ROOM, 1 + SWEEP_ROOM], visible=False, fixedrange=True))
    if not tested:
        _placeholder(fig, "no run of this sweep has been tested yet")
    return fig


@dataclass(frozen=True)
class _SweepAxis:
    """One axis of the sweep chart: its label, each run's height on it (0 to 1) and value as text, and
    the ticks written beside it."""

    label: str
    positions: list[float]
    texts: list[str]
    tickvals: list[float]
    ticktext: list[str]


def _sweep_axis(setting: str, values: list[Any]) -> _SweepAxis:
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        logarithmic = setting == "learning_rate" and all(v > 0 for v in values)
        scale = (lambda v: math.log10(v)) if logarithmic else float
        distinct = sorted(set(values))
        place = _spread([scale(v) for v in distinct])
        where = {v: place[i] for i, v in enumerate(distinct)}
        texts = [f"{v:g}" for v in values]
        return _SweepAxis(setting + (" (log)" if logarithmic else ""), [where[v] for v in values],
                          [f"{setting} {t}" for t in texts], [where[v] for v in distinct],
                          [f"{v:g}" for v in distinct])
    labels = list(dict.fromkeys(_setting_text(v) for v in values))
    place = _spread(list(range(len(labels))))
    texts = [_setting_text(v) for v in values]
    return _SweepAxis(setting, [place[labels.index(t)] for t in texts], [f"{setting} {_plain(t)}" for t in texts],
                      place, [_plain(label) for label in labels])


def _accuracy_axis(accuracy: np.ndarray) -> _SweepAxis:
    low, high = (float(accuracy.min()), float(accuracy.max())) if len(accuracy) else (0.0, 1.0)
    ticks = _accuracy_ticks(accuracy)
    texts = _percent_texts([*accuracy.tolist(), *ticks])
    if high > low:
        positions = [(float(a) - low) / (high - low) for a in accuracy]
        tickvals = [(t - low) / (high - low) for t in ticks]
    else:  # every run reached the same accuracy (or one run): the middle of the axis
        positions, tickvals = [0.5] * len(accuracy), [0.5] * len(ticks)
    return _SweepAxis("test accuracy", positions, [f"test accuracy {t}" for t in texts[:len(accuracy)]],
                      tickvals, texts[len(accuracy):])


def _spread(values: Sequence[float]) -> list[float]:
    """Heights from 0 to 1 for sorted distinct values (their own spacing); one value: the middle."""
    if len(values) < 2:
        return [0.5] * len(values)
    low, high = values[0], values[-1]
    return [(v - low) / (high - low) for v in values]


def _accuracy_ticks(accuracy: np.ndarray) -> list[float]:
    """Where the accuracy is labelled: at each run's accuracy when there are few, else evenly."""
    distinct = sorted(set(float(a) for a in accuracy))
    if len(distinct) <= SWEEP_ACCURACY_TICKS:
        return distinct
    return list(np.linspace(distinct[0], distinct[-1], SWEEP_ACCURACY_TICKS))


def _percent_texts(values: Sequence[float]) -> list[str]:
    """`values` as percentages with the fewest decimals (0 to 4) that keep different values apart."""
    values = list(values)
    for decimals in range(5):
        texts = [f"{v:.{decimals}%}" for v in values]
        if len(set(texts)) == len(set(values)):
            return texts
    return [f"{v:.4%}" for v in values]


def _colour_bounds(accuracy: np.ndarray) -> tuple[float, float]:
    if not len(accuracy):
        return 0.0, 1.0
    low, high = float(accuracy.min()), float(accuracy.max())
    return (low - 0.005, high + 0.005) if high == low else (low, high)


def _setting_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "linear"
    return str(value)
