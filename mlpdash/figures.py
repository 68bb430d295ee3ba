"""Plotly figure builders for the dashboard: plain arrays and values in, `go.Figure` out.

Nothing here imports Streamlit or TensorFlow, so every figure can be built and tested headless.

Two habits run through the module:

- Every figure sets `layout.uirevision`. The page re-sends the training figures every second; with an
  unchanged `uirevision`, Plotly.react keeps the user's zoom, pan and legend toggles instead of resetting
  them, and redraws in place rather than rebuilding the plot (no flicker). A caller that wants a fresh
  view (a new run) overrides it: `fig.update_layout(uirevision=run_id)`.
- Heatmap cells cannot be clicked through Streamlit's `on_select` (see STACK-NOTES), so the grid figures
  skip hover on the coloured layer and put an invisible scatter of square markers on top; the scatter
  carries the hover text and a `customdata` that a selection returns.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from functools import lru_cache

import numpy as np

# Plotly's validators look pandas up in sys.modules without importing it, so a figure built while
# another thread is half-way through importing pandas (TensorFlow and Streamlit both do) fails with
# "partially initialized module 'pandas' has no attribute 'Series'". Importing it here makes every
# thread that can build a figure wait until pandas is whole (Python's per-module import lock).
import pandas  # noqa: F401, I001
import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image

from mlpdash.explain import Attack, Explanation, HiddenMap
from mlpdash.preprocess import STROKE_RANGE, THICKEN_TO, THIN_TO, Preparation

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

TEMPLATE = "plotly_white"
# The default template is applied as a figure is created, from a template object built once; naming
# it in every update_layout rebuilt and deep-copied it each time (about 12 of a figure's ~20 ms,
# and the page rebuilds figures every few seconds for every open tab). Importing Streamlit sets the
# default to its own template, so every figure is made through _figure, which puts ours back.
pio.templates.default = TEMPLATE


def _figure(*args: object, **kwargs: object) -> go.Figure:
    if pio.templates.default != TEMPLATE:
        pio.templates.default = TEMPLATE
    return go.Figure(*args, **kwargs)


class _Panels:
    """Panels in a grid, each on its own pair of axes, the whole figure built in one go: Plotly's
    make_subplots and an update per axis cost 25-40 ms a figure, and the explanation view draws
    several on every stroke. Panels are images (square pixels, top row first) unless `image=False`."""

    def __init__(self, rows: int, cols: int, titles: Sequence[str], *, hspace: float = 0.04,
                 vspace: float = 0.1, row_heights: Sequence[float] | None = None) -> None:
        self.cols = cols
        self.traces: list[go.BaseTraceType] = []
        self.axes: dict[str, dict] = {}
        self.annotations: list[dict] = []
        weights = list(row_heights or [1.0] * rows)
        usable = 1.0 - vspace * (rows - 1)
        width = (1.0 - hspace * (cols - 1)) / cols
        self.domains: dict[int, tuple[list[float], list[float]]] = {}
        top = 1.0
        for r in range(rows):
            height = usable * weights[r] / sum(weights)
            for c in range(cols):
                index = r * cols + c + 1
                x0 = c * (width + hspace)
                self.domains[index] = ([x0, x0 + width], [max(0.0, top - height), top])
                if index - 1 < len(titles):
                    self.annotations.append(dict(
                        text=titles[index - 1], x=x0 + width / 2, y=top, xref="paper", yref="paper",
                        xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=11)))
            top -= height + vspace

    def add(self, trace: go.BaseTraceType, row: int, col: int, *, image: bool = True,
            x_range: list[float] | None = None, y_range: list[float] | None = None) -> None:
        index = (row - 1) * self.cols + col
        suffix = "" if index == 1 else str(index)
        trace.update(xaxis=f"x{suffix}", yaxis=f"y{suffix}")
        self.traces.append(trace)
        x_domain, y_domain = self.domains[index]
        x = dict(domain=x_domain, anchor=f"y{suffix}", **_hidden_axis())
        y = dict(domain=y_domain, anchor=f"x{suffix}", **_hidden_axis())
        if image:
            x["constrain"] = "domain"
            y.update(scaleanchor=f"x{suffix}", constrain="domain")
        y.update(range=y_range, autorange=False) if y_range else y.update(autorange="reversed")
        if x_range:
            x["range"] = x_range
        self.axes[f"xaxis{suffix}"], self.axes[f"yaxis{suffix}"] = x, y

    def figure(self, **layout: object) -> go.Figure:
        return _figure(data=self.traces, layout=dict(annotations=self.annotations, **self.axes, **layout))
MARGIN = dict(l=50, r=20, t=40, b=40)
TIGHT_MARGIN = dict(l=10, r=10, t=40, b=10)
TRAIN_COLOR = pcolors.qualitative.Plotly[0]
VAL_COLOR = pcolors.qualitative.Plotly[1]
BATCH_COLOR = "rgba(99, 110, 250, 0.35)"  # TRAIN_COLOR, faded: the batch curve is context, not the headline
BAR_COLOR = pcolors.qualitative.Plotly[0]
MUTED_BAR_COLOR = "#c8cbd2"
HIGHLIGHT_COLOR = pcolors.qualitative.Plotly[1]
PLACEHOLDER_COLOR = "#888888"

# Legends sit under the plot: above it they collide with the title on a half-width chart.
BOTTOM_LEGEND = dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0)
# Log-axis labels as full numbers (Plotly's own minor labels read "5" for 0.5): 1-2-5 steps over a
# few decades, whole decades beyond, never more than about this many.
MAX_LOSS_TICKS = 12
# Hover notes for the per-epoch points: the training one is a mean over the epoch's batches, which
# is why it sits off the per-batch curve.
EPOCH_POINT_NOTE = {
    "training": "training: mean over the epoch's batches",
    "validation": "validation: whole validation split, end of epoch",
}
# The loss axis before the first batch: from a little under chance (ln 10) to where training heads.
EMPTY_LOSS_RANGE = (0.01, 3.0)
# Below this the accuracy axis starts at 0: a run near chance must not look like it is learning.
ZOOM_FROM_ACCURACY = 0.5
LOSS_HEIGHT = 300
ACCURACY_HEIGHT = 290
CONFUSION_HEIGHT = 520
CONFUSION_MARGIN = dict(l=50, r=10, t=40, b=110)  # room for the colour bar under the matrix
PER_CLASS_HEIGHT = 340
UNIT_HEIGHT = 420
PROBABILITIES_HEIGHT = 190
DIGIT_SIZE = 140
PREPARATION_HEIGHT = 200
# A step's image is shown at most this many px a side: the panels are small, and a whole 280-px crop
# would send 78k numbers a stroke.
PREPARATION_SIDE = 84

# The per-batch curve can reach ~40k points over a long run; a browser line of a few thousand points
# looks the same on a ~1000-px-wide chart and keeps the once-a-second payload small.
MAX_BATCH_POINTS = 2000

# Diverging scale for weights: red positive, blue negative, near-white at zero. 255 levels (odd) put
# an exact level at zero; together with the gap colour they fill a 256-entry PNG palette, which keeps
# the encoded grid at one byte per weight.
WEIGHT_COLORSCALE = "RdBu_r"
WEIGHT_LEVELS = 255
GAP_INDEX = WEIGHT_LEVELS  # palette slot of the gaps between tiles (and of non-finite weights)
GAP_RGB = (190, 190, 190)  # mid grey: distinct from the near-white of a zero weight
# A few large weights would otherwise squeeze everything else into the pale middle of the scale.
ROBUST_PERCENTILE = 99.5
TILE_GAP = 1
MAX_LABELLED_TILES = 20
# Wider than tall suits a wide dashboard: 700 units -> 37 x 19 tiles, 10 units -> 5 x 2.
GRID_ASPECT = 2.0
# Figure pixel sizes are decided in the browser; the builder assumes a wide column of this width to
# pick a height and a hover-marker size that roughly match a tile.
ASSUMED_FIGURE_WIDTH = 700
COLORBAR_ALLOWANCE = 80
GRID_MIN_HEIGHT = 240
GRID_MAX_HEIGHT = 640

# The mistakes in reds on a scale that ends at the largest one (at least 1 %), the diagonal apart.
ERROR_COLORSCALE = "Reds"
DIAGONAL_COLOR = "#e3e6ec"
ERROR_BAR_COLOR = "#d9534f"
MIN_ERROR_SCALE = 0.01
DIGIT_COLORSCALE = "gray"  # black -> white: ink white on black, as MNIST is usually shown


# --- shared pieces ----------------------------------------------------------------------------------


def _layout(fig: go.Figure, *, title: str, height: int, uirevision: str, margin: dict = MARGIN,
            **extra) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)),
        height=height,
        margin=margin,
        uirevision=uirevision,
        hovermode="closest",
        **extra,
    )
    return fig


def _placeholder(fig: go.Figure, text: str, color: str = PLACEHOLDER_COLOR) -> None:
    fig.add_annotation(
        text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
        font=dict(size=14, color=color),
    )


def _hidden_axis() -> dict:
    return dict(visible=False, showgrid=False, zeroline=False)


def _zoomed_range(values: np.ndarray, *, floor: float = 0.0, ceiling: float = 1.0,
                  min_pad: float = 0.005) -> list[float]:
    """A range a little wider than `values`, inside [floor, ceiling], so 0.97 vs 0.98 is visible."""
    low, high = float(np.min(values)), float(np.max(values))
    pad = max(min_pad, 0.15 * (high - low))
    return [max(floor, low - pad), min(ceiling, high + pad)]


# --- training curves --------------------------------------------------------------------------------


def downsample_indices(length: int, max_points: int = MAX_BATCH_POINTS) -> np.ndarray:
    """Every k-th index of a series of `length`, always ending with the last one, at most `max_points`."""
    if length <= max_points:
        return np.arange(length)
    # ceil(length / step) regular points plus the last one must fit in max_points.
    step = math.ceil(length / (max_points - 1))
    indices = np.arange(0, length, step)
    if indices[-1] != length - 1:
        indices = np.append(indices, length - 1)
    return indices


def log_ticks(low: float, high: float) -> list[float]:
    """Readable tick values covering [low, high] on a log axis (1-2-5 steps, or decades when the
    span is wide: a diverged run's loss reaches 1e19)."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
    if len([t for t in ticks if low <= t <= high]) < 3:  # a narrow range (a few epochs late in a run)
        ticks = [round(m * 10.0**e, 12) for e in range(first, last + 1) for m in (1, 1.5, 2, 3, 4, 5, 7)]
    if len([t for t in ticks if low <= t <= high]) > MAX_LOSS_TICKS:
        step = max(1, math.ceil((last - first) / MAX_LOSS_TICKS))
        return [10.0**e for e in range(first, last + step, step)]  # from below low to above high
    return [t for t in ticks if low / 1.5 <= t <= high * 1.5]


def loss_figure(history: Sequence[Mapping[str, float]], batch_loss: np.ndarray | None = None,
                batches_per_epoch: int = 0, batch_steps: np.ndarray | None = None,
                epochs: int | None = None) -> go.Figure:
    """Training and validation loss per epoch, over the smoothed per-batch loss in fractional epochs.

    `epochs` (the run's setting) fixes the x axis at 0..epochs from the start, so the chart shows how
    much of the run is done.

    `batch_loss` is the already-smoothed per-batch series; `batch_steps` numbers each point's batch
    over the run from 1 (by default 1, 2, 3...: every batch). Batch s sits at x = s / batches_per_epoch,
    i.e. the end of epoch e is at x = e.
    """
    batches = np.zeros(0, np.float32) if batch_loss is None else np.asarray(batch_loss, np.float32).ravel()
    steps = np.arange(1, len(batches) + 1) if batch_steps is None else np.asarray(batch_steps).ravel()
    if len(steps) != len(batches):
        raise ValueError(f"{len(steps)} batch steps for {len(batches)} batch losses")
    fig = _figure()
    if len(batches):
        if batches_per_epoch <= 0:
            raise ValueError("batches_per_epoch must be positive when batch_loss is given "
                             "(ceil(training examples / batch size))")
        keep = downsample_indices(len(batches))
        # float32 arrays travel as compact base64 typed arrays, not 17-digit decimals.
        fig.add_trace(go.Scatter(
            x=(steps[keep] / batches_per_epoch).astype(np.float32), y=batches[keep],
            mode="lines", name="training (per batch, smoothed)",
            line=dict(color=BATCH_COLOR, width=1),
            hovertemplate="epoch %{x:.2f}<br>loss %{y:.4g}<extra>per batch, smoothed</extra>",
        ))
    values = [batches]
    if history:
        done = [int(row["epoch"]) for row in history]
        for key, name, color in (("loss", "training", TRAIN_COLOR), ("val_loss", "validation", VAL_COLOR)):
            ys = [float(row[key]) for row in history]
            values.append(np.asarray(ys, np.float64))
            fig.add_trace(go.Scatter(
                x=done, y=ys, mode="markers+lines", name=name,
                line=dict(color=color, width=2), marker=dict(size=7),
                hovertemplate="epoch %{x}<br>loss %{y:.4g}<extra>" + EPOCH_POINT_NOTE[name] + "</extra>",
            ))
    # Cross-entropy falls from ~2.3 to a few hundredths: on a linear axis every epoch after the first
    # would be a flat line at the bottom.
    _layout(
        fig, title="Loss", height=LOSS_HEIGHT, uirevision="loss",
        xaxis=_epoch_axis(epochs),
        yaxis=dict(title="loss (log scale)", type="log"),
        legend=BOTTOM_LEGEND,
    )
    shown = np.concatenate([np.asarray(v, np.float64) for v in values])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if len(shown):
        ticks = log_ticks(float(shown.min()), float(shown.max()))
        fig.update_layout(yaxis=dict(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]))
    if not len(batches) and not history:
        _placeholder(fig, "waiting for the first batch")
        # The log axis the curve will have, over where it starts (ln 10 = 2.3) and where it heads.
        ticks = log_ticks(*EMPTY_LOSS_RANGE)
        fig.update_layout(yaxis=dict(range=[math.log10(v) for v in EMPTY_LOSS_RANGE], tickvals=ticks,
                                     ticktext=[f"{t:g}" for t in ticks]))
    return fig


