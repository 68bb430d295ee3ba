"""Weights over time: each layer's weight distribution, each digit's accuracy, one input's answers
and one unit's weight norm over the kept epochs, each with a dotted line at the chosen epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go

from mlpdash.figures.base import CLASS_COLORS, TRAIN_COLOR, _figure, _layout, _Panels
from mlpdash.mnist import NUM_CLASSES


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
