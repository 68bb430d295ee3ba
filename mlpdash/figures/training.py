"""The training curves: loss (per epoch, over the smoothed per-batch loss) and accuracy per epoch.

The page re-sends these every second while a run trains, so they keep their `uirevision` (the
user's zoom survives) and their payload small (the per-batch curve is thinned).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from mlpdash.figures.base import (
    BOTTOM_LEGEND,
    EMPTY_LOSS_RANGE,
    MARGIN,
    TRAIN_COLOR,
    VAL_COLOR,
    ZOOM_FROM_ACCURACY,
    _figure,
    _layout,
    _placeholder,
    _zoomed_range,
    log_ticks,
)

BATCH_COLOR = "rgba(99, 110, 250, 0.35)"  # TRAIN_COLOR, faded: the batch curve is context, not the headline
# Until an epoch ends the batch curve is all there is (for minutes at a batch a second, and the whole
# of a run that diverges in its first epoch): drawn as the headline, not as a faint line.
HEADLINE_BATCH_LINE = dict(color=TRAIN_COLOR, width=2)
# Hover notes for the per-epoch points: the training one is a mean over the epoch's batches, which
# is why it sits off the per-batch curve.
EPOCH_POINT_NOTE = {
    "training": "training: mean over the epoch's batches",
    "validation": "validation: whole validation split, end of epoch",
}
LOSS_HEIGHT = 240  # with ACCURACY_HEIGHT: both charts beside the canvas fit a 1024x768 projector
ACCURACY_HEIGHT = 220
# The lowest validation loss is marked once the last epoch's is this much above it (5 %): a network
# memorising its training set, not an epoch's noise.
OVERFIT_RISE = 0.05
# At the figure's foot, under the axis title: on charts this short, placed by the plot's height (the
# shared BOTTOM_LEGEND), a legend wrapped onto three lines on a phone sat over "epoch".
CHART_LEGEND = dict(BOTTOM_LEGEND, yref="container", y=0.0, yanchor="bottom")
# Room under the plot for the tick labels, the axis title and that legend, one line each: with the
# shared 40 px the one-line legend of the loss chart sat over "epoch" at 1440 px.
CHART_MARGIN = dict(MARGIN, b=58)

# The per-batch curve can reach ~40k points over a long run; a browser line of a few thousand points
# looks the same on a ~1000-px-wide chart and keeps the once-a-second payload small.
MAX_BATCH_POINTS = 2000


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


def loss_figure(history: Sequence[Mapping[str, float]], batch_loss: np.ndarray | None = None,
                batches_per_epoch: int = 0, batch_steps: np.ndarray | None = None,
                epochs: float | None = None, note: str | None = None) -> go.Figure:
    """Training and validation loss per epoch, over the smoothed per-batch loss in fractional epochs.

    `epochs` fixes the x axis at 0..epochs: the run's setting while it trains, so the chart shows how
    much of the run is done; for an ended run, as far as it went (fractional when it stopped mid-epoch).
    `note` is what an empty chart says (by default that it waits for the first batch): an ended run's
    says what happened.

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
            line=dict(color=BATCH_COLOR, width=1) if history else HEADLINE_BATCH_LINE,
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
                cliponaxis=False,  # an ended run's last epoch sits on the axis' right edge
                hovertemplate="epoch %{x}<br>loss %{y:.4g}<extra>" + EPOCH_POINT_NOTE[name] + "</extra>",
            ))
    # Cross-entropy falls from ~2.3 to a few hundredths: on a linear axis every epoch after the first
    # would be a flat line at the bottom.
    _layout(
        fig, title="Loss", height=LOSS_HEIGHT, uirevision="loss", margin=CHART_MARGIN,
        # Nothing drawn and no length known: one epoch, not Plotly's empty axis of -1..6.
        xaxis=_epoch_axis(epochs or (None if len(batches) or history else 1)),
        yaxis=dict(title="loss (log scale)", type="log"),
        legend=CHART_LEGEND,
    )
    shown = np.concatenate([np.asarray(v, np.float64) for v in values])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if len(shown):
        low, high = float(shown.min()), float(shown.max())
        ticks = log_ticks(low, high)
        fig.update_layout(yaxis=dict(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]))
        below, above = [t for t in ticks if t <= low], [t for t in ticks if t >= high]
        if len([t for t in ticks if low <= t <= high]) < 2 and below and above:
            # Values closer together than two ticks (one epoch, say) would leave the axis unlabelled:
            # widen it to the ticks on either side.
            span = [math.log10(below[-1]), math.log10(above[0])]
            pad = 0.03 * (span[1] - span[0])
            fig.update_layout(yaxis=dict(range=[span[0] - pad, span[1] + pad]))
    _mark_lowest_validation(fig, history)
    if not len(batches) and not history:
        _placeholder(fig, note or "waiting for the first batch")
        # The log axis the curve will have, over where it starts (ln 10 = 2.3) and where it heads.
        ticks = log_ticks(*EMPTY_LOSS_RANGE)
        fig.update_layout(yaxis=dict(range=[math.log10(v) for v in EMPTY_LOSS_RANGE], tickvals=ticks,
                                     ticktext=[f"{t:g}" for t in ticks]))
    return fig


def _mark_lowest_validation(fig: go.Figure, history: Sequence[Mapping[str, float]]) -> None:
    """Mark the epoch of the lowest validation loss once the loss has risen clearly after it: the
    moment a network starts to memorise, which a log axis would otherwise flatten out of sight."""
    losses = np.array([float(row["val_loss"]) for row in history], np.float64)
    if len(losses) < 3 or not np.isfinite(losses).all() or (losses <= 0).any():
        return
    best = int(np.argmin(losses))
    if best == len(losses) - 1 or losses[-1] < losses[best] * (1 + OVERFIT_RISE):
        return
    epoch = int(history[best]["epoch"])
    fig.add_annotation(
        x=epoch, y=math.log10(losses[best]),  # a log axis places annotations by the log of the value
        text=f"lowest validation loss (epoch {epoch})", showarrow=True, arrowhead=2, ax=0, ay=34,
        font=dict(size=11, color=VAL_COLOR), arrowcolor=VAL_COLOR, bgcolor="rgba(255,255,255,0.8)",
    )


def _epoch_axis(epochs: float | None) -> dict:
    """The x axis over 0..epochs when that is known, else over the epochs so far from 0; whole
    epochs ticked one by one up to 10 (a fraction of one gets Plotly's own ticks)."""
    if epochs:
        return dict(title="epoch", range=[0, epochs], dtick=1 if 2 <= epochs <= 10 else None)
    return dict(title="epoch", rangemode="tozero")


def accuracy_figure(history: Sequence[Mapping[str, float]], epochs: float | None = None,
                    note: str | None = None) -> go.Figure:
    """Training and validation accuracy per epoch, the y axis zoomed in on the values; `epochs` and
    `note` (what an empty chart says instead of waiting for the first epoch) as for `loss_figure`."""
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
        fig, title="Accuracy", height=ACCURACY_HEIGHT, uirevision="accuracy", margin=CHART_MARGIN,
        # Nothing drawn and no length known: one epoch, not Plotly's empty axis of -1..6.
        xaxis=_epoch_axis(epochs or 1) if epochs or not history else dict(
            title="epoch", rangemode="tozero", dtick=1 if len(history) <= 10 else None),
        yaxis=yaxis,
        legend=CHART_LEGEND,
    )
    if not history:
        _placeholder(fig, note or "waiting for the first epoch")
    return fig
