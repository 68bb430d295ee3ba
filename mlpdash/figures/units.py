"""One unit up close and the ablation lab: a grey 28x28 image, a unit's mean output per digit, and
test accuracy with units switched off."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from mlpdash.figures.base import (
    BAR_COLOR,
    BOTTOM_LEGEND,
    DIGIT_COLORSCALE,
    ERROR_BAR_COLOR,
    HIGHLIGHT_COLOR,
    _figure,
    _hidden_axis,
    _layout,
)
from mlpdash.mnist import IMAGE_SIDE


UNIT_CHART_HEIGHT = 260
ZOOM_MIN_SPAN = 0.02  # the narrowest per-digit accuracy axis: 2 percentage points
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
                   yaxis=dict(title="accuracy", tickformat=".1%", range=accuracy_zoom([*intact, *ablated])),
                   legend=BOTTOM_LEGEND,
                   margin=dict(l=50, r=20, t=40, b=90))


def accuracy_zoom(values: Sequence[float | None]) -> list[float]:
    """An accuracy axis around the values shown: on 0-100 %, switching a unit off changes a bar by
    0.2 % and no one sees it. At least ZOOM_MIN_SPAN wide, never below 0 or above 100 %."""
    known = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not known:
        return [0.0, 1.05]
    low, high = min(known), max(known)
    pad = max(ZOOM_MIN_SPAN, high - low) * 0.25
    return [max(0.0, low - pad), min(1.0, high + pad)]


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
