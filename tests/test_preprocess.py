"""Tests for mlpdash.preprocess: drawings in every colour scheme become MNIST-style digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from drawings import SCHEMES, DrawingStyle, draw_digit, make_canvas_drawings, pen_digit
from PIL import Image

from mlpdash.data import load_mnist, read_idx
from mlpdash.preprocess import STROKE_RANGE, THICKEN_TO, THIN_TO, canvas_to_mnist, ink_map, prepare, stroke_width

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
MNIST_TEST_IMAGES = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
CANVAS = 280
FIDELITY_DIGITS = 400
ROUND_TRIP_DIGITS = 12
DEFAULT_INK = {"rgb_dark_on_white": (20, 20, 60), "rgba_transparent": (200, 30, 90)}

# Real MNIST digits, redrawn on canvases (varied size, position, stroke width and
# colour scheme) and normalised again, correlate with the originals at a mean
# Pearson r of 0.89 (full test file: 0.890 over 2,000 digits, 0.884 over the 400
# used here with standard error 0.0045; bundled sample: 0.873); what remains is
# mostly the deliberate stroke-width change. 0.85 leaves about five standard
# errors of margin, yet fails on a wrong centring or scale: shifting every
# result by one pixel drops the mean to 0.77.
MIN_MEAN_FIDELITY = 0.85
# Shrinking the whole canvas keeps the digit's size and position, so it matches
# the MNIST frame only by luck: measured mean r 0.10 (sample: 0.07).
MAX_MEAN_PLAIN_RESIZE = 0.5


@pytest.fixture(scope="module")
def real_digits() -> np.ndarray:
    """MNIST test digits: the full IDX file when present, else the bundled sample."""
    if MNIST_TEST_IMAGES.is_file():
        images = read_idx(MNIST_TEST_IMAGES)
    else:
        images = load_mnist("sample").x_test
    count = min(FIDELITY_DIGITS, len(images))
    pick = np.random.default_rng(7).choice(len(images), size=count, replace=False)
    return np.asarray(images[np.sort(pick)])


def _style(
    scheme: str = "grey",
    box: float = 0.6,
    position: tuple[float, float] = (0.5, 0.5),
    stroke: float = 0.0,
    colour: tuple[int, int, int] | None = None,
) -> DrawingStyle:
    ink = colour if colour is not None else DEFAULT_INK.get(scheme, (255, 255, 255))
    return DrawingStyle(
        box_fraction=box, position=position, stroke=stroke, scheme=scheme, ink_colour=ink
    )


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def _bbox_sides(image: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def _assert_mnist_like(digit: np.ndarray) -> None:
    assert digit.shape == (28, 28)
    assert digit.dtype == np.float32
    assert np.isfinite(digit).all()
    assert digit.min() >= 0.0 and digit.max() <= 1.0
    assert digit.max() > 0.5  # the ink is bright, not a faint smear


# ------------------------------------------------------------ round trips


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_round_trips_to_the_mnist_frame(scheme: str, real_digits: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    for digit in real_digits[:ROUND_TRIP_DIGITS]:
        style = _style(
            scheme,
            box=float(rng.uniform(0.15, 0.9)),
            position=(float(rng.random()), float(rng.random())),
            stroke=float(rng.uniform(-0.5, 1.0)),
        )
        result = canvas_to_mnist(draw_digit(digit, style, CANVAS))
        assert result is not None
        _assert_mnist_like(result)
        row, col = _centre_of_mass(result)
        assert abs(row - 14) <= 1 and abs(col - 14) <= 1, (row, col)
        assert abs(max(_bbox_sides(result)) - 20) <= 1, _bbox_sides(result)


def test_colour_schemes_give_the_same_ink(real_digits: np.ndarray) -> None:
    maps = [ink_map(draw_digit(real_digits[0], _style(scheme), CANVAS)) for scheme in SCHEMES]
    for other in maps[1:]:
        assert np.abs(other - maps[0]).max() <= 2 / 255


def test_ink_map_reads_light_and_dark_ink_the_same_way() -> None:
    ink = np.zeros((40, 30), dtype=np.uint8)
    ink[10:30, 12:16] = 255
    dark_on_light = 255 - ink
    expected = ink.astype(np.float32) / 255
    np.testing.assert_allclose(ink_map(ink), expected)
    np.testing.assert_allclose(ink_map(dark_on_light), expected)
    rgb = np.stack([dark_on_light] * 3, axis=2)
    np.testing.assert_allclose(ink_map(rgb), expected)


def test_light_pen_colour_is_stretched_to_full_ink() -> None:
    canvas = np.full((50, 50, 3), 255, dtype=np.uint8)
    canvas[10:40, 20:25] = (170, 170, 255)  # pale blue on white: contrast 85
    result = canvas_to_mnist(canvas)
    assert result is not None
    assert result.max() == pytest.approx(1.0, abs=0.05)


def test_small_digit_in_a_corner_matches_a_large_centred_one(real_digits: np.ndarray) -> None:
    direct, aligned = [], []
    for index, digit in enumerate(real_digits[:20]):
        scheme = SCHEMES[index % len(SCHEMES)]
        corner = (float(index % 2), float(index // 2 % 2))
        small_style = _style(scheme, box=0.18, position=corner)
        small = canvas_to_mnist(draw_digit(digit, small_style, CANVAS))
        large = canvas_to_mnist(draw_digit(digit, _style(scheme, box=0.85), CANVAS))
        assert small is not None and large is not None
        direct.append(_pearson(small, large))
        aligned.append(_best_aligned_pearson(small, large))
    # Measured: mean r 0.96-0.98. Like MNIST, the centring shifts by whole pixels,
    # so a centre of mass near a half pixel may round either way, and a thin digit
    # half a pixel off correlates at only ~0.8 with itself; allow that per pair.
    assert np.mean(direct) > 0.9
    assert min(aligned) > 0.8


def _best_aligned_pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Highest correlation over shifts of up to one pixel (the frame's margin is empty)."""
    shifts = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    return max(_pearson(np.roll(a, shift, axis=(0, 1)), b) for shift in shifts)


