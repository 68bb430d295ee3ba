"""Turn a free-hand drawing into a digit normalised the way MNIST digits were.

MNIST digits were made by cropping each handwritten digit to its ink, scaling the
longer side of that box to 20 px with anti-aliasing (aspect ratio kept), and
pasting the result into a 28x28 field so that the ink's centre of mass sits at
the field's centre.  A classifier trained on MNIST has only ever seen digits in
that frame, so a drawing from a canvas of any size has to be brought into it,
otherwise a small digit in a corner looks like nothing the model knows.

MNIST strokes are also of a kind: about 2.5 px wide in the 28x28 field, rarely over 4 px.
A small digit drawn with a broad brush would shrink less than its stroke needs to and
reach the model as a fat blob (a small 1 read as an 8), so a stroke outside MNIST's
range is thinned or thickened into it before the scaling (`prepare` says by how
much, and keeps every step for the page to show).

The drawing may come in any of the usual colour schemes -- grey or RGB, light ink
on dark or dark ink on light, or RGBA with the ink in the alpha channel on a
transparent background (what a drawing canvas widget returns) -- because the
background is read from the image itself rather than assumed.

Only numpy and Pillow are used, so this module can run inside a web app without
pulling in TensorFlow.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mlpdash.mnist import IMAGE_SIDE

MNIST_SIDE = IMAGE_SIDE
"""Side of the output image in pixels."""

DIGIT_BOX = 20
"""Longer side of the ink's bounding box after scaling, as in MNIST."""

MNIST_CENTRE = 14.0
"""Target centre of mass in pixel-index coordinates; MNIST digits average 14.0 in both axes."""

MIN_CONTRAST = 0.2
"""Strongest ink (fraction of full scale) below which the drawing counts as blank.

A canvas with only faint speckle or a barely visible smudge is not a digit, and
stretching such noise to full contrast would invent one.
"""

INK_THRESHOLD = 0.2
"""Normalised ink below which a pixel is treated as background.

Anti-alias fringes and stray near-background pixels would otherwise widen the
bounding box and drag the centre of mass; MNIST itself was cut from bilevel
scans, so dropping faint values loses nothing a model relies on.
"""

RESAMPLE = Image.Resampling.BILINEAR
"""Pillow's bilinear resize averages over the whole footprint when shrinking, giving
the soft anti-aliased rims of MNIST digits (it matched real MNIST digits slightly
better than box, bicubic or Lanczos filters), and does not look blocky when a tiny
drawing has to grow."""

TRANSPARENT_ALPHA = 128
"""Background alpha below which the ink is read from the alpha channel."""

ALPHA_CHANNEL_COUNTS = (2, 4)
"""Channel counts whose last channel is alpha (grey+alpha, RGBA)."""

MAX_CHANNELS = 4

FULL_SCALE = 255
"""Full scale of a uint8 channel: fully opaque, fully inked."""

STROKE_RANGE = (1.85, 4.0)
"""Stroke widths in the 28x28 field (px) left as drawn: MNIST's from its 10th to its 95th percentile
(`stroke_width` of 1,000 test digits enlarged tenfold, divided by ten: median 2.5 px)."""

THIN_TO = 4.0
"""A stroke wider than the range is thinned to this width: to MNIST's thickest rather than its
median, because thinning a small blobby drawing further erodes its loops and joins away (chosen on
300 small thick-pen drawings of MNIST test digits read by a 3-epoch model: 63 % right thinned to
4 px, 50 % to 2.5 px, 32 % left as drawn; tests/test_full_mnist.py measures the default model)."""

THICKEN_TO = 3.0
"""A stroke thinner than the range is thickened to this width (chosen likewise on 300 large hairline
drawings: 96 % right, 94 % at 2.5 px, 88 % left as drawn)."""

STROKE_INK = 0.5
"""Ink level taken as the stroke's edge when its width is measured."""

STROKE_WORK_SIDE = 200
"""Longer side (px) a crop is resized to before its stroke is measured or changed."""

DAB_LENGTH = 1.5
"""Ink whose longer side is under this many stroke widths is a dot or a dab, left as drawn. (The
width fit reads a disc about 30 % narrower than it is; a small 1 drawn with a broad brush, a pill
over 1.5 times as long as wide, is still a stroke.)"""


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_RGBA8 = (8, 6)
"""IHDR bit depth and colour type of an 8-bit RGBA PNG, what a canvas exports."""


