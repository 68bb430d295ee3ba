"""Canvas-like drawings made from real MNIST digits, for testing the preprocessing.

A digit drawn on the dashboard's canvas differs from an MNIST digit in size,
position, stroke width and colour scheme, but not in shape.  Re-drawing real
MNIST digits with those differences gives test drawings whose "right answer" is
known: normalising them should give back (nearly) the original digit.

Each digit is cropped to its ink, enlarged with a smooth filter, cut to crisp
pen-like edges with a narrow anti-aliased rim, made thinner or thicker by
erosion/dilation, and placed on a canvas in one of the colour schemes a user or
a canvas widget produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SCHEMES = ("grey", "rgb_dark_on_white", "rgba_opaque_black", "rgba_transparent")
"""grey white-on-black (H, W); RGB dark ink on white; RGBA white ink on an opaque
black background (the canvas widget with background "#000000"); RGBA coloured ink
on a transparent background (ink in alpha)."""

CANVAS_SIDE = 280

BOX_FRACTION_RANGE = (0.15, 0.9)
"""Longer side of the digit as a fraction of the canvas side."""

STROKE_RANGE = (-0.5, 1.0)
"""Pen-width change per side, in MNIST pixels: negative thins, positive thickens.

MNIST strokes are about 2-3 px wide on a 20 px digit, so this spans roughly a
1.5 px hairline to a 4.5 px marker.
"""

CORNER_PROBABILITY = 0.25
"""Share of drawings pushed into a canvas corner instead of placed anywhere."""

EDGE_LEVEL = 0.5
"""Grey level of the enlarged MNIST digit taken as the stroke's edge."""

EDGE_SOFTNESS = 0.08
"""Grey-level span of the anti-aliased rim; small, so edges look drawn, not blurred."""

MIN_KEPT_INK = 0.35
"""Thinning stops before less than this share of the original ink would remain."""

DARK_INK_MAX = 90
"""Upper bound of each RGB channel of the dark pen on white paper."""


@dataclass(frozen=True)
class DrawingStyle:
    """How one digit is drawn on the canvas."""

    box_fraction: float
    position: tuple[float, float]  # (row, col) of the digit within the free space, 0..1
    stroke: float  # per-side width change in MNIST pixels
    scheme: str
    ink_colour: tuple[int, int, int]


def make_canvas_drawings(
    images: np.ndarray, seed: int, canvas: int = CANVAS_SIDE
) -> list[np.ndarray]:
    """Draw every (28, 28) uint8 digit in ``images`` on its own canvas.

    Styles are drawn at random from ``seed`` (deterministic) and the colour
    schemes take turns, so any four consecutive drawings cover all of them.
    """
    rng = np.random.default_rng(seed)
    drawings = []
    for index, digit in enumerate(images):
        style = random_style(rng, SCHEMES[index % len(SCHEMES)])
        drawings.append(draw_digit(digit, style, canvas))
    return drawings


def random_style(rng: np.random.Generator, scheme: str) -> DrawingStyle:
    """A random size, position, stroke width and ink colour for ``scheme``."""
    box_fraction = float(rng.uniform(*BOX_FRACTION_RANGE))
    if rng.random() < CORNER_PROBABILITY:
        position = (float(rng.integers(0, 2)), float(rng.integers(0, 2)))
    else:
        position = (float(rng.random()), float(rng.random()))
    stroke = float(rng.uniform(*STROKE_RANGE))
    return DrawingStyle(box_fraction, position, stroke, scheme, _ink_colour(rng, scheme))


def draw_digit(digit: np.ndarray, style: DrawingStyle, canvas: int = CANVAS_SIDE) -> np.ndarray:
    """Draw one (28, 28) uint8 MNIST digit on a ``canvas`` x ``canvas`` image."""
    strokes = _pen_strokes(digit, style, canvas)
    ink = _place(strokes, style.position, canvas)
    return _render(ink, style.scheme, style.ink_colour)


def _ink_colour(rng: np.random.Generator, scheme: str) -> tuple[int, int, int]:
    if scheme == "rgb_dark_on_white":
        return tuple(int(v) for v in rng.integers(0, DARK_INK_MAX + 1, size=3))
    if scheme == "rgba_transparent":
        return tuple(int(v) for v in rng.integers(0, 256, size=3))
    return (255, 255, 255)


def _pen_strokes(digit: np.ndarray, style: DrawingStyle, canvas: int) -> np.ndarray:
    """The digit enlarged to its canvas size with pen-like strokes, float in [0, 1]."""
    rows = np.flatnonzero(digit.any(axis=1))
    cols = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32) / 255.0
    scale = style.box_fraction * canvas / max(crop.shape)
    radius = round(abs(style.stroke) * scale)
    # A 2 px margin leaves room for the strokes to grow and for the smooth
    # filter's overshoot at the crop's edge.
    padded = np.pad(crop, 2)
    size = (max(1, round(padded.shape[1] * scale)), max(1, round(padded.shape[0] * scale)))
    big = Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC)
    smooth = np.asarray(big, dtype=np.float32)
    pen = np.clip((smooth - EDGE_LEVEL) / EDGE_SOFTNESS + 0.5, 0.0, 1.0)
    pen = _change_width(pen, radius if style.stroke >= 0 else -radius)
    return _trim(pen)


