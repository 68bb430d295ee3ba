"""The first layer's weights: every unit as a 28x28 tile in one palette PNG, and one unit large.

The grid is the heaviest figure the page sends (700 units are 550k weights), hence the one-byte-a-
pixel PNG and the invisible hover markers instead of a heatmap.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
from PIL import Image

from mlpdash.figures.base import (
    ASSUMED_FIGURE_WIDTH,
    GRID_MAX_HEIGHT,
    HIGHLIGHT_COLOR,
    TIGHT_MARGIN,
    WEIGHT_COLORSCALE,
    _figure,
    _hidden_axis,
    _layout,
)
from mlpdash.mnist import IMAGE_SIDE, PIXELS

UNIT_HEIGHT = 420

# 255 levels (odd) put an exact level at zero of WEIGHT_COLORSCALE; together with the gap colour
# they fill a 256-entry PNG palette, which keeps the encoded grid at one byte per weight.
WEIGHT_LEVELS = 255
GAP_INDEX = WEIGHT_LEVELS  # palette slot of the gaps between tiles (and of non-finite weights)
GAP_RGB = (190, 190, 190)  # mid grey: distinct from the near-white of a zero weight
# A few large weights would otherwise squeeze everything else into the pale middle of the scale.
ROBUST_PERCENTILE = 99.5
TILE_GAP = 1
MAX_LABELLED_TILES = 20
# Grid pixels (of a 28-px tile) left free above each row of labelled tiles for their labels: written
# over a tile's corner, "epoch 12" hid the weights under it.
LABEL_BAND = 8
# Wider than tall suits a wide dashboard: 700 units -> 37 x 19 tiles, 10 units -> 5 x 2.
GRID_ASPECT = 2.0
COLORBAR_ALLOWANCE = 80  # px of ASSUMED_FIGURE_WIDTH the colour bar takes from the grid
GRID_MIN_HEIGHT = 240


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


def with_label_bands(grid: np.ndarray, rows: int, band: int) -> np.ndarray:
    """`grid` (from `tile_grid`, `rows` rows of tiles) with `band` pixel rows above each row of tiles,
    for their labels; unchanged for a band of 0. A band is 0.0, drawn in the near-white of a zero
    weight (the gap's grey read as a bar over the tiles), but for its last row: a gap line, the
    tiles' top edge."""
    if band <= 0:
        return grid
    pitch = IMAGE_SIDE + TILE_GAP
    spaced = np.full((rows * (pitch + band) - TILE_GAP, grid.shape[1]), np.nan, np.float32)
    for row in range(rows):
        top = row * (pitch + band) + band
        spaced[top - band:top - TILE_GAP] = 0.0
        spaced[top:top + pitch - TILE_GAP] = grid[row * pitch:row * pitch + IMAGE_SIDE]
    return spaced


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
    `labels` are also written above the tiles, in a band of their own, when there are at most
    MAX_LABELLED_TILES of them (the ten digit templates of the linear model, a unit's epochs).
    """
    kernel = _check_kernel(kernel)
    units = kernel.shape[1]
    r = _checked_range(value_range, kernel)
    grid, rows, columns = tile_grid(kernel, columns)
    labelled = labels is not None and units <= MAX_LABELLED_TILES
    band = LABEL_BAND if labelled else 0
    grid = with_label_bands(grid, rows, band)
    source = "data:image/png;base64," + base64.b64encode(grid_png(grid, r)).decode("ascii")
    grid_height, grid_width = grid.shape

    plot_width = ASSUMED_FIGURE_WIDTH - TIGHT_MARGIN["l"] - TIGHT_MARGIN["r"] - COLORBAR_ALLOWANCE
    scale = plot_width / grid_width  # screen px per weight if the grid fills the width
    height = int(np.clip(grid_height * scale + TIGHT_MARGIN["t"] + TIGHT_MARGIN["b"],
                         GRID_MIN_HEIGHT, GRID_MAX_HEIGHT))
    scale = min(scale, (height - TIGHT_MARGIN["t"] - TIGHT_MARGIN["b"]) / grid_height)

    pitch = IMAGE_SIDE + TILE_GAP
    row_pitch = pitch + band  # a row of tiles, its gap and the label band above the next row
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
        x=(slot % columns) * pitch + centre, y=(slot // columns) * row_pitch + band + centre,
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
        x0, y0 = (i % columns) * pitch - 0.5, (i // columns) * row_pitch + band - 0.5
        fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x0 + IMAGE_SIDE + 0.5, y1=y0 + IMAGE_SIDE + 0.5,
                      line=dict(color=HIGHLIGHT_COLOR, width=3))
    if labelled:
        for i, name in enumerate(names):
            fig.add_annotation(x=(i % columns) * pitch - 0.5, y=(i // columns) * row_pitch + band - 0.5,
                               text=name, showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11))
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