def _epoch_axis(epochs: int | None) -> dict:
    """The x axis over the whole run when its length is known, else over the epochs so far."""
    if epochs:
        return dict(title="epoch", range=[0, epochs], dtick=1 if epochs <= 10 else None)
    return dict(title="epoch", rangemode="tozero")


def accuracy_figure(history: Sequence[Mapping[str, float]], epochs: int | None = None) -> go.Figure:
    """Training and validation accuracy per epoch, the y axis zoomed in on the values; `epochs` as
    for `loss_figure`."""
    fig = _figure()
    yaxis = dict(title="accuracy", tickformat=".1%")
    if history:
        done = [int(row["epoch"]) for row in history]
        values = []
        for key, name, color in (("accuracy", "training", TRAIN_COLOR),
                                 ("val_accuracy", "validation", VAL_COLOR)):
            ys = [float(row[key]) for row in history]
            values.extend(ys)
            fig.add_trace(go.Scatter(
                x=done, y=ys, mode="markers+lines", name=name,
                line=dict(color=color, width=2), marker=dict(size=7),
                cliponaxis=False,  # a marker at exactly 100 % would be cut in half at the top edge
                hovertemplate="epoch %{x}<br>accuracy %{y:.2%}<extra>" + EPOCH_POINT_NOTE[name] + "</extra>",
            ))
        finite = np.asarray(values, float)
        finite = finite[np.isfinite(finite)]
        if len(finite) and finite.min() >= ZOOM_FROM_ACCURACY:
            yaxis["range"] = _zoomed_range(finite)
        else:
            yaxis["range"] = [0.0, 1.0]  # near chance: the whole scale, so noise does not look like learning
    else:
        yaxis["range"] = [0.0, 1.0]
    _layout(
        fig, title="Accuracy", height=ACCURACY_HEIGHT, uirevision="accuracy",
        xaxis=_epoch_axis(epochs) if epochs else dict(title="epoch", rangemode="tozero",
                                                      dtick=1 if len(history) <= 10 else None),
        yaxis=yaxis,
        legend=BOTTOM_LEGEND,
    )
    if not history:
        _placeholder(fig, "waiting for the first epoch")
    return fig


# --- test report ------------------------------------------------------------------------------------