def canvas_png(png: bytes, width: int, height: int) -> np.ndarray:
    """A drawing canvas's PNG export as uint8 (height, width, 4), refusing anything else.

    The canvas is a browser widget, so its image arrives from the network: only an 8-bit RGBA PNG of
    exactly the canvas's own size is accepted, checked from the header before any pixel is decoded
    (an 8000x8000 image would otherwise cost hundreds of MB per stroke). ValueError says why not.
    """
    if not isinstance(png, (bytes, bytearray)) or not png.startswith(PNG_SIGNATURE) or len(png) < 33:
        raise ValueError("the canvas did not send a PNG image")
    # A PNG's first chunk must be IHDR: bytes 12-15 name it, 16-25 hold width, height, bit depth
    # and colour type.
    if png[12:16] != b"IHDR":
        raise ValueError("the canvas image has no PNG header")
    found_width, found_height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    if (found_width, found_height) != (width, height):
        raise ValueError(f"the canvas image is {found_width}x{found_height} px, not the canvas's {width}x{height}")
    if (png[24], png[25]) != PNG_RGBA8:
        raise ValueError(f"the canvas image is not 8-bit RGBA (bit depth {png[24]}, colour type {png[25]})")
    try:
        with Image.open(io.BytesIO(png)) as image:
            # Pillow reads the header again (a second IHDR wins): check what it will decode, before
            # it decodes a pixel.
            if image.size != (width, height) or image.mode != "RGBA":
                raise ValueError(f"the canvas image is {image.size[0]}x{image.size[1]} {image.mode}, "
                                 f"not the canvas's {width}x{height} RGBA")
            image.load()
            pixels = np.asarray(image)
    except Image.DecompressionBombError as err:
        raise ValueError(f"the canvas image is far too large ({err})") from None
    except (OSError, SyntaxError) as err:
        raise ValueError(f"the canvas image cannot be decoded ({err})") from None
    if pixels.shape != (height, width, 4) or pixels.dtype != np.uint8:
        raise ValueError(f"the canvas image decodes to {pixels.dtype} {pixels.shape}, not uint8 RGBA")
    return pixels


@dataclass(frozen=True)
class Preparation:
    """Every step from a drawing to the model's input, for showing how a drawing was read.

    `box` is the ink's bounding box on the canvas (top, bottom, left, right), `canvas_shape` the
    canvas's (height, width); `crop` the ink in it
    (float32, 0-1); `stroke` the stroke width measured there (canvas px; NaN for no ink); `dab`
    whether it is a dot or a dab rather than a stroke (see `is_dab`);
    `stroke_change` the px per side the stroke was thickened (> 0) or thinned (< 0) by (in the crop
    resized to STROKE_WORK_SIDE), 0 when it was left as drawn; `adjusted` the crop after that
    (resized, when it was changed); `fitted` the ink scaled so that its longer
    side is 20 px; `digit` the 28x28 input with the ink's centre of mass at the centre.
    """

    box: tuple[int, int, int, int]
    canvas_shape: tuple[int, int]
    crop: np.ndarray
    stroke: float
    dab: bool
    stroke_change: int
    adjusted: np.ndarray
    fitted: np.ndarray
    digit: np.ndarray

    def naive(self) -> np.ndarray:
        """The whole canvas shrunk to 28x28 as it is, without cropping, scaling or centring: what a
        model would see without MNIST's normalisation (float32, 0-1)."""
        canvas = np.zeros(self.canvas_shape, np.float32)
        top, bottom, left, right = self.box
        canvas[top:bottom, left:right] = self.crop
        small = Image.fromarray(canvas).resize((MNIST_SIDE, MNIST_SIDE), RESAMPLE)
        return np.clip(np.asarray(small, np.float32), 0.0, 1.0)

    @property
    def stroke_in_digit(self) -> float:
        """The stroke width the 28x28 digit would have had without the adjustment (px)."""
        return self.stroke * DIGIT_BOX / max(self.crop.shape)