def test_input_is_not_modified(real_digits: np.ndarray) -> None:
    drawing = draw_digit(real_digits[0], _style("rgba_opaque_black"), CANVAS)
    before = drawing.copy()
    canvas_to_mnist(drawing)
    ink_map(drawing)
    np.testing.assert_array_equal(drawing, before)


# --------------------------------------------------------- blank and tiny


def _background(scheme: str, size: int = CANVAS) -> np.ndarray:
    if scheme == "grey":
        return np.zeros((size, size), np.uint8)
    if scheme == "rgb_dark_on_white":
        return np.full((size, size, 3), 255, np.uint8)
    if scheme == "rgba_opaque_black":
        canvas = np.zeros((size, size, 4), np.uint8)
        canvas[:, :, 3] = 255
        return canvas
    return np.zeros((size, size, 4), np.uint8)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_blank_canvas_is_no_digit(scheme: str) -> None:
    assert canvas_to_mnist(_background(scheme)) is None
    assert not ink_map(_background(scheme)).any()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_faint_noise_alone_is_no_digit(scheme: str) -> None:
    canvas = _background(scheme).astype(np.int16)
    faint = 30  # about 12 % of full scale: a smudge, not a stroke
    for row, col in [(5, 200), (140, 141), (270, 3)]:
        if scheme == "grey":
            canvas[row, col] += faint
        elif scheme == "rgb_dark_on_white":
            canvas[row, col] -= faint
        elif scheme == "rgba_opaque_black":
            canvas[row, col, :3] += faint
        else:
            canvas[row, col] = (0, 0, 0, faint)
    assert canvas_to_mnist(canvas.astype(np.uint8)) is None


def test_uniform_colour_is_no_digit() -> None:
    assert canvas_to_mnist(np.full((100, 120, 3), (40, 90, 200), np.uint8)) is None
    assert canvas_to_mnist(np.full((100, 120), 128, np.uint8)) is None