def confusion_figure(confusion: np.ndarray) -> go.Figure:
    """The confusion matrix with the errors as what the eye sees: off-diagonal cells coloured by
    their share of the true digit on a scale of their own (up to the largest error), labelled with
    their counts; the diagonal apart, in grey, labelled with each digit's accuracy. Rates and counts
    on hover. Rows are the true digit, columns the prediction."""
    counts = np.asarray(confusion)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {counts.shape}")
    n = counts.shape[0]
    totals = counts.sum(axis=1)
    # A digit absent from the test split has an all-zero row: rates 0, not 0/0.
    rates = counts / np.maximum(totals, 1)[:, None]
    digits = list(range(n))
    diagonal = np.eye(n, dtype=bool)
    errors = np.where(diagonal, np.nan, rates)
    worst = float(np.nanmax(errors)) if n > 1 else 0.0
    fig = _figure()
    fig.add_trace(go.Heatmap(
        z=errors, x=digits, y=digits, zmin=0.0, zmax=max(worst, MIN_ERROR_SCALE),
        colorscale=ERROR_COLORSCALE, hoverinfo="skip", name="errors",
        text=[[str(int(c)) if c and not d else "" for c, d in zip(row, drow)]
              for row, drow in zip(counts, diagonal)],
        texttemplate="%{text}", textfont=dict(size=11),
        # Under the matrix, not beside it: on a phone the matrix keeps the width, and its labels room.
        colorbar=dict(title=dict(text="error share (of the true digit's images)", side="top"),
                      tickformat=".1%", thickness=10, orientation="h", len=0.9, x=0.5, xanchor="center",
                      y=-0.16, yanchor="top"),
    ))
    fig.add_trace(go.Heatmap(
        z=np.where(diagonal, 1.0, np.nan), x=digits, y=digits, zmin=0.0, zmax=1.0,
        colorscale=[[0, DIAGONAL_COLOR], [1, DIAGONAL_COLOR]], showscale=False, hoverinfo="skip",
        name="correct", text=[[f"{100 * rates[i, i]:.0f}%" if totals[i] and i == j else "" for j in digits]
                              for i in digits],
        texttemplate="%{text}", textfont=dict(size=10, color="#333333"),
    ))
    true, predicted = np.divmod(np.arange(n * n), n)
    hover = []
    for t, p in zip(true, predicted):
        count, total = int(counts[t, p]), int(totals[t])
        share = f"{100 * count / total:.1f}%" if total else "no test images"
        what = "read right" if t == p else f"read as {p}"
        hover.append(f"true {t}, predicted {p}: {count} of {total} ({share}) {what}")
    plot_side = CONFUSION_HEIGHT - CONFUSION_MARGIN["t"] - CONFUSION_MARGIN["b"]
    fig.add_trace(go.Scatter(
        x=predicted, y=true, mode="markers", name="cells",
        marker=dict(symbol="square", size=0.9 * plot_side / n, opacity=0),
        customdata=np.stack([true, predicted, counts.ravel()], axis=1).tolist(),
        hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
    ))
    ticks = dict(tickmode="array", tickvals=digits, ticktext=[str(d) for d in digits],
                 showgrid=False, zeroline=False)
    return _layout(
        fig, title="Confusion matrix: the mistakes", height=CONFUSION_HEIGHT, uirevision="confusion",
        margin=CONFUSION_MARGIN,
        # Fixed ranges: left to autorange, the hover markers' size would pad the axes and shrink the
        # matrix (to 215 of 310 px on a phone).
        xaxis=dict(title="Predicted", range=[-0.5, n - 0.5], constrain="domain", **ticks),
        yaxis=dict(title="True digit", range=[n - 0.5, -0.5], scaleanchor="x", constrain="domain", **ticks),
    )


def per_class_figure(per_class_accuracy: Sequence[float | None]) -> go.Figure:
    """The error rate of each true digit (1 - its accuracy) as horizontal bars from 0, digit 0 on
    top: a bar twice as long is twice as many mistakes. None/NaN is "n/a"."""
    values = np.array([np.nan if v is None else float(v) for v in per_class_accuracy], float)
    digits = [str(d) for d in range(len(values))]
    known = np.isfinite(values)
    errors = 1.0 - values
    fig = _figure(go.Bar(
        x=[float(e) if ok else None for e, ok in zip(errors, known)], y=digits, orientation="h",
        marker_color=ERROR_BAR_COLOR,
        text=[f"{e:.1%}" if ok else "" for e, ok in zip(errors, known)], textposition="outside",
        cliponaxis=False,
        customdata=[float(v) if ok else None for v, ok in zip(values, known)],
        hovertemplate="digit %{y}: %{x:.2%} wrong (accuracy %{customdata:.2%})<extra></extra>",
        name="error rate",
    ))
    top = float(np.max(errors[known])) if known.any() else 0.0
    x_range = [0.0, max(top * 1.25, MIN_ERROR_SCALE)]
    for digit, ok in zip(digits, known):
        if not ok:
            fig.add_annotation(x=0, y=digit, text="n/a", showarrow=False, xanchor="left",
                               font=dict(color=PLACEHOLDER_COLOR))
    _layout(
        fig, title="Error rate per digit", height=PER_CLASS_HEIGHT, uirevision="per-class",
        xaxis=dict(title="share of the digit's test images read wrong", tickformat=".0%", range=x_range),
        yaxis=dict(title="digit", type="category", autorange="reversed"),
        bargap=0.25,
    )
    if not len(values):
        _placeholder(fig, "no test report yet")
    return fig


# --- first-layer weights ----------------------------------------------------------------------------


def default_columns(units: int) -> int:
    """Tile columns for `units` tiles: about GRID_ASPECT times wider than tall, last row not mostly empty."""
    columns = max(1, math.ceil(math.sqrt(units * GRID_ASPECT)))
    rows = math.ceil(units / columns)
    return max(1, math.ceil(units / rows))


def _check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != PIXELS or kernel.shape[1] == 0:
        raise ValueError(f"expected a first-layer kernel of shape ({PIXELS}, units), got {kernel.shape}")
    return kernel


def tile_grid(kernel: np.ndarray, columns: int | None = None) -> tuple[np.ndarray, int, int]:
    """Each unit's weights as a 28x28 tile, in a grid with 1-px gaps: (image with NaN gaps, rows, columns).

    Unit k sits at row k // columns, column k % columns; its tile starts at pixel
    (row * 29, column * 29). The grid has no outer border.
    """
    kernel = _check_kernel(kernel)
    units = kernel.shape[1]
    columns = default_columns(units) if columns is None else int(columns)
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    rows = math.ceil(units / columns)
    pitch = IMAGE_SIDE + TILE_GAP
    # One strided write instead of a Python loop over 700 tiles: every tile owns a pitch x pitch cell
    # (tile plus its gap to the right and below); the last gap row and column are cut off at the end.
    tiles = np.full((rows * columns, IMAGE_SIDE, IMAGE_SIDE), np.nan, np.float32)
    tiles[:units] = kernel.T.reshape(units, IMAGE_SIDE, IMAGE_SIDE)
    cells = np.full((rows, pitch, columns, pitch), np.nan, np.float32)
    cells[:, :IMAGE_SIDE, :, :IMAGE_SIDE] = (
        tiles.reshape(rows, columns, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 1, 3))
    grid = cells.reshape(rows * pitch, columns * pitch)[:-TILE_GAP, :-TILE_GAP].copy()
    return grid, rows, columns


def weight_range(weights: np.ndarray) -> float:
    """A robust symmetric colour range r for weights: the 99.5th percentile of |w| (never 0)."""
    magnitudes = np.abs(np.asarray(weights, np.float64))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    if not len(magnitudes):
        return 1.0
    r = float(np.percentile(magnitudes, ROBUST_PERCENTILE))
    if r <= 0:
        r = float(magnitudes.max())
    return r if r > 0 else 1.0


def _checked_range(value_range: float | None, weights: np.ndarray) -> float:
    if value_range is None:
        return weight_range(weights)
    if not (math.isfinite(value_range) and value_range > 0):
        raise ValueError(f"value_range must be a positive number, got {value_range}")
    return float(value_range)


@lru_cache(maxsize=4)
def weight_palette(colorscale: str = WEIGHT_COLORSCALE) -> np.ndarray:
    """uint8 [256, 3]: WEIGHT_LEVELS colours sampled evenly from Plotly's scale, then the gap colour."""
    samples = pcolors.sample_colorscale(colorscale, np.linspace(0.0, 1.0, WEIGHT_LEVELS).tolist())
    palette = np.array([pcolors.unlabel_rgb(c) for c in samples] + [GAP_RGB], dtype=np.float64)
    palette = np.rint(palette).astype(np.uint8)
    palette.setflags(write=False)  # cached and shared: nobody may edit it
    return palette


def colour_indices(values: np.ndarray, value_range: float) -> np.ndarray:
    """Palette index per value: -r -> 0, 0 -> the middle level, +r -> the last level; NaN -> GAP_INDEX."""
    values = np.asarray(values, np.float32)
    scaled = (values / value_range + 1.0) * (0.5 * (WEIGHT_LEVELS - 1))
    indices = np.rint(np.clip(np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0), 0, WEIGHT_LEVELS - 1))
    indices = indices.astype(np.uint8)
    indices[~np.isfinite(values)] = GAP_INDEX
    return indices