def canvas_to_mnist(image: np.ndarray) -> np.ndarray | None:
    """Normalise a drawing into an MNIST-style digit.

    Args:
        image: uint8 (or bool) array, (H, W) grey, (H, W, 1|2|3|4) grey, grey+alpha,
            RGB or RGBA, in any colour scheme (see :func:`ink_map`).

    Returns:
        (28, 28) float32 array in [0, 1] with the ink bright on a zero background,
        the stroke about as wide as MNIST's, the ink scaled so its longer side is 20 px
        and its centre of mass at (14, 14); or ``None`` when the drawing is blank
        ("no digit").

    Raises:
        ValueError: if ``image`` is not an array this function can read.
    """
    steps = prepare(image)
    return None if steps is None else steps.digit


def prepare(image: np.ndarray) -> Preparation | None:
    """`canvas_to_mnist` with every step kept; None for a blank drawing."""
    contrast = _contrast(_validated_pixels(image))
    peak = _peak(contrast)
    if peak is None:
        return None
    box = _ink_bbox(contrast >= np.ceil(INK_THRESHOLD * peak))
    top, bottom, left, right = box
    # Convert only the crop to float: a big canvas is mostly empty background.
    crop = contrast[top:bottom, left:right].astype(np.float32) * np.float32(1.0 / peak)
    crop[crop < INK_THRESHOLD] = 0.0
    # The stroke is measured and changed in steps of one pixel, at one working size: a small crop is
    # enlarged, so that a step is a small part of a stroke (MNIST's range was measured the same way),
    # and a large one (a photo through the CLI) reduced, so that the work stays bounded.
    zoom = STROKE_WORK_SIDE / max(crop.shape)
    work = _resized(crop, zoom)
    thinner = _erosions(work)
    stroke = _width_from_erosions(thinner) / zoom
    dab = is_dab(work, stroke * zoom)
    change = _stroke_change(stroke * zoom, max(work.shape), int(np.count_nonzero(work >= STROKE_INK)), dab)
    if change < 0:
        adjusted = _cropped(thinner[-change])
    elif change > 0:
        adjusted = _cropped(_dilated(work, change))
    else:
        adjusted = crop
    fitted = _scale_to_box(adjusted)
    return Preparation(box, contrast.shape, crop, stroke, dab, change, adjusted, fitted, _paste_centred(fitted))


def stroke_width(ink: np.ndarray) -> float:
    """The width of the strokes in an ink image (float 0-1, or bool), in px; NaN when there is no ink."""
    return _width_from_erosions(_erosions(np.asarray(ink, np.float32)))


def _erosions(ink: np.ndarray) -> list[np.ndarray]:
    """The ink, then thinned by 1, 2, ... px per side, until no stroke is left.

    The number of steps a pixel survives is its distance to the background (an octagonal distance
    transform), so the series gives both the stroke width and every thinner version of the drawing.
    It ends within half the image's shorter side."""
    series = [ink]
    step = 0
    while (series[-1] >= STROKE_INK).any():
        series.append(_pen_step(series[-1], grow=False, square=step % 2 == 0))
        step += 1
    return series


def _width_from_erosions(series: list[np.ndarray]) -> float:
    """Stroke width from the ink left after each thinning step.

    A pen of width w drawn along a path of length L covers A(w) = wL + (pi/4)w^2 (its round ends
    included), whatever the path's shape, and each step thins it by 2 px: A_k = A(w - 2k). The w (and
    L) that fit the measured areas best is the width. Fitting the whole series, not the first area
    alone, is what keeps a short stroke (a small 1, nearly all round ends) from reading thin."""
    areas = np.array([np.count_nonzero(ink >= STROKE_INK) for ink in series], np.float64)
    if areas[0] == 0:
        return math.nan
    steps = np.arange(len(areas), dtype=np.float64)
    best, best_error = math.nan, math.inf
    for width in np.arange(1.0, 2.0 * len(areas) + 2.0, 0.25):
        left = np.clip(width - 2 * steps, 0.0, None)  # the width after each step
        caps = math.pi / 4 * left**2
        # For a given width the areas are linear in L: its least-squares value in closed form.
        length = max(0.0, float(left @ (areas - caps)) / max(float(left @ left), 1e-9))
        error = float(np.sum((left * length + caps - areas) ** 2))
        if error < best_error:
            best, best_error = float(width), error
    return best


