"""Inside a prediction: templates and contributions, the hidden layers' outputs, the map of the last
hidden layer, an attack that changes the model's mind, and a few units' weights.

The explanation view rebuilds several of these on every stroke; they use `_Panels` (one figure, no
make_subplots) and draw the map's 10,000 digits as one image.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from PIL import Image

from mlpdash.explain import Attack, Explanation, HiddenMap
from mlpdash.figures.base import (
    CLASS_COLORS,
    DIGIT_COLORSCALE,
    WEIGHT_COLORSCALE,
    _figure,
    _layout,
    _Panels,
)
from mlpdash.mnist import IMAGE_SIDE, NUM_CLASSES, PIXELS


EXPLANATION_HEIGHT = 560
ACTIVATION_ROW = 50  # units a row in a layer's activation image
MAP_HEIGHT = 460
MAP_RASTER = (640, 440)  # px of the digits' image: about the plot's size on a wide screen
MAP_DOT = 1  # a digit is a (2 * MAP_DOT + 1)-px square
MAP_DOT_ALPHA = 170
UNIT_TILES_HEIGHT = 210
ATTACK_HEIGHT = 230


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
    for digit in range(NUM_CLASSES):  # legend entries only: the digits themselves are in the raster
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
                   showgrid=False, constrain="domain"),
        # The raster's pixels stay square on any screen: stretched into a narrow, tall plot (1024 px) its
        # dots became vertical dashes.
        yaxis=dict(title=f"second ({second:.0%})", range=[y0, y1], zeroline=False, showgrid=False,
                   scaleanchor="x", scaleratio=map_scale_ratio(raster), constrain="domain"),
        legend=dict(title="digit", itemsizing="constant"),
    )


def map_scale_ratio(raster: MapRaster) -> float:
    """Screen px per unit of the map's y axis over px per unit of x that keeps the raster's pixels square."""
    width, height = MAP_RASTER
    (x0, x1), (y0, y1) = raster.xs, raster.ys
    return (height * (x1 - x0)) / (width * (y1 - y0))


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
    colours = np.array([_rgba(c) for c in CLASS_COLORS], np.uint8)[np.asarray(labels, np.int64) % NUM_CLASSES]
    for dr in range(-MAP_DOT, MAP_DOT + 1):
        for dc in range(-MAP_DOT, MAP_DOT + 1):
            image[np.clip(rows + dr, 0, height - 1), np.clip(cols + dc, 0, width - 1)] = colours
    buffer = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rgba(colour: str) -> tuple[int, int, int, int]:
    red, green, blue = pcolors.hex_to_rgb(colour) if colour.startswith("#") else pcolors.unlabel_rgb(colour)
    return int(red), int(green), int(blue), MAP_DOT_ALPHA


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
    return _layout(grid.figure(), title=f"Their weights (colour range ±{r:.3g})", height=UNIT_TILES_HEIGHT,
                   uirevision="unit-tiles", margin=dict(l=5, r=5, t=95, b=5))


def _symmetric(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0
