"""A grid of many digits as one clickable image: the mistakes, a unit's favourite digits, the data's
samples and a set of drawings all use it."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from mlpdash.figures.base import ASSUMED_FIGURE_WIDTH, GRID_MAX_HEIGHT, _figure, _hidden_axis, _layout, _plain
from mlpdash.mnist import IMAGE_SIDE


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
        # All at once: one add_annotation a caption validated the whole layout again (40 captions: 0.3 s).
        fig.update_layout(annotations=[
            dict(x=(k % columns) * pitch - 0.5, y=(k // columns) * pitch - 0.5, text=text, showarrow=False,
                 xanchor="left", yanchor="top", font=dict(size=9, color="white"), bgcolor="rgba(60,60,60,0.7)",
                 borderpad=1) for k, text in enumerate(short)])
    return _layout(fig, title=title, height=fig_height, uirevision=f"digits-{columns}",
                   margin=dict(l=5, r=5, t=40, b=5),
                   xaxis=dict(range=[-0.5, width - 0.5], constrain="domain", **_hidden_axis()),
                   # In a column narrower than the height assumes, the grid hugs the title: the
                   # space left over is below it, not split above and below.
                   yaxis=dict(range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain",
                              constraintoward="top", **_hidden_axis()))