def grid_png(grid: np.ndarray, value_range: float) -> bytes:
    """The grid as a palette PNG: one byte per pixel keeps a 700-unit grid well under a megabyte."""
    image = Image.fromarray(colour_indices(grid, value_range))
    image.putpalette(weight_palette().tobytes())  # an "L" image with a palette becomes "P"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def weights_grid_figure(kernel: np.ndarray, columns: int | None = None,
                        value_range: float | None = None, quantity: str = "weight",
                        unit_ids: Sequence[int] | None = None, labels: Sequence[str] | None = None,
                        highlight: int | None = None) -> go.Figure:
    """All first-layer units as 28x28 tiles in one image on a shared symmetric colour range.

    The grid is one `go.Image` (a PNG coloured here), so 700 units cost the browser one bitmap rather
    than 600k heatmap cells. Trace 1 is an invisible scatter with one square marker per tile centre:
    hover names the unit, a selection returns `customdata` = unit index; it also owns the colour bar.
    `quantity` names what the tiles show ("weight", "change since step 0"...) on the colour bar.
    `unit_ids` are the units the kernel's columns are (a page of a sorted layer; default 0..n-1),
    `labels` their hover names (default "unit k"); the tile of unit `highlight` gets a frame.
    `labels` are also written over the tiles when there are at most MAX_LABELLED_TILES of them (the
    ten digit templates of the linear model).
    """
    kernel = _check_kernel(kernel)
    units = kernel.shape[1]
    r = _checked_range(value_range, kernel)
    grid, rows, columns = tile_grid(kernel, columns)
    source = "data:image/png;base64," + base64.b64encode(grid_png(grid, r)).decode("ascii")
    grid_height, grid_width = grid.shape

    plot_width = ASSUMED_FIGURE_WIDTH - TIGHT_MARGIN["l"] - TIGHT_MARGIN["r"] - COLORBAR_ALLOWANCE
    scale = plot_width / grid_width  # screen px per weight if the grid fills the width
    height = int(np.clip(grid_height * scale + TIGHT_MARGIN["t"] + TIGHT_MARGIN["b"],
                         GRID_MIN_HEIGHT, GRID_MAX_HEIGHT))
    scale = min(scale, (height - TIGHT_MARGIN["t"] - TIGHT_MARGIN["b"]) / grid_height)

    pitch = IMAGE_SIDE + TILE_GAP
    unit_ids = np.arange(units) if unit_ids is None else np.asarray(unit_ids, np.int64)
    if len(unit_ids) != units:
        raise ValueError(f"{len(unit_ids)} unit ids for {units} tiles")
    names = [f"unit {k}" for k in unit_ids] if labels is None else list(labels)
    centre = (IMAGE_SIDE - 1) / 2  # image pixel (i, j) is centred on (x=j, y=i)
    fig = _figure(go.Image(
        source=source, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip", zsmooth=False, name="weights",
    ))
    slot = np.arange(units)  # a marker sits on its tile's place on this page, whatever unit the tile shows
    fig.add_trace(go.Scatter(
        x=(slot % columns) * pitch + centre, y=(slot // columns) * pitch + centre,
        mode="markers", name="units", showlegend=False,
        customdata=unit_ids, text=names,
        hovertemplate="%{text}<extra></extra>",
        marker=dict(
            symbol="square", size=max(4.0, IMAGE_SIDE * scale), opacity=0,
            # The colour bar for the image: the markers are invisible, their colour values irrelevant.
            color=np.zeros(units, np.float32), colorscale=WEIGHT_COLORSCALE, cmin=-r, cmax=r,
            showscale=True, colorbar=dict(title=_side_title(quantity), thickness=12, len=0.9),
        ),
    ))
    slots = {int(k): i for i, k in enumerate(unit_ids)}
    if highlight is not None and int(highlight) in slots:
        i = slots[int(highlight)]
        x0, y0 = (i % columns) * pitch - 0.5, (i // columns) * pitch - 0.5
        fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x0 + IMAGE_SIDE + 0.5, y1=y0 + IMAGE_SIDE + 0.5,
                      line=dict(color=HIGHLIGHT_COLOR, width=3))
    if labels is not None and units <= MAX_LABELLED_TILES:
        for i, name in enumerate(names):
            fig.add_annotation(x=(i % columns) * pitch, y=(i // columns) * pitch, text=name,
                               showarrow=False, xanchor="left", yanchor="top", font=dict(size=12),
                               bgcolor="rgba(255,255,255,0.75)")
    return _layout(
        fig, title=f"First-layer weights ({units} units, colour range ±{r:.3g})", height=height,
        uirevision=f"weights-{units}-{columns}",  # a new architecture resets the view, a new epoch does not
        margin=TIGHT_MARGIN,
        xaxis=dict(range=[-0.5, grid_width - 0.5], constrain="domain", **_hidden_axis()),
        yaxis=dict(range=[grid_height - 0.5, -0.5], scaleanchor="x", constrain="domain", **_hidden_axis()),
    )


def _side_title(text: str) -> dict:
    # Along the bar, not above it: above, a narrow figure cut "weight" to "wei".
    return dict(text=text, side="right")


def unit_figure(weights: np.ndarray, unit: int, value_range: float | None = None,
                quantity: str = "weight") -> go.Figure:
    """One unit's 784 weights as a large 28x28 heatmap on the diverging weight scale.

    `weights` is that unit's weights ([784] or [28, 28]) or the whole kernel [784, units], from which
    column `unit` is taken.
    """
    weights = np.asarray(weights, np.float32)
    if weights.ndim == 2 and weights.shape[0] == PIXELS:
        if not 0 <= unit < weights.shape[1]:
            raise ValueError(f"unit {unit} is out of range: the layer has {weights.shape[1]} units")
        weights = weights[:, unit]
    if weights.size != PIXELS:
        raise ValueError(f"expected {PIXELS} weights (a 28x28 tile) or a ({PIXELS}, units) kernel, "
                         f"got shape {weights.shape}")
    tile = weights.reshape(IMAGE_SIDE, IMAGE_SIDE)
    r = _checked_range(value_range, tile)
    fig = _figure(go.Heatmap(
        z=tile, zmin=-r, zmax=r, colorscale=WEIGHT_COLORSCALE,
        colorbar=dict(title=_side_title(quantity), thickness=12),
        hovertemplate=f"row %{{y}}, col %{{x}}<br>{quantity} %{{z:.4f}}<extra></extra>", name=f"unit {unit}",
    ))
    return _layout(
        fig, title=f"Unit {unit}", height=UNIT_HEIGHT, uirevision="unit", margin=TIGHT_MARGIN,
        xaxis=dict(constrain="domain", **_hidden_axis()),
        yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain", **_hidden_axis()),
    )


# --- drawing and prediction -------------------------------------------------------------------------


def probabilities_figure(probabilities: Sequence[float] | None) -> go.Figure:
    """The model's probability for each digit, the most likely one highlighted."""
    digits = [str(d) for d in range(NUM_CLASSES)]
    if probabilities is None:
        values = np.zeros(NUM_CLASSES)
        colors = [MUTED_BAR_COLOR] * NUM_CLASSES
        text = [""] * NUM_CLASSES
    else:
        values = np.asarray(probabilities, float).ravel()
        if values.shape != (NUM_CLASSES,):
            raise ValueError(f"expected {NUM_CLASSES} probabilities, got {values.shape[0]}")
        best = int(np.argmax(values))
        colors = [HIGHLIGHT_COLOR if d == best else BAR_COLOR for d in range(NUM_CLASSES)]
        text = [f"{v:.2f}" for v in values]
    fig = _figure(go.Bar(
        x=digits, y=values, marker_color=colors, text=text, textposition="outside", cliponaxis=False,
        hovertemplate="digit %{x}: %{y:.3f}<extra>softmax of the logits: sums to 1</extra>",
        name="probability",
    ))
    _layout(
        fig, title="Probabilities", height=PROBABILITIES_HEIGHT, uirevision="probabilities",
        # Every digit labelled, however narrow the chart (Plotly would otherwise skip every other one).
        xaxis=dict(title="digit", type="category", tickmode="array", tickvals=digits, ticktext=digits),
        yaxis=dict(title="probability", range=[0, 1.1], tickvals=[0, 0.25, 0.5, 0.75, 1.0]),
        showlegend=False,
    )
    if probabilities is None:
        _placeholder(fig, "draw a digit")
    return fig


def digit_figure(image: np.ndarray | None) -> go.Figure:
    """The 28x28 image the model sees, ink white on black; None gives a black square and a hint."""
    if image is None:
        pixels = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.float32)
    else:
        pixels = np.asarray(image, np.float32)
        if pixels.size != PIXELS:  # [28, 28], [784] and [28, 28, 1] are all the same image
            raise ValueError(f"expected a {IMAGE_SIDE}x{IMAGE_SIDE} image, got shape {pixels.shape}")
        pixels = pixels.reshape(IMAGE_SIDE, IMAGE_SIDE)
    fig = _figure(go.Heatmap(
        z=pixels, zmin=0.0, zmax=1.0, colorscale=DIGIT_COLORSCALE, showscale=False,
        hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>", name="digit",
    ))
    _layout(
        fig, title="Model input (28×28)", height=DIGIT_SIZE, width=DIGIT_SIZE, uirevision="digit",
        margin=dict(l=5, r=5, t=30, b=5),
        xaxis=dict(constrain="domain", **_hidden_axis()),
        yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain", **_hidden_axis()),
    )
    fig.update_layout(title_font_size=13)  # the whole title fits the figure's fixed width
    if image is None:
        _placeholder(fig, "draw a digit", color="#bbbbbb")
    return fig


def preparation_figure(steps: Preparation, naive: tuple[np.ndarray, int] | None = None) -> go.Figure:
    """How a drawing became the model's input: the ink as drawn, its stroke made MNIST-like (or
    kept), scaled to a 20-px box, and centred in 28x28 (see `preprocess.prepare`); with `naive`
    (the whole canvas shrunk to 28x28, and the model's answer for it) a last panel shows what the
    model would have been given without that."""
    width = steps.stroke_in_digit
    stroke = f"stroke {width:.1f} px"
    if steps.stroke_change < 0:
        adjusted = f"{stroke}:<br>thinned to about {THIN_TO:g}"
    elif steps.stroke_change > 0:
        adjusted = f"{stroke}:<br>thickened to about {THICKEN_TO:g}"
    elif steps.dab:
        adjusted = "a dot or a dab,<br>not a stroke: as drawn"
    elif STROKE_RANGE[0] <= width <= STROKE_RANGE[1]:
        adjusted = f"{stroke}:<br>as MNIST's, kept"
    else:
        adjusted = f"{stroke}:<br>kept as drawn"  # too little ink to thicken, or a change under 1 px
    height, width = steps.crop.shape
    panels = [
        (steps.crop, f"drawn: the ink's<br>box, {width}×{height} px"),
        (steps.adjusted, adjusted),
        (steps.fitted, "scaled: longer<br>side 20 px"),
        (steps.digit, "centred in 28×28:<br>the model's input"),
    ]
    if naive is not None:
        panels.append((naive[0], f"the whole canvas<br>shrunk: read as {naive[1]}"))
    grid = _Panels(1, len(panels), [title for _, title in panels])
    for column, (image, _) in enumerate(panels, start=1):
        grid.add(go.Heatmap(z=_shrunk(image), zmin=0.0, zmax=1.0, colorscale=DIGIT_COLORSCALE,
                            showscale=False, hoverinfo="skip"), 1, column)
    return _layout(grid.figure(), title="How the drawing was prepared (stroke widths in 28×28 px)",
                   height=PREPARATION_HEIGHT,
                   uirevision="preparation", margin=dict(l=5, r=5, t=70, b=5))


def _shrunk(image: np.ndarray) -> np.ndarray:
    height, width = image.shape
    scale = PREPARATION_SIDE / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(np.asarray(image, np.float32)).resize(size, Image.Resampling.BOX))