def _change_width(pen: np.ndarray, radius: int) -> np.ndarray:
    """Dilate (radius > 0) or erode (radius < 0) by |radius| px; thinning stops
    early rather than break the digit apart."""
    image = Image.fromarray((pen * 255).astype(np.uint8))
    grow = radius > 0
    step = ImageFilter.MaxFilter(3) if grow else ImageFilter.MinFilter(3)
    original_ink = float(pen.sum())
    for _ in range(abs(radius)):
        candidate = image.filter(step)
        if not grow and np.asarray(candidate).sum() / 255.0 < MIN_KEPT_INK * original_ink:
            break
        image = candidate
    return np.asarray(image, dtype=np.float32) / 255.0


def _trim(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        raise ValueError("the digit has no stroke above half intensity to draw")
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _place(strokes: np.ndarray, position: tuple[float, float], canvas: int) -> np.ndarray:
    """Put the strokes on an empty canvas; shrink first if dilation outgrew it."""
    if max(strokes.shape) > canvas:
        factor = canvas / max(strokes.shape)
        size = (max(1, int(strokes.shape[1] * factor)), max(1, int(strokes.shape[0] * factor)))
        strokes = np.asarray(Image.fromarray(strokes).resize(size, Image.Resampling.BOX))
    height, width = strokes.shape
    top = round(position[0] * (canvas - height))
    left = round(position[1] * (canvas - width))
    ink = np.zeros((canvas, canvas), dtype=np.float32)
    ink[top : top + height, left : left + width] = strokes
    return ink


def _render(ink: np.ndarray, scheme: str, colour: tuple[int, int, int]) -> np.ndarray:
    """Turn an ink coverage map into the uint8 image of the given colour scheme."""
    colour_arr = np.asarray(colour, dtype=np.float32)
    cover = ink[:, :, np.newaxis]
    if scheme == "grey":
        return np.round(ink * 255).astype(np.uint8)
    if scheme == "rgb_dark_on_white":
        rgb = 255.0 * (1.0 - cover) + colour_arr * cover
        return np.round(rgb).astype(np.uint8)
    if scheme == "rgba_opaque_black":
        rgb = np.round(colour_arr * cover).astype(np.uint8)
        alpha = np.full(ink.shape + (1,), 255, dtype=np.uint8)
        return np.concatenate([rgb, alpha], axis=2)
    if scheme == "rgba_transparent":
        # A browser canvas keeps the pen colour on anti-aliased rims and puts the
        # coverage in alpha; untouched pixels are transparent black.
        rgb = np.where(cover > 0, colour_arr, 0.0).astype(np.uint8)
        rgb = np.broadcast_to(rgb, ink.shape + (3,))
        alpha = np.round(ink * 255).astype(np.uint8)[:, :, np.newaxis]
        return np.concatenate([rgb, alpha], axis=2)
    raise ValueError(f"unknown colour scheme {scheme!r}; expected one of {SCHEMES}")


PEN_PATHS: dict[int, list[list[tuple[float, float]]]] = {
    1: [[(0.55, 0.0), (0.5, 1.0)]],
    7: [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
    4: [[(0.6, 0.0), (0.0, 0.65), (1.0, 0.65)], [(0.75, 0.3), (0.75, 1.0)]],
    2: [[(0.05, 0.25), (0.3, 0.0), (0.75, 0.0), (0.95, 0.25), (0.9, 0.45), (0.0, 1.0), (1.0, 1.0)]],
    0: [[(0.5, 0.0), (0.95, 0.2), (1.0, 0.6), (0.8, 0.95), (0.4, 1.0), (0.05, 0.75), (0.0, 0.3),
         (0.2, 0.05), (0.5, 0.0)]],
    3: [[(0.0, 0.05), (0.8, 0.0), (0.9, 0.25), (0.35, 0.5), (0.95, 0.7), (0.8, 1.0), (0.0, 0.95)]],
    5: [[(1.0, 0.0), (0.15, 0.0), (0.05, 0.45), (0.7, 0.4), (1.0, 0.7), (0.7, 1.0), (0.0, 0.95)]],
    6: [[(0.8, 0.0), (0.2, 0.4), (0.0, 0.8), (0.3, 1.0), (0.8, 0.9), (0.8, 0.6), (0.3, 0.55), (0.05, 0.75)]],
    9: [[(0.95, 0.15), (0.6, 0.0), (0.1, 0.1), (0.1, 0.4), (0.6, 0.45), (0.95, 0.15), (0.85, 1.0)]],
}
"""Nine digits as pen paths in a unit box (x right, y down), for drawings made as the canvas makes
them: a round brush of a chosen width along a path."""


def pen_digit(digit: int, height: int, brush: int, canvas: int = CANVAS_SIDE) -> np.ndarray:
    """`digit` drawn with a round brush `brush` px wide, `height` px tall in all (the brush
    included), centred on a transparent RGBA canvas in white: what the dashboard's canvas sends."""
    image = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    span = max(1, height - brush)  # the path's extent: the brush adds half its width at each end
    width = span * (0.15 if digit == 1 else 0.6)
    top, left = (canvas - span) / 2, (canvas - width) / 2
    for path in PEN_PATHS[digit]:
        points = [(left + x * width, top + y * span) for x, y in path]
        pen.line(points, fill=(255, 255, 255, 255), width=brush, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2), fill=(255, 255, 255, 255))
    return np.asarray(image)