def test_faint_specks_do_not_move_the_digit(real_digits: np.ndarray) -> None:
    drawing = draw_digit(real_digits[1], _style("grey", box=0.4, position=(0.5, 0.5)), CANVAS)
    specked = drawing.copy()
    specked[2, 2] = specked[277, 270] = specked[3, 275] = 35  # anti-alias dust far away
    clean = canvas_to_mnist(drawing)
    assert clean is not None
    np.testing.assert_array_equal(canvas_to_mnist(specked), clean)


def test_tiny_dot_still_gives_a_digit() -> None:
    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    canvas[40:43, 250:253] = 255
    result = canvas_to_mnist(canvas)
    assert result is not None
    _assert_mnist_like(result)
    row, col = _centre_of_mass(result)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


def test_single_pixel_still_gives_a_digit() -> None:
    canvas = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    canvas[100, 7] = (255, 0, 0, 255)
    result = canvas_to_mnist(canvas)
    assert result is not None
    _assert_mnist_like(result)


@pytest.mark.parametrize("horizontal", [True, False])
def test_single_straight_stroke_keeps_its_aspect_ratio(horizontal: bool) -> None:
    canvas = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    if horizontal:
        canvas[200:206, 20:220] = 0
    else:
        canvas[20:220, 200:206] = 0
    result = canvas_to_mnist(canvas)
    assert result is not None
    _assert_mnist_like(result)
    height, width = _bbox_sides(result)
    long_side, short_side = (width, height) if horizontal else (height, width)
    assert long_side == 20
    # 6 px over 200 would shrink to a 0.6 px hairline: it is thickened to an MNIST stroke instead.
    assert 2 <= short_side <= 4
    row, col = _centre_of_mass(result)
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 50), (50, 1), (3, 3, 4)])
def test_tiny_images_do_not_crash(shape: tuple[int, ...]) -> None:
    image = np.zeros(shape, np.uint8)
    image[tuple(s // 2 for s in shape)] = 255
    result = canvas_to_mnist(image)
    assert result is None or result.shape == (28, 28)


# ---------------------------------------------------------- input checks


def test_other_layouts_are_accepted() -> None:
    grey = np.zeros((60, 60), np.uint8)
    grey[20:40, 28:33] = 255
    reference = canvas_to_mnist(grey)
    assert reference is not None
    single_channel = grey[:, :, np.newaxis]
    grey_alpha = np.stack([np.zeros_like(grey), grey], axis=2)  # ink in alpha only
    as_bool = grey > 0
    for variant in (single_channel, grey_alpha, as_bool):
        np.testing.assert_allclose(canvas_to_mnist(variant), reference, atol=1e-6)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((28, 28), np.float32),
        np.zeros((28, 28), np.float64),
        np.zeros((28, 28), np.int32),
        np.zeros((28, 28), np.uint16),
        np.zeros(28, np.uint8),
        np.zeros((2, 28, 28, 1), np.uint8),
        np.zeros((0, 0), np.uint8),
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 10, 0), np.uint8),
        np.zeros((10, 10, 5), np.uint8),
        [[0, 255], [255, 0]],
    ],
    ids=[
        "float32", "float64", "int32", "uint16", "1d", "4d",
        "empty", "no-rows", "no-channels", "5-channels", "list",
    ],
)
def test_invalid_input_raises_value_error(image) -> None:
    with pytest.raises(ValueError):
        canvas_to_mnist(image)
    with pytest.raises(ValueError):
        ink_map(image)


# ------------------------------------------------- fidelity on real digits


def _plain_resize(drawing: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(ink_map(drawing)).resize((28, 28), Image.Resampling.BOX))


def test_drawings_normalise_back_to_the_original_mnist_digits(real_digits: np.ndarray) -> None:
    drawings = make_canvas_drawings(real_digits, seed=3, canvas=CANVAS)
    normalised, plain = [], []
    for digit, drawing in zip(real_digits, drawings):
        result = canvas_to_mnist(drawing)
        assert result is not None
        normalised.append(_pearson(result, digit))
        plain.append(_pearson(_plain_resize(drawing), digit))
    assert np.mean(normalised) > MIN_MEAN_FIDELITY
    assert np.mean(plain) < MAX_MEAN_PLAIN_RESIZE
    assert np.mean(normalised) > np.mean(plain) + 0.3