# --- inside a prediction ----------------------------------------------------------------------------

EXPLANATION_HEIGHT = 560
ACTIVATION_ROW = 50  # units a row in a layer's activation image
MAP_HEIGHT = 460
MAP_RASTER = (640, 440)  # px of the digits' image: about the plot's size on a wide screen
MAP_DOT = 1  # a digit is a (2 * MAP_DOT + 1)-px square
MAP_DOT_ALPHA = 170
DIGITS_ROW_HEIGHT = 190
ATTACK_HEIGHT = 230
CLASS_COLORS = pcolors.qualitative.D3  # ten distinct colours, one a digit


def explanation_figure(e: Explanation) -> go.Figure:
    """The predicted digit's and the runner-up's effective templates (J's columns, or the gradients)
    and contribution maps (input times template), each pair on one symmetric scale, with the sums."""
    kind = "template" if e.exact else "gradient"
    titles, images = [], []
    for digit in (e.digit, e.runner_up):
        total = float(e.contributions(digit).sum())
        bias = float(e.effective_bias[digit])
        titles += [f"{kind} of {digit}", f"contributions to {digit}: Σ {total:.2f} + b_eff {bias:.2f}"
                   f" = {total + bias:.2f}"]
        images += [e.template(digit), e.contributions(digit)]
    grid = _Panels(2, 2, titles, hspace=0.12, vspace=0.1)
    template_range = _symmetric(np.stack(images[0::2]))
    contribution_range = _symmetric(np.stack(images[1::2]))
    for i, image in enumerate(images):
        row, col = divmod(i, 2)
        axis = "coloraxis" if col == 0 else "coloraxis2"
        grid.add(go.Heatmap(z=image, coloraxis=axis, name=titles[i],
                            hovertemplate="row %{y}, col %{x}: %{z:.4f}<extra></extra>"), row + 1, col + 1)
    bar = dict(thickness=10, len=0.9, y=0.5)
    return _layout(
        grid.figure(), title="What it looks for: templates (left) and each pixel's part of the logit (right)",
        height=EXPLANATION_HEIGHT, uirevision="explanation", margin=dict(l=10, r=10, t=70, b=10),
        coloraxis=dict(colorscale=WEIGHT_COLORSCALE, cmin=-template_range, cmax=template_range,
                       colorbar=dict(title=dict(text=kind, side="right"), x=0.44, **bar)),
        coloraxis2=dict(colorscale=WEIGHT_COLORSCALE, cmin=-contribution_range, cmax=contribution_range,
                        colorbar=dict(title=dict(text="contribution", side="right"), x=1.0, **bar)),
    )


