"""The test report: the confusion matrix (the mistakes set apart from the diagonal) and each digit's
error rate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from mlpdash.figures.base import ERROR_BAR_COLOR, PLACEHOLDER_COLOR, _figure, _layout, _placeholder

CONFUSION_HEIGHT = 520
CONFUSION_MARGIN = dict(l=50, r=10, t=40, b=110)  # room for the colour bar under the matrix
PER_CLASS_HEIGHT = 340

# The mistakes in reds on a scale that ends at the largest one (at least 1 %), the diagonal apart.
ERROR_COLORSCALE = "Reds"
DIAGONAL_COLOR = "#e3e6ec"
MIN_ERROR_SCALE = 0.01


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
        # Short enough for the matrix in a third of a projector's width ("…of the true digit's
        # images" was cut there); the hover says it whole.
        colorbar=dict(title=dict(text="share of the true digit", side="top"),
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