def test_mnist_digits_are_nearly_unchanged(real_digits: np.ndarray) -> None:
    # MNIST digits were made by this very normalisation, so they should come back
    # almost as they are (measured mean r 0.989; rims differ by re-sampling).
    # Those whose stroke is outside MNIST's usual range (1 in 5) are thinned or thickened: 0.795 of
    # the first 2,000 test digits are kept as drawn, and as many of the bundled sample's 2,000; of the
    # 400 picked here 0.84 (full test file) and 0.7975 (sample). 0.75 is two standard errors below.
    steps = [prepare(digit) for digit in real_digits]
    kept = [s.stroke_change == 0 for s in steps]
    correlations = [_pearson(s.digit, digit) for s, digit, k in zip(steps, real_digits, kept) if k]
    assert np.mean(kept) >= 0.75
    assert np.mean(correlations) > 0.97


# ------------------------------------------------------------- generator


def test_generator_is_deterministic_and_covers_every_scheme(real_digits: np.ndarray) -> None:
    first = make_canvas_drawings(real_digits[:8], seed=11, canvas=120)
    again = make_canvas_drawings(real_digits[:8], seed=11, canvas=120)
    other = make_canvas_drawings(real_digits[:8], seed=12, canvas=120)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    shapes = {d.shape for d in first}
    assert shapes == {(120, 120), (120, 120, 3), (120, 120, 4)}
    assert all(d.dtype == np.uint8 for d in first)


# --- the canvas's PNG, as it arrives from the browser -----------------------------------------------


def _png(pixels) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_canvas_png_of_the_canvas_size_decodes_to_rgba():
    from mlpdash.preprocess import canvas_png

    pixels = np.zeros((280, 280, 4), np.uint8)
    pixels[100:180, 130:150] = 255
    decoded = canvas_png(_png(pixels), 280, 280)
    assert decoded.dtype == np.uint8 and decoded.shape == (280, 280, 4)
    np.testing.assert_array_equal(decoded, pixels)


def test_a_second_header_or_a_fake_first_chunk_cannot_smuggle_a_huge_image():
    import struct

    from mlpdash.preprocess import canvas_png

    small = _png(np.zeros((280, 280, 4), np.uint8))
    big_header = _chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 6, 0, 0, 0))
    # Pillow takes the last IHDR it sees: 280x280 first, 8000x8000 after it.
    doubled = small[:33] + big_header + small[33:]
    with pytest.raises(ValueError, match="8000x8000"):
        canvas_png(doubled, 280, 280)
    # A first chunk that is not IHDR but carries 280x280 where the header would be.
    fake = small[:8] + _chunk(b"tEXt", struct.pack(">II", 280, 280) + b"\x08\x06xx") + small[8:]
    with pytest.raises(ValueError, match="no PNG header"):
        canvas_png(fake, 280, 280)


# ------------------------------------------------------------ stroke width


def _digit_stroke(digit: np.ndarray) -> float:
    # Measured as MNIST's range was: the 28x28 digit enlarged tenfold.
    big = Image.fromarray(digit).resize((280, 280), Image.Resampling.BILINEAR)
    return stroke_width(np.asarray(big, np.float32)) / 10


@pytest.mark.parametrize("brush", [4, 9, 18, 30])
def test_stroke_width_measures_the_brush_of_long_and_short_strokes(brush: int) -> None:
    for height, digits in ((brush + 20, (1, 7)), (240, (1, 7, 0))):  # short: mostly round ends
        for digit in digits:
            measured = stroke_width(ink_map(pen_digit(digit, height, brush)))
            assert measured == pytest.approx(brush, rel=0.15, abs=1.0), (digit, height, measured)


def test_mnist_strokes_are_mostly_left_as_drawn(real_digits: np.ndarray) -> None:
    # The range is MNIST's own: MNIST digits drawn on the canvas at their own stroke keep it.
    kept = [prepare(draw_digit(d, _style(box=0.7), CANVAS)).stroke_change == 0 for d in real_digits[:100]]
    # Measured on these 100: 0.80 (full test file), 0.74 (bundled sample); the range holds about 80 %
    # of MNIST's own digits (see above). 0.70 is over two standard errors below either.
    assert np.mean(kept) >= 0.70


