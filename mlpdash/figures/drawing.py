"""Drawing and prediction: the model's probabilities, the 28x28 input it saw, and how a drawing was
prepared into that input.

These are rebuilt on every stroke, so they stay small: the preparation's panels are shrunk before
they are sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from mlpdash.figures.base import (
    BAR_COLOR,
    DIGIT_COLORSCALE,
    HIGHLIGHT_COLOR,
    MUTED_BAR_COLOR,
    _figure,
    _hidden_axis,
    _layout,
    _Panels,
    _placeholder,
)
from mlpdash.mnist import IMAGE_SIDE, NUM_CLASSES, PIXELS
from mlpdash.preprocess import STROKE_RANGE, THICKEN_TO, THIN_TO, Preparation

PROBABILITIES_HEIGHT = 190
DIGIT_SIZE = 140
PREPARATION_HEIGHT = 200
# A step's image is shown at most this many px a side: the panels are small, and a whole 280-px crop
# would send 78k numbers a stroke.
PREPARATION_SIDE = 84


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