def activations_figure(activations: Sequence[np.ndarray], activation: str = "relu") -> go.Figure:
    """Each hidden layer's outputs for one input as an image, units in their fixed order row by row
    (so that successive strokes can be compared), with how many are active (ReLU: above zero) or,
    for tanh and sigmoid, above the middle of their range."""
    layers = [np.asarray(a, np.float32) for a in activations]
    middle, low, high, scale = {"relu": (0.0, 0.0, None, "Blues"), "tanh": (0.0, -1.0, 1.0, WEIGHT_COLORSCALE),
                                "sigmoid": (0.5, 0.0, 1.0, "Blues")}[activation]
    word = "active" if activation == "relu" else f"above {middle:g}"
    titles = [f"layer {i}: {int(np.count_nonzero(a > middle))} of {a.size} units {word}"
              for i, a in enumerate(layers, start=1)]
    rows = [math.ceil(a.size / ACTIVATION_ROW) for a in layers]
    panels = _Panels(len(layers), 1, titles, vspace=0.12, row_heights=[max(r, 1) for r in rows])
    top = high if high is not None else max((float(a.max()) for a in layers if a.size), default=1.0) or 1.0
    for i, (a, n) in enumerate(zip(layers, rows), start=1):
        grid = np.full(n * ACTIVATION_ROW, np.nan, np.float32)
        grid[: a.size] = a
        unit_ids = np.arange(n * ACTIVATION_ROW).reshape(n, ACTIVATION_ROW)
        panels.add(go.Heatmap(z=grid.reshape(n, ACTIVATION_ROW), customdata=unit_ids, zmin=low, zmax=top,
                              colorscale=scale, showscale=i == 1,
                              colorbar=dict(title=dict(text="output", side="right"), thickness=10),
                              name=f"layer {i}",
                              hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>"), i, 1, image=False)
    height = 90 + sum(12 * r + 40 for r in rows)
    what = "white: switched off" if activation == "relu" else f"{activation} outputs"
    return _layout(panels.figure(), title=f"The hidden layers' outputs ({what})", height=min(max(height, 180), 600),
                   uirevision="activations", margin=dict(l=10, r=10, t=60, b=10))


@dataclass(frozen=True)
class MapRaster:
    """The map's digits drawn as one image (a PNG data URL) and the axes' extent it covers."""

    source: str
    xs: tuple[float, float]
    ys: tuple[float, float]


def map_raster(hidden_map: HiddenMap) -> MapRaster:
    """The digits of `hidden_map` as MAP_RASTER dots coloured by label on a transparent image. It
    depends on the map alone, so a page can keep it for every stroke on one model state."""
    points = np.asarray(hidden_map.points, np.float32)
    (x0, x1), (y0, y1) = _map_extent(points)
    return MapRaster(_map_raster(points, np.asarray(hidden_map.labels), (x0, x1), (y0, y1)), (x0, x1), (y0, y1))


def hidden_map_figure(hidden_map: HiddenMap, point: np.ndarray, neighbours: Sequence[int],
                      raster: MapRaster | None = None) -> go.Figure:
    """The test digits on the two main axes of the last hidden layer, coloured by their label; the
    input as a star and its nearest digits ringed. `raster` is `map_raster(hidden_map)`, made here
    when not given.

    The digits are one raster image under the axes, not 10,000 markers: the figure is sent and drawn
    again on every stroke, and a WebGL scatter of them cost the browser about 170 ms each time."""
    raster = raster or map_raster(hidden_map)
    points = np.asarray(hidden_map.points, np.float32)
    here = np.asarray(point, np.float32)
    # The axes take in the input wherever it lands; the image keeps the digits' own extent.
    if raster.xs[0] <= here[0] <= raster.xs[1] and raster.ys[0] <= here[1] <= raster.ys[1]:
        (x0, x1), (y0, y1) = raster.xs, raster.ys
    else:
        corners = np.array([[raster.xs[0], raster.ys[0]], [raster.xs[1], raster.ys[1]], here], np.float32)
        (x0, x1), (y0, y1) = _map_extent(corners)
    fig = _figure()
    for digit in range(10):  # legend entries only: the digits themselves are in the raster
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=str(digit),
                                 marker=dict(size=8, color=CLASS_COLORS[digit])))
    near = np.asarray(list(neighbours), np.int64)
    if near.size:
        fig.add_trace(go.Scatter(
            x=points[near, 0], y=points[near, 1], mode="markers", name="nearest",
            marker=dict(size=12, color="rgba(0,0,0,0)", line=dict(color="black", width=2)),
            customdata=near, hovertemplate="test digit #%{customdata}<extra>nearest</extra>",
        ))
    fig.add_trace(go.Scatter(
        x=[float(here[0])], y=[float(here[1])], mode="markers", name="this input",
        marker=dict(size=18, symbol="star", color="black", line=dict(color="white", width=1)),
        hovertemplate="this input<extra></extra>",
    ))
    (rx0, rx1), (ry0, ry1) = raster.xs, raster.ys
    fig.add_layout_image(source=raster.source, xref="x", yref="y", x=rx0, y=ry1, sizex=rx1 - rx0,
                         sizey=ry1 - ry0, sizing="stretch", layer="below")
    first, second = hidden_map.explained
    return _layout(
        fig, title="The last hidden layer, flattened to its two main directions", height=MAP_HEIGHT,
        uirevision="hidden-map",  # the axes stay put between strokes
        xaxis=dict(title=f"first direction ({first:.0%} of the spread)", range=[x0, x1], zeroline=False,
                   showgrid=False),
        yaxis=dict(title=f"second ({second:.0%})", range=[y0, y1], zeroline=False, showgrid=False),
        legend=dict(title="digit", itemsizing="constant"),
    )


