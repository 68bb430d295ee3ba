"""Drawing and prediction: the model's probabilities, the 28x28 input it saw, and how a drawing was
prepared into that input.

These are rebuilt on every stroke, so they stay small: the preparation's steps are pictures (images
for `st.image`), not a Plotly figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    _placeholder,
)
from mlpdash import mnist
from mlpdash.mnist import IMAGE_SIDE, MAX_PIXEL, NUM_CLASSES, PIXELS
from mlpdash.preprocess import STROKE_RANGE, THICKEN_TO, THIN_TO, Preparation

PROBABILITIES_HEIGHT = 190
DIGIT_SIZE = 140
# A picture's side in px, as the page shows it: four steps and the naive input fit a 1024-px
# screen's column side by side, and a 28x28 digit is enlarged 4 times, pixel by pixel.
PICTURE_SIDE = 112
# Around a picture that does not fill its square: a mid grey, apart from both the white ink and the
# black ground, so that a box of ink only (a thick 1's crop) still shows its edges on the white page.
SLOT_GREY = 200
# Over `preparation_pictures` wherever they are shown (under the canvas, in Inside a prediction).
PREPARATION_TITLE = "How the drawing was prepared (stroke widths in 28×28 px)"


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


@dataclass(frozen=True, eq=False)  # an array field: equality would be ambiguous
class Picture:
    """A grey image for the page as it is (uint8, ink white on black) and its caption (plain text)."""

    image: np.ndarray
    caption: str


def picture(image: np.ndarray, caption: str, side: int = PICTURE_SIDE) -> Picture:
    """`image` (floats in [0, 1], or integers 0-255 as MNIST stores them) centred on a `side`-px
    square: a small image is enlarged a whole number of times, pixel by pixel, and stays sharp; a
    larger one is averaged down to fill it."""
    array = np.asarray(image)
    if array.ndim != 2 or not array.size:
        raise ValueError(f"expected a 2-D image, got shape {array.shape}")
    grey = Image.fromarray(mnist.pixels(array / MAX_PIXEL if np.issubdtype(array.dtype, np.integer) else array), "L")
    height, width = array.shape
    longer = max(height, width)
    if longer <= side:  # enlarged a whole number of times: every pixel the same size
        factor = side // longer
        size, resample = (width * factor, height * factor), Image.Resampling.NEAREST
    else:
        size = (max(1, round(width * side / longer)), max(1, round(height * side / longer)))
        resample = Image.Resampling.BOX
    # Centred on a square: pictures of any shape then take one slot each and their captions line
    # up, as panels of one figure did.
    square = Image.new("L", (side, side), SLOT_GREY)
    square.paste(grey.resize(size, resample), ((side - size[0]) // 2, (side - size[1]) // 2))
    return Picture(np.asarray(square), caption)


def preparation_pictures(steps: Preparation, naive: tuple[np.ndarray, int] | None = None,
                         side: int = PICTURE_SIDE) -> list[Picture]:
    """How a drawing became the model's input: the ink as drawn, its stroke made MNIST-like (or
    kept), scaled to a 20-px box, and centred in 28x28 (see `preprocess.prepare`); with `naive`
    (the whole canvas shrunk to 28x28, and the model's answer for it) a last picture shows what the
    model would have been given without that. Each is a `side`-px square.

    Pictures, not a Plotly figure: they change on every stroke, and Streamlit mounts a new plot for
    every chart that changed and plots it twice, while a picture is one image for the browser."""
    height, width = steps.crop.shape
    shown = [
        picture(steps.crop, f"drawn: the ink's box, {width}×{height} px", side),
        picture(steps.adjusted, _stroke_caption(steps), side),
        picture(steps.fitted, "scaled: longer side 20 px", side),
        picture(steps.digit, "centred in 28×28: the model's input", side),
    ]
    if naive is not None:
        shown.append(picture(naive[0], f"the whole canvas shrunk: read as {naive[1]}", side))
    return shown


def _stroke_caption(steps: Preparation) -> str:
    width = steps.stroke_in_digit
    stroke = f"stroke {width:.1f} px"
    if steps.stroke_change < 0:
        return f"{stroke}: thinned to about {THIN_TO:g}"
    if steps.stroke_change > 0:
        return f"{stroke}: thickened to about {THICKEN_TO:g}"
    if steps.dab:
        return "a dot or a dab, not a stroke: as drawn"
    if STROKE_RANGE[0] <= width <= STROKE_RANGE[1]:
        return f"{stroke}: as MNIST's, kept"
    return f"{stroke}: kept as drawn"  # too little ink to thicken, or a change under 1 px