def test_a_small_digit_drawn_with_a_broad_brush_is_thinned_to_a_mnist_stroke() -> None:
    # The 1 of the issue: about 34 px tall with the default 18 px brush, once a fat pill read as 8.
    steps = prepare(pen_digit(1, 34, 18))
    assert steps.stroke == pytest.approx(18, rel=0.15)
    assert steps.stroke_in_digit > STROKE_RANGE[1] and steps.stroke_change < 0
    # Untouched, the 18 px pen would have been 9 px wide in the 28x28 digit: now it is about THIN_TO
    # (the slant of the 1 and the resampling add a little).
    width = _digit_stroke(steps.digit)
    assert width <= THIN_TO + 2, width
    assert _bbox_sides(steps.digit > 0.5)[1] <= 6  # a 1, not a pill
    untouched = prepare(pen_digit(1, 140, 18))  # 2.6 px in the digit: as MNIST
    assert untouched.stroke_change == 0 and untouched.adjusted is untouched.crop


def test_a_large_digit_drawn_with_a_fine_pen_is_thickened() -> None:
    steps = prepare(pen_digit(7, 260, 4))
    assert steps.stroke_in_digit < STROKE_RANGE[0] and steps.stroke_change > 0
    assert _digit_stroke(steps.digit) == pytest.approx(THICKEN_TO, abs=0.6)
    assert steps.digit.max() > 0.9  # a solid stroke, not the faint trace a hairline shrinks to


def test_thinning_never_erases_the_drawing() -> None:
    blob = np.zeros((280, 280), np.uint8)
    blob[100:130, 100:130] = 255  # a square dab: no stroke to thin
    for image in (blob, pen_digit(0, 30, 26), pen_digit(4, 26, 24)):
        digit = canvas_to_mnist(image)
        assert digit is not None and (digit > 0.5).sum() >= 10


def test_small_ones_of_every_height_are_thinned_not_only_some():
    # No edge below which a pill-shaped 1 counts as a dab and stays fat.
    for height in range(26, 46, 2):
        steps = prepare(pen_digit(1, height, 18))
        assert steps.stroke_change < 0 and not steps.dab, height
        assert _bbox_sides(steps.digit > 0.5)[1] <= 8, height  # as drawn: 9-14 px wide


def test_a_round_dab_and_stray_specks_are_left_as_drawn():
    dot = np.zeros((280, 280), np.uint8)
    rows, cols = np.indices(dot.shape)
    dot[np.hypot(rows - 140, cols - 140) < 9] = 255  # one click with the 18 px brush
    dab = prepare(dot)
    assert dab.dab and dab.stroke_change == 0
    specks = np.zeros((280, 280), np.uint8)
    specks[20, 20] = specks[250, 250] = 255
    steps = prepare(specks)
    assert steps.stroke_change == 0  # not grown into a blob: there is no stroke to thicken


def test_a_large_photo_is_measured_at_the_working_size():
    # Through the CLI an image may be far larger than the canvas: the work stays at 200 px a side.
    rows, cols = np.indices((1500, 1500))
    radius = np.hypot(rows - 750, cols - 750)
    ring = ((radius > 300) & (radius < 700)).astype(np.uint8) * 255  # a 400-px stroke: thinned
    steps = prepare(ring)
    assert steps.stroke == pytest.approx(400, rel=0.15) and not steps.dab and steps.stroke_change < 0
    assert max(steps.adjusted.shape) <= 200 and steps.digit.shape == (28, 28)


def test_the_naive_resize_shrinks_the_whole_canvas_as_it_is():
    steps = prepare(pen_digit(1, 60, 18))  # a small 1 in the middle of the canvas
    naive = steps.naive()
    assert naive.shape == (28, 28) and naive.dtype == np.float32
    # Not cropped or scaled: the ink stays a few px tall in the middle, unlike the model's input.
    assert _bbox_sides(naive > 0.3)[0] <= 8 < _bbox_sides(steps.digit > 0.3)[0]