def is_dab(ink: np.ndarray, stroke: float) -> bool:
    """True for a dot or a dab rather than a stroke: ink hardly longer than its stroke is wide.
    Nothing stroke-like to change. (Blobs whose loops a broad brush closed are still thinned:
    measured on small thick-pen drawings, that reads 0.50 of them right against 0.38.)"""
    return not math.isfinite(stroke) or max(ink.shape) < DAB_LENGTH * stroke


def _stroke_change(stroke: float, longer_side: int, ink_area: int, dab: bool) -> int:
    """Px per side to thicken (> 0) or thin (< 0) a stroke of width `stroke` in an ink box of
    `longer_side` px so that, once the box is scaled to 20 px, it is about THIN_TO or THICKEN_TO wide.

    Thinning a stroke by d per side shortens the box by 2d too, so the target is solved for with the
    stroke's own extent fixed: the path spans `longer_side - stroke`, and a width w over it scales to
    w * 20 / (extent + w) px. A stroke is never thinned below 1 px; ink too scant to span its box with
    a 1-px line (stray specks) is not thickened."""
    if dab:
        return 0
    low, high = STROKE_RANGE
    if low <= stroke * DIGIT_BOX / longer_side <= high:
        return 0
    thin = stroke * DIGIT_BOX / longer_side < low
    if thin and ink_area < longer_side:
        return 0
    extent = longer_side - stroke
    goal = THICKEN_TO if thin else THIN_TO
    target = max(1.0, goal * extent / (DIGIT_BOX - goal))
    change = int(round((target - stroke) / 2))
    return max(change, -int((stroke - 1) // 2))


def _resized(ink: np.ndarray, zoom: float) -> np.ndarray:
    size = (max(1, round(ink.shape[1] * zoom)), max(1, round(ink.shape[0] * zoom)))
    return np.asarray(Image.fromarray(ink).resize(size, RESAMPLE), np.float32)


def _dilated(ink: np.ndarray, change: int) -> np.ndarray:
    """The ink thickened by `change` px per side (room made for it at the border)."""
    out = np.pad(ink, change)
    for step in range(change):
        out = _pen_step(out, grow=True, square=step % 2 == 0)
    return out


def _cropped(ink: np.ndarray) -> np.ndarray:
    top, bottom, left, right = _ink_bbox(ink >= INK_THRESHOLD)
    return ink[top:bottom, left:right]


def _pen_step(ink: np.ndarray, grow: bool, square: bool) -> np.ndarray:
    """One px of grey-level dilation (grow) or erosion.

    Alternating the 3x3 square and the plus-shaped neighbourhood traces an octagon, a near-round pen
    whose reach differs by 6 % between straight and diagonal strokes (a square alone would thin a
    diagonal stroke 41 % faster than a straight one)."""
    pick = np.maximum if grow else np.minimum
    padded = np.pad(ink, 1)  # zero outside: erosion eats from the border, dilation grows into it
    h, w = ink.shape
    out = ink.copy()
    shifts = ((-1, 0), (1, 0), (0, -1), (0, 1))
    if square:
        shifts += ((-1, -1), (-1, 1), (1, -1), (1, 1))
    for dr, dc in shifts:
        pick(out, padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w], out=out)
    return out


def ink_map(image: np.ndarray) -> np.ndarray:
    """Ink strength of every pixel, independent of the colour scheme.

    The background is whatever colour dominates the image border; a pixel's ink is
    its distance from that colour (largest per-channel difference), scaled so the
    strongest ink in the image is 1.  When the background is transparent the ink is
    read from the alpha channel instead, so any ink colour works.

    Args:
        image: uint8 (or bool) array, (H, W) or (H, W, C) with C in 1..4.

    Returns:
        float32 (H, W) array in [0, 1], ink = 1, background = 0; all zeros when no
        pixel differs from the background by at least ``MIN_CONTRAST``.

    Raises:
        ValueError: if ``image`` is not an array this function can read.
    """
    contrast = _contrast(_validated_pixels(image))
    peak = _peak(contrast)
    if peak is None:
        return np.zeros(contrast.shape, dtype=np.float32)
    return contrast.astype(np.float32) * np.float32(1.0 / peak)


def _validated_pixels(image: np.ndarray) -> np.ndarray:
    """Check the input and return it as a uint8 (H, W, C) array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * np.uint8(255)
    elif image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 (or bool) image, got dtype {image.dtype}; "
            "convert to uint8 0-255 first"
        )
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    elif image.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise ValueError(f"image is empty, shape {image.shape}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(
            f"expected 1 to {MAX_CHANNELS} channels (grey, grey+alpha, RGB, RGBA), "
            f"got {channels}"
        )
    return image


def _contrast(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W) distance of each pixel from the background, 0-255."""
    if pixels.shape[2] not in ALPHA_CHANNEL_COUNTS:
        return _distance(pixels, _border_median(pixels))
    colour, alpha = pixels[:, :, :-1], pixels[:, :, -1:]
    background_alpha = _border_median(alpha)
    if background_alpha[0] < TRANSPARENT_ALPHA:
        # On a transparent canvas the colour of empty pixels is arbitrary
        # (often black, so black ink would vanish); coverage is the ink.
        return _distance(alpha, background_alpha)
    contrast = _distance(colour, _border_median(colour))
    if alpha.min() < FULL_SCALE:
        # Opaque background: a partly transparent stroke shows only partly.
        weighted = contrast.astype(np.uint16) * alpha[:, :, 0] // FULL_SCALE
        contrast = weighted.astype(np.uint8)
    return contrast


def _border_median(pixels: np.ndarray) -> np.ndarray:
    """Per-channel median of the outermost pixel ring: the background colour.

    A digit rarely covers most of the border, so the median ignores it, and it
    works the same for dark-on-light and light-on-dark drawings.
    """
    ring = np.concatenate(
        [pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]], axis=0
    )
    return np.round(np.median(ring, axis=0)).astype(np.int32)