def _map_extent(points: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    low, high = points.min(axis=0), points.max(axis=0)
    pad = np.maximum(0.05 * (high - low), 1e-3)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


def _map_raster(points: np.ndarray, labels: np.ndarray, xs: tuple[float, float], ys: tuple[float, float]) -> str:
    """The digits as MAP_RASTER dots coloured by label on a transparent PNG (a data URL); the row 0
    of the image is the top of the plot."""
    width, height = MAP_RASTER
    image = np.zeros((height, width, 4), np.uint8)
    cols = np.clip(((points[:, 0] - xs[0]) / (xs[1] - xs[0]) * (width - 1)).round().astype(int), 0, width - 1)
    rows = np.clip(((ys[1] - points[:, 1]) / (ys[1] - ys[0]) * (height - 1)).round().astype(int), 0, height - 1)
    colours = np.array([_rgba(c) for c in CLASS_COLORS], np.uint8)[np.asarray(labels, np.int64) % 10]
    for dr in range(-MAP_DOT, MAP_DOT + 1):
        for dc in range(-MAP_DOT, MAP_DOT + 1):
            image[np.clip(rows + dr, 0, height - 1), np.clip(cols + dc, 0, width - 1)] = colours
    buffer = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rgba(colour: str) -> tuple[int, int, int, int]:
    red, green, blue = pcolors.hex_to_rgb(colour) if colour.startswith("#") else pcolors.unlabel_rgb(colour)
    return int(red), int(green), int(blue), MAP_DOT_ALPHA


def digits_row_figure(images: Sequence[np.ndarray], titles: Sequence[str], title: str) -> go.Figure:
    """A few 28x28 digits side by side (uint8 0-255 or float 0-1), each with its own caption."""
    count = max(1, len(images))
    grid = _Panels(1, count, list(titles), hspace=0.03)
    for i, image in enumerate(images, start=1):
        pixels = np.asarray(image, np.float32)
        pixels = pixels / 255.0 if pixels.max() > 1.0 else pixels
        grid.add(go.Heatmap(z=pixels, zmin=0, zmax=1, colorscale=DIGIT_COLORSCALE, showscale=False,
                            hoverinfo="skip"), 1, i)
    return _layout(grid.figure(), title=title, height=DIGITS_ROW_HEIGHT, uirevision="digits-row",
                   margin=dict(l=5, r=5, t=75, b=5))


def attack_figure(found: Attack, noisy: np.ndarray | None, noise_answer: int | None) -> go.Figure:
    """The input, the attack's change (on its own symmetric scale), the changed input and the model's
    answer; beside them random noise of the same size and what the model reads then."""
    # Not reached: the largest budget tried is what the change shows.
    epsilon = found.epsilon if found.epsilon else float(np.abs(found.change).max())
    panels = [(found.original, "the input", "digit"),
              (found.change, f"the change (each pixel ±{epsilon:.3g} at most)", "change"),
              (found.image, f"input + change: read as {found.digit}", "digit")]
    if noisy is not None:
        panels.append((noisy, f"random noise as large:<br>read as {noise_answer}", "digit"))
    grid = _Panels(1, len(panels), [p[1] for p in panels])
    for i, (image, _, kind) in enumerate(panels, start=1):
        if kind == "change":
            r = max(epsilon, 1e-6)
            trace = go.Heatmap(z=image, zmin=-r, zmax=r, colorscale=WEIGHT_COLORSCALE, showscale=False,
                               hovertemplate="row %{y}, col %{x}: %{z:+.3f}<extra></extra>")
        else:
            trace = go.Heatmap(z=image, zmin=0, zmax=1, colorscale=DIGIT_COLORSCALE, showscale=False,
                               hoverinfo="skip")
        grid.add(trace, 1, i)
    target = f"read as {found.target}" if found.epsilon is not None else f"not reached: {found.target}"
    return _layout(grid.figure(), title=f"Change its mind: {target}", height=ATTACK_HEIGHT, uirevision="attack",
                   margin=dict(l=5, r=5, t=80, b=5))


def unit_tiles_figure(weights: np.ndarray, unit_ids: Sequence[int], titles: Sequence[str]) -> go.Figure:
    """A few first-layer units' 28x28 weights side by side on one symmetric scale, each with its
    caption; a click on a tile selects its unit (an invisible marker over it carries the id)."""
    weights = np.asarray(weights, np.float32)
    count = len(unit_ids)
    if weights.shape != (PIXELS, count):
        raise ValueError(f"expected ({PIXELS}, {count}) weights for {count} units, got {weights.shape}")
    r = _symmetric(weights)
    grid = _Panels(1, max(count, 1), list(titles), hspace=0.03)
    centre = (IMAGE_SIDE - 1) / 2
    # Fixed ranges: the invisible markers must not pad the axes around the tiles.
    ranges = dict(x_range=[-0.5, IMAGE_SIDE - 0.5], y_range=[IMAGE_SIDE - 0.5, -0.5])
    for i, unit in enumerate(unit_ids, start=1):
        grid.add(go.Heatmap(z=weights[:, i - 1].reshape(IMAGE_SIDE, IMAGE_SIDE), zmin=-r, zmax=r,
                            colorscale=WEIGHT_COLORSCALE, showscale=i == count, hoverinfo="skip",
                            colorbar=dict(title=dict(text="weight", side="right"), thickness=10)), 1, i, **ranges)
        grid.add(go.Scatter(x=[centre], y=[centre], mode="markers", customdata=[int(unit)],
                            marker=dict(symbol="square", size=60, opacity=0), showlegend=False,
                            hovertemplate=f"unit {int(unit)}: click to see it large<extra></extra>"), 1, i, **ranges)
    return _layout(grid.figure(), title=f"Their weights (colour range ±{r:.3g})", height=DIGITS_ROW_HEIGHT + 20,
                   uirevision="unit-tiles", margin=dict(l=5, r=5, t=95, b=5))


def _symmetric(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


# --- weights over time ----------------------------------------------------------------------------

BANDS_HEIGHT_PER_LAYER = 150
OVER_TIME_HEIGHT = 300
MARKER_COLOR = "rgba(40, 40, 40, 0.55)"
# Pairs of BAND_PERCENTILES drawn as bands (outer first, paler), the middle one as the median line.
BAND_PAIRS = ((0, 6), (1, 5), (2, 4))
BAND_ALPHAS = (0.12, 0.22, 0.38)
DIGIT_LEGEND = dict(title="digit", orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0)


def _epoch_marker(fig: go.Figure, epoch: int | None, panels: int = 1) -> None:
    """A dotted vertical line at the chosen epoch in each of the first `panels` panels."""
    if epoch is None:
        return
    for index in range(1, panels + 1):
        suffix = "" if index == 1 else str(index)
        fig.add_shape(type="line", xref=f"x{suffix}", yref=f"y{suffix} domain", x0=epoch, x1=epoch, y0=0, y1=1,
                      line=dict(color=MARKER_COLOR, width=2, dash="dot"), name="chosen epoch")


def weight_bands_figure(epochs: Sequence[int], bands: Sequence[np.ndarray], names: Sequence[str],
                        marker: int | None = None) -> go.Figure:
    """Each layer's weights over the epochs as percentile bands (TensorBoard's distributions): 1-99,
    5-95 and 25-75 % around the median, one panel a layer; a dotted line at the chosen epoch."""
    if len(bands) != len(names):
        raise ValueError(f"{len(bands)} layers of bands for {len(names)} names")
    x = np.asarray(epochs, np.float64)
    panels = _Panels(len(bands), 1, list(names), vspace=0.12)
    red, green, blue = pcolors.hex_to_rgb(pcolors.qualitative.Plotly[0])
    for row, layer in enumerate(bands, start=1):
        layer = np.asarray(layer, np.float64)
        if layer.shape != (len(x), 7):
            raise ValueError(f"expected [{len(x)}, 7] percentiles for a layer, got {layer.shape}")
        for (low, high), alpha in zip(BAND_PAIRS, BAND_ALPHAS):
            fill = f"rgba({red}, {green}, {blue}, {alpha})"
            panels.add(go.Scatter(x=x, y=layer[:, low], mode="lines", line=dict(width=0), showlegend=False,
                                  hoverinfo="skip"), row, 1, image=False)
            panels.add(go.Scatter(x=x, y=layer[:, high], mode="lines", line=dict(width=0), fill="tonexty",
                                  fillcolor=fill, showlegend=False, hoverinfo="skip"), row, 1, image=False)
        panels.add(go.Scatter(x=x, y=layer[:, 3], mode="lines+markers", name="median",
                              line=dict(color=TRAIN_COLOR, width=2), marker=dict(size=4), showlegend=False,
                              customdata=layer[:, [0, 2, 4, 6]],
                              hovertemplate="epoch %{x}: median %{y:.4f}<br>25-75 %: %{customdata[1]:.4f} to "
                                            "%{customdata[2]:.4f}<br>1-99 %: %{customdata[0]:.4f} to "
                                            "%{customdata[3]:.4f}<extra></extra>"), row, 1, image=False)
    fig = panels.figure()
    for index in range(1, len(bands) + 1):  # the panels' axes: shown, unlike an image's
        suffix = "" if index == 1 else str(index)
        fig.layout[f"xaxis{suffix}"].update(visible=True, showticklabels=index == len(bands), zeroline=False,
                                           title="epoch" if index == len(bands) else None)
        fig.layout[f"yaxis{suffix}"].update(visible=True, autorange=True, zeroline=True, title="weight")
    _epoch_marker(fig, marker, len(bands))
    return _layout(fig, title="Each layer's weights",
                   height=90 + BANDS_HEIGHT_PER_LAYER * len(bands), uirevision="weight-bands",
                   margin=dict(l=60, r=20, t=60, b=45))


def class_accuracy_figure(epochs: Sequence[int], per_class: np.ndarray, marker: int | None = None) -> go.Figure:
    """Validation accuracy of each digit over the epochs, one line a digit, a dotted line at the
    chosen epoch."""
    per_class = np.asarray(per_class, np.float64)
    if per_class.shape != (len(epochs), NUM_CLASSES):
        raise ValueError(f"expected [{len(epochs)}, {NUM_CLASSES}] accuracies, got {per_class.shape}")
    fig = _figure()
    for digit in range(NUM_CLASSES):
        fig.add_trace(go.Scatter(x=list(epochs), y=per_class[:, digit], mode="lines+markers", name=str(digit),
                                 line=dict(color=CLASS_COLORS[digit], width=1.5), marker=dict(size=4),
                                 hovertemplate=f"digit {digit}, epoch %{{x}}: %{{y:.1%}}<extra></extra>"))
    _epoch_marker(fig, marker)
    return _layout(fig, title="Validation accuracy of each digit", height=OVER_TIME_HEIGHT,
                   uirevision="class-accuracy", xaxis=_over_epochs_axis(epochs),
                   yaxis=dict(title="accuracy", tickformat=".0%"), legend=DIGIT_LEGEND,
                   margin=dict(l=50, r=20, t=40, b=95))


def answers_over_time_figure(epochs: Sequence[int], probabilities: np.ndarray,
                             marker: int | None = None) -> go.Figure:
    """The probability of each digit that the model of each kept epoch gives one input; the digits
    it ever answers are drawn bold, the others faint."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.shape != (len(epochs), NUM_CLASSES):
        raise ValueError(f"expected [{len(epochs)}, {NUM_CLASSES}] probabilities, got {probabilities.shape}")
    answered = set(int(d) for d in probabilities.argmax(axis=1))
    fig = _figure()
    for digit in range(NUM_CLASSES):
        bold = digit in answered
        fig.add_trace(go.Scatter(x=list(epochs), y=probabilities[:, digit], mode="lines+markers", name=str(digit),
                                 line=dict(color=CLASS_COLORS[digit], width=3 if bold else 1),
                                 marker=dict(size=6 if bold else 3), opacity=1.0 if bold else 0.35,
                                 hovertemplate=f"{digit} after epoch %{{x}}: %{{y:.1%}}<extra></extra>"))
    _epoch_marker(fig, marker)
    return _layout(fig, title="What the model of each epoch answers", height=OVER_TIME_HEIGHT,
                   uirevision="answers-over-time", xaxis=_over_epochs_axis(epochs),
                   yaxis=dict(title="probability", range=[0, 1.05], tickformat=".0%"), legend=DIGIT_LEGEND,
                   margin=dict(l=50, r=20, t=40, b=95))


def unit_norm_figure(epochs: Sequence[int], norms: Sequence[float], unit: int, marker: int | None = None) -> go.Figure:
    """The length (L2 norm) of one unit's weights over the epochs."""
    fig = _figure(go.Scatter(x=list(epochs), y=list(norms), mode="lines+markers", name=f"unit {unit}",
                             line=dict(color=TRAIN_COLOR), hovertemplate="epoch %{x}: %{y:.3f}<extra></extra>"))
    _epoch_marker(fig, marker)
    return _layout(fig, title=f"Unit {unit}: the length of its weights", height=220, uirevision="unit-norm",
                   margin=dict(l=50, r=20, t=40, b=40), xaxis=_over_epochs_axis(epochs),
                   yaxis=dict(title="L2 norm", rangemode="tozero"), showlegend=False)


def _over_epochs_axis(epochs: Sequence[int]) -> dict:
    """Whole epochs only (a few epochs would otherwise get ticks at 0.5)."""
    last = max(epochs, default=0)
    return dict(title="epoch", rangemode="tozero", dtick=1 if last <= 12 else None)


# --- mistakes -------------------------------------------------------------------------------------

DIGIT_GAP = 2  # px between digits in a grid
DIGIT_BACKGROUND = 255  # white: the page around the grid, so the last row ends cleanly
# Ten digits a row keep a caption readable over each in a half-page column; a long list gets twenty.
DIGIT_COLUMNS, MANY_DIGIT_COLUMNS, MANY_DIGITS = 10, 20, 60
MAX_TILE_CAPTIONS = 60  # beyond this the names are on hover only: the grid stays one readable image


def digits_grid_figure(images: np.ndarray, ids: Sequence[int], hover: Sequence[str], title: str,
                       short: Sequence[str] | None = None, columns: int | None = None,
                       hint: str = "click: inside a prediction") -> go.Figure:
    """Many 28x28 digits (uint8, ink white on black) as one image, with an invisible marker on each
    that names it on hover (`hover` is plain text) and carries its id (`customdata`) for a click.
    `short` captions (Plotly's HTML: <br> breaks a line) are written over the tiles when there are at
    most MAX_TILE_CAPTIONS of them."""
    images = np.asarray(images)
    count = len(images)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or len(ids) != count or len(hover) != count:
        raise ValueError(f"expected [N, 28, 28] images with an id and a hover text each, got {images.shape}, "
                         f"{len(ids)} ids and {len(hover)} texts")
    columns = columns or max(1, min(count, DIGIT_COLUMNS if count <= MANY_DIGITS else MANY_DIGIT_COLUMNS))
    rows = max(1, math.ceil(count / columns))
    pitch = IMAGE_SIDE + DIGIT_GAP
    grid = np.full((rows * pitch - DIGIT_GAP, columns * pitch - DIGIT_GAP), DIGIT_BACKGROUND, np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        grid[r * pitch: r * pitch + IMAGE_SIDE, c * pitch: c * pitch + IMAGE_SIDE] = image
    buffer = io.BytesIO()
    Image.fromarray(grid, "L").convert("RGB").save(buffer, format="PNG")
    source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    height, width = grid.shape
    scale = (ASSUMED_FIGURE_WIDTH - 20) / width
    fig_height = int(np.clip(height * scale + 60, 120, GRID_MAX_HEIGHT * 1.5))
    centre = (IMAGE_SIDE - 1) / 2
    slot = np.arange(count)
    fig = _figure(go.Image(source=source, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip", name="digits"))
    fig.add_trace(go.Scatter(
        x=(slot % columns) * pitch + centre, y=(slot // columns) * pitch + centre, mode="markers",
        # Hover texts may name a file (a drawing's): shown as written, never read as Plotly's HTML.
        customdata=np.asarray(ids, np.int64), text=[_plain(h) for h in hover],
        hovertemplate=f"%{{text}}<extra>{hint}</extra>",
        showlegend=False, name="digits",
        marker=dict(symbol="square", size=max(6.0, IMAGE_SIDE * min(scale, (fig_height - 60) / height)), opacity=0),
    ))
    if short is not None and count <= MAX_TILE_CAPTIONS:
        for k, text in enumerate(short):
            fig.add_annotation(x=(k % columns) * pitch - 0.5, y=(k // columns) * pitch - 0.5, text=text,
                               showarrow=False, xanchor="left", yanchor="top", font=dict(size=9, color="white"),
                               bgcolor="rgba(60,60,60,0.7)", borderpad=1)
    return _layout(fig, title=title, height=fig_height, uirevision=f"digits-{columns}",
                   margin=dict(l=5, r=5, t=40, b=5),
                   xaxis=dict(range=[-0.5, width - 0.5], constrain="domain", **_hidden_axis()),
                   # In a column narrower than the height assumes, the grid hugs the title: the
                   # space left over is below it, not split above and below.
                   yaxis=dict(range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain",
                              constraintoward="top", **_hidden_axis()))


# --- units ----------------------------------------------------------------------------------------

UNIT_CHART_HEIGHT = 260
INTACT_COLOR = pcolors.qualitative.Plotly[0]
ABLATED_COLOR = ERROR_BAR_COLOR


def grey_image_figure(image: np.ndarray, title: str, height: int = UNIT_CHART_HEIGHT) -> go.Figure:
    """A 28x28 image in [0, 1], ink white on black, with the pixel values on hover."""
    pixels = np.asarray(image, np.float32).reshape(IMAGE_SIDE, IMAGE_SIDE)
    fig = _figure(go.Heatmap(z=pixels, zmin=0.0, zmax=1.0, colorscale=DIGIT_COLORSCALE, showscale=False,
                             hovertemplate="row %{y}, col %{x}: %{z:.2f}<extra></extra>", name="image"))
    return _layout(fig, title=title, height=height, uirevision="grey-image", margin=dict(l=5, r=5, t=40, b=5),
                   xaxis=dict(constrain="domain", **_hidden_axis()),
                   yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain", **_hidden_axis()))


def class_means_figure(means: Sequence[float]) -> go.Figure:
    """A unit's mean output over the test digits of each class, its favourite highlighted."""
    values = np.nan_to_num(np.asarray(means, np.float64), nan=0.0)
    best = int(np.argmax(values)) if values.size else 0
    fig = _figure(go.Bar(x=[str(d) for d in range(len(values))], y=values,
                         marker_color=[HIGHLIGHT_COLOR if d == best else BAR_COLOR for d in range(len(values))],
                         hovertemplate="digit %{x}: mean output %{y:.3f}<extra></extra>", name="mean output"))
    return _layout(fig, title="Its mean output per digit", height=UNIT_CHART_HEIGHT,
                   uirevision="class-means", showlegend=False,
                   xaxis=dict(title="digit", type="category"), yaxis=dict(title="mean output", rangemode="tozero"))


def accuracy_compare_figure(intact: Sequence[float | None], ablated: Sequence[float | None],
                            what: str) -> go.Figure:
    """Each digit's test accuracy, intact and with units switched off, side by side."""
    digits = [str(d) for d in range(len(intact))]
    fig = _figure()
    for name, values, colour in (("intact", intact, INTACT_COLOR), (what, ablated, ABLATED_COLOR)):
        fig.add_trace(go.Bar(x=digits, y=[None if v is None else float(v) for v in values], name=name,
                             marker_color=colour, hovertemplate=f"digit %{{x}}, {name}: %{{y:.1%}}<extra></extra>"))
    return _layout(fig, title="Test accuracy per digit", height=UNIT_CHART_HEIGHT + 40, uirevision="ablation",
                   barmode="group", xaxis=dict(title="digit", type="category"),
                   yaxis=dict(title="accuracy", tickformat=".0%", range=[0, 1.05]), legend=BOTTOM_LEGEND,
                   margin=dict(l=50, r=20, t=40, b=90))


def ablation_curve_figure(fractions: Sequence[float], curves: Mapping[str, Sequence[float]]) -> go.Figure:
    """Test accuracy against the share of a layer's units switched off, one line per order."""
    fig = _figure()
    palette = [ABLATED_COLOR, INTACT_COLOR, pcolors.qualitative.Plotly[2]]
    for (name, values), colour in zip(curves.items(), palette):
        fig.add_trace(go.Scatter(x=list(fractions), y=list(values), mode="lines+markers", name=name,
                                 line=dict(color=colour),
                                 hovertemplate=f"{name}: %{{x:.0%}} off, accuracy %{{y:.1%}}<extra></extra>"))
    return _layout(fig, title="Accuracy as the first layer's units are switched off", height=UNIT_CHART_HEIGHT + 60,
                   uirevision="ablation-curve", xaxis=dict(title="share of the units switched off", tickformat=".0%"),
                   yaxis=dict(title="test accuracy", tickformat=".0%", range=[0, 1.05]), legend=BOTTOM_LEGEND,
                   margin=dict(l=50, r=20, t=40, b=90))


# --- the data ---------------------------------------------------------------------------------------

SPLIT_COLORS = {"training": pcolors.qualitative.Plotly[0], "validation": pcolors.qualitative.Plotly[1],
                "test": pcolors.qualitative.Plotly[2]}


def class_counts_figure(counts: Mapping[str, Sequence[int]]) -> go.Figure:
    """How many digits of each class each split holds, as grouped bars."""
    fig = _figure()
    for split, values in counts.items():
        fig.add_trace(go.Bar(x=[str(d) for d in range(len(values))], y=[int(v) for v in values], name=split,
                             marker_color=SPLIT_COLORS.get(split),
                             hovertemplate=f"{split}: %{{y:,}} digits of %{{x}}<extra></extra>"))
    return _layout(fig, title="Digits of each class in each split", height=300, uirevision="class-counts",
                   barmode="group", xaxis=dict(title="digit", type="category"), yaxis=dict(title="digits"),
                   legend=BOTTOM_LEGEND, margin=dict(l=60, r=20, t=40, b=90))


# --- comparing runs ---------------------------------------------------------------------------------

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


def _plain(text: str) -> str:
    """A user's text shown as written: Plotly reads <b>, <a href> and the like in names and titles."""
    return html.escape(text, quote=False)


def _setting_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "linear"
    return str(value)
