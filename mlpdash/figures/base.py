"""What every figure module shares: the template, the house style, a fast grid of panels, and small
layout helpers.

Nothing here imports Streamlit or TensorFlow, so every figure can be built and tested headless.
The view modules import from here and never from each other: a constant or helper two views need
lives in this module.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

# Plotly's validators look pandas up in sys.modules without importing it, so a figure built while
# another thread is half-way through importing pandas (TensorFlow and Streamlit both do) fails with
# "partially initialized module 'pandas' has no attribute 'Series'". Importing it here makes every
# thread that can build a figure wait until pandas is whole (Python's per-module import lock).
import pandas  # noqa: F401, I001
import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio


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


MARGIN = dict(l=50, r=20, t=40, b=40)
TIGHT_MARGIN = dict(l=10, r=10, t=40, b=10)
TRAIN_COLOR = pcolors.qualitative.Plotly[0]
VAL_COLOR = pcolors.qualitative.Plotly[1]
BAR_COLOR = pcolors.qualitative.Plotly[0]
MUTED_BAR_COLOR = "#c8cbd2"
HIGHLIGHT_COLOR = pcolors.qualitative.Plotly[1]
PLACEHOLDER_COLOR = "#888888"
ERROR_BAR_COLOR = "#d9534f"
CLASS_COLORS = pcolors.qualitative.D3  # ten distinct colours, one a digit
DIGIT_COLORSCALE = "gray"  # black -> white: ink white on black, as MNIST is usually shown
# Diverging scale for weights and changes: red positive, blue negative, near-white at zero.
WEIGHT_COLORSCALE = "RdBu_r"

# Legends sit under the plot: above it they collide with the title on a half-width chart.
BOTTOM_LEGEND = dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0)
# Log-axis labels as full numbers (Plotly's own minor labels read "5" for 0.5): 1-2-5 steps over a
# few decades, whole decades beyond, never more than about this many: the loss chart's plot is about
# 150 px tall, and 12 labels (a diverged run's 2 to 5e4) touched one another.
MAX_LOSS_TICKS = 8
# The loss axis before the first batch: from a little under chance (ln 10) to where training heads.
EMPTY_LOSS_RANGE = (0.01, 3.0)
# Below this the accuracy axis starts at 0: a run near chance must not look like it is learning.
ZOOM_FROM_ACCURACY = 0.5

# Figure pixel sizes are decided in the browser; the builders of image grids assume a wide column
# of this width to pick a height and a hover-marker size that roughly match a tile.
ASSUMED_FIGURE_WIDTH = 700
GRID_MAX_HEIGHT = 640


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


def _plain(text: str) -> str:
    """A user's text shown as written: Plotly reads <b>, <a href> and the like in names and titles."""
    return html.escape(text, quote=False)