def _distance(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Largest per-channel absolute difference from the background colour."""
    levels = np.arange(256, dtype=np.int32)
    distance = None
    for channel, level in enumerate(background):
        # A 256-entry lookup table beats widening the whole image to int16.
        table = np.abs(levels - level).astype(np.uint8)
        channel_distance = table[pixels[:, :, channel]]
        if distance is None:
            distance = channel_distance
        else:
            np.maximum(distance, channel_distance, out=distance)
    return distance


def _peak(contrast: np.ndarray) -> int | None:
    """Strongest ink, or None when it is too faint to be a drawing."""
    peak = int(contrast.max())
    return peak if peak >= MIN_CONTRAST * FULL_SCALE else None


def _ink_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the True pixels, end-exclusive; mask not all False."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _scale_to_box(crop: np.ndarray) -> np.ndarray:
    """Resize so the longer side is DIGIT_BOX px, keeping the aspect ratio."""
    height, width = crop.shape
    scale = DIGIT_BOX / max(height, width)
    new_height = max(1, round(height * scale))
    new_width = max(1, round(width * scale))
    resized = Image.fromarray(crop).resize((new_width, new_height), RESAMPLE)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _paste_centred(digit: np.ndarray) -> np.ndarray:
    """Place the digit in a 28x28 field with its centre of mass at the centre."""
    height, width = digit.shape
    row_com, col_com = _centre_of_mass(digit)
    top = _clamped_offset(MNIST_CENTRE - row_com, MNIST_SIDE - height)
    left = _clamped_offset(MNIST_CENTRE - col_com, MNIST_SIDE - width)
    field = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    field[top : top + height, left : left + width] = digit
    return field


def _centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    """Ink-weighted mean (row, col) in pixel-index coordinates."""
    total = float(digit.sum())
    if total <= 0.0:
        return (digit.shape[0] - 1) / 2.0, (digit.shape[1] - 1) / 2.0
    rows = np.arange(digit.shape[0], dtype=np.float32)
    cols = np.arange(digit.shape[1], dtype=np.float32)
    row_com = float(digit.sum(axis=1) @ rows) / total
    col_com = float(digit.sum(axis=0) @ cols) / total
    return row_com, col_com


def _clamped_offset(offset: float, largest: int) -> int:
    """Round a shift to whole pixels, keeping the digit inside the field."""
    return int(min(max(round(offset), 0), largest))
