"""Figure builders: trace types and counts, the data they carry against hand-computed references, the
weights grid's PNG decoded back to pixels, and the package's shape (small modules over one base)."""

from __future__ import annotations

import ast
import math
import re

import base64
import io
from pathlib import Path

import numpy as np
import plotly.colors as pcolors
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from drawings import pen_digit
from PIL import Image

from mlpdash import figures
from mlpdash.figures import (
    accuracy_figure,
    confusion_figure,
    digit_figure,
    downsample_indices,
    loss_figure,
    per_class_figure,
    preparation_pictures,
    picture,
    explanation_figure,
    activations_figure,
    hidden_map_figure,
    digits_grid_figure,
    weight_bands_figure,
    class_accuracy_figure,
    answers_over_time_figure,
    unit_norm_figure,
    map_raster,
    attack_figure,
    unit_tiles_figure,
    probabilities_figure,
    tile_grid,
    unit_figure,
    weights_grid_figure,
)
from mlpdash.figures.base import TRAIN_COLOR
from mlpdash.figures.drawing import SLOT_GREY
from mlpdash.figures.training import BATCH_COLOR
from mlpdash.preprocess import prepare

PITCH = 29  # a 28-px tile plus its 1-px gap


def history(epochs: int) -> list[dict[str, float]]:
    return [
        {"epoch": e, "loss": 0.4 / e, "accuracy": 0.90 + e / 100, "val_loss": 0.3 / e,
         "val_accuracy": 0.95 + e / 200, "seconds": 3.0}
        for e in range(1, epochs + 1)
    ]


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def png_pixels(fig: go.Figure) -> np.ndarray:
    """The weights grid's image trace decoded to RGB [height, width, 3]."""
    source = fig.data[0].source
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(source[len(prefix):])))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB")).astype(int)


def scale_rgb(position: float) -> np.ndarray:
    """Plotly's own colour for a position in [0, 1] of the weight scale: the independent reference."""
    return np.array(pcolors.unlabel_rgb(pcolors.sample_colorscale("RdBu_r", [position])[0]))


def glorot_kernel(units: int, seed: int = 0) -> np.ndarray:
    # Uniform noise over the whole range: the worst case for PNG compression.
    limit = np.sqrt(6 / (784 + units))
    return np.random.default_rng(seed).uniform(-limit, limit, (784, units)).astype(np.float32)


# --- every figure ---------------------------------------------------------------------------------


ALL_BUILDERS = {
    "loss": lambda: loss_figure(history(3), np.linspace(2, 0.1, 300), 100),
    "loss-empty": lambda: loss_figure([]),
    "accuracy": lambda: accuracy_figure(history(3)),
    "confusion": lambda: confusion_figure(np.eye(10, dtype=int) * 50),
    "per-class": lambda: per_class_figure([0.99] * 10),
    "weights": lambda: weights_grid_figure(glorot_kernel(12)),
    "unit": lambda: unit_figure(glorot_kernel(12), 3),
    "probabilities": lambda: probabilities_figure(np.full(10, 0.1)),
    "digit": lambda: digit_figure(np.zeros((28, 28))),
    "explanation": lambda: explanation_figure(_explained()),
    "activations": lambda: activations_figure(_explained().activations),
    "hidden-map": lambda: hidden_map_figure(_map(), np.zeros(2), [0, 1]),
    "attack": lambda: attack_figure(_attacked(), np.zeros((28, 28)), 4),
    "unit-tiles": lambda: unit_tiles_figure(glorot_kernel(3), [5, 9, 2], ["a", "b", "c"]),
}


def _network():
    from mlpdash.explain import Network

    rng = np.random.default_rng(0)
    return Network.from_weights([rng.normal(0, 0.05, (784, 60)), np.zeros(60), rng.normal(0, 0.1, (60, 10)),
                                 np.zeros(10)])


def _explained():
    from mlpdash.explain import explain

    return explain(_network(), np.random.default_rng(1).random((28, 28)))


def _map():
    from mlpdash.explain import fit_map

    rng = np.random.default_rng(2)
    return fit_map(_network(), rng.random((40, 28, 28)), rng.integers(0, 10, 40))


def _attacked():
    from mlpdash.explain import Attack

    original = np.zeros((28, 28), np.float32)
    return Attack(3, 0.1, original, original + 0.1, 3)


@pytest.mark.parametrize("name", ALL_BUILDERS)
def test_every_figure_shares_the_look_and_keeps_the_users_view(name):
    fig = ALL_BUILDERS[name]()
    assert isinstance(fig, go.Figure)
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.uirevision  # same value on every rebuild, so zoom survives the 1-s refresh
    assert fig.layout.uirevision == ALL_BUILDERS[name]().layout.uirevision
    assert isinstance(fig.layout.height, int) and 120 <= fig.layout.height <= 700
    fig.to_json()  # serialisable as Streamlit will send it


# --- loss and accuracy ----------------------------------------------------------------------------


def test_loss_figure_plots_epochs_and_batches_on_one_epoch_axis():
    batches = np.linspace(2.0, 0.2, 30).astype(np.float32)
    fig = loss_figure(history(3), batches, batches_per_epoch=10)
    assert [t.type for t in fig.data] == ["scatter"] * 3
    batch, train, val = fig.data
    assert batch.mode == "lines" and train.mode == val.mode == "markers+lines"
    np.testing.assert_array_equal(np.asarray(train.x), [1, 2, 3])
    np.testing.assert_allclose(np.asarray(train.y), [0.4, 0.2, 0.4 / 3])
    np.testing.assert_allclose(np.asarray(val.y), [0.3, 0.15, 0.1])
    # Batch i of epoch e at e - 1 + (i + 1) / batches_per_epoch: epoch 1 ends at x = 1, epoch 3 at x = 3.
    np.testing.assert_allclose(np.asarray(batch.x), (np.arange(30) + 1) / 10, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(batch.x)[[0, 9, 10, 29]], [0.1, 1.0, 1.1, 3.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(batch.y), batches)
    assert batch.line.width < train.line.width
    assert fig.layout.xaxis.title.text == "epoch" and "loss" in fig.layout.yaxis.title.text
    assert not fig.layout.annotations


def test_loss_figure_marks_the_lowest_validation_loss_once_it_has_clearly_risen_after_it():
    rows = history(6)
    for row, val_loss in zip(rows, [0.5, 0.3, 0.25, 0.28, 0.33, 0.4]):  # lowest at epoch 3, then up
        row["val_loss"] = val_loss
    fig = loss_figure(rows)
    [mark] = [a for a in fig.layout.annotations if "lowest validation" in a.text]
    assert mark.text == "lowest validation loss (epoch 3)" and mark.x == 3
    assert mark.y == pytest.approx(math.log10(0.25))  # placed by the log of the value, on a log axis
    rows[-1]["val_loss"] = 0.26  # within 5 % of the lowest: noise, not memorising
    assert not [a for a in loss_figure(rows).layout.annotations if "lowest" in a.text]
    assert not loss_figure(history(6)).layout.annotations  # still falling: nothing to mark


def test_loss_figure_downsamples_a_long_batch_series_and_keeps_its_end():
    batches = np.linspace(2.3, 0.05, 40_001).astype(np.float32)
    fig = loss_figure(history(20), batches, batches_per_epoch=2000)
    x, y = np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert 1000 <= len(x) <= 2000
    assert y[0] == batches[0] and y[-1] == batches[-1]
    assert x[-1] == pytest.approx(40_001 / 2000)
    # Every kept point is a real point of the series at its own x (the shape is kept, not re-smoothed).
    indices = np.rint(x * 2000).astype(int) - 1
    np.testing.assert_array_equal(y, batches[indices])
    assert np.all(np.diff(x) > 0)


@pytest.mark.parametrize("length", [0, 1, 1999, 2000, 2001, 4000, 39_999, 40_000, 123_457])
def test_downsample_indices(length):
    indices = downsample_indices(length)
    assert len(indices) <= 2000
    if length == 0:
        assert len(indices) == 0
        return
    assert indices[0] == 0 and indices[-1] == length - 1
    assert np.all(np.diff(indices) > 0)
    if length <= 2000:
        assert len(indices) == length
    else:
        steps = np.diff(indices[:-1])
        assert np.all(steps == steps[0])  # every k-th point, then the last one


def test_loss_figure_with_only_batches_and_with_nothing():
    only_batches = loss_figure([], np.full(5, 1.5), batches_per_epoch=100)
    assert len(only_batches.data) == 1 and not only_batches.layout.annotations
    assert np.asarray(only_batches.data[0].x)[-1] == pytest.approx(0.05)

    nothing = loss_figure([])
    assert len(nothing.data) == 0
    assert annotation_texts(nothing) == ["waiting for the first batch"]
    assert nothing.layout.xaxis.title.text == "epoch" and nothing.layout.yaxis.title.text
    assert loss_figure([], np.zeros(0)).layout.annotations  # an empty series is nothing too


def test_empty_charts_match_the_settings_before_the_first_batch():
    loss = loss_figure([], epochs=3)
    # The axis is the log axis it says it is, over where a loss starts (ln 10 = 2.3) and heads.
    assert loss.layout.yaxis.type == "log" and "log scale" in loss.layout.yaxis.title.text
    low, high = loss.layout.yaxis.range
    assert 10 ** low <= 0.05 and 10 ** high >= math.log(10)
    assert list(loss.layout.xaxis.range) == [0, 3]
    accuracy = accuracy_figure([], epochs=25)
    assert list(accuracy.layout.xaxis.range) == [0, 25]


def test_the_epoch_points_say_what_they_average():
    history = [{"epoch": 1, "loss": 0.5, "val_loss": 0.4, "accuracy": 0.9, "val_accuracy": 0.92}]
    for fig in (loss_figure(history, epochs=2), accuracy_figure(history, epochs=2)):
        training, validation = (t for t in fig.data if t.name in ("training", "validation"))
        assert "mean over the epoch" in training.hovertemplate
        assert "validation split" in validation.hovertemplate


def test_loss_figure_needs_batches_per_epoch_for_a_batch_curve():
    with pytest.raises(ValueError, match="batches_per_epoch"):
        loss_figure([], np.ones(3))


def test_accuracy_figure_zooms_in_on_close_values():
    rows = [{"epoch": 1, "accuracy": 0.970, "val_accuracy": 0.975},
            {"epoch": 2, "accuracy": 0.980, "val_accuracy": 0.978}]
    fig = accuracy_figure(rows)
    assert [t.name for t in fig.data] == ["training", "validation"]
    np.testing.assert_allclose(np.asarray(fig.data[1].y), [0.975, 0.978])
    low, high = fig.layout.yaxis.range
    assert 0.9 < low < 0.970 and 0.980 < high <= 1.0
    assert high - low < 0.05  # 0.97 vs 0.98 spans a good part of the axis, not 1 % of 0..1
    assert "%" in fig.layout.yaxis.tickformat


def test_accuracy_range_stays_inside_zero_and_one():
    fig = accuracy_figure([{"epoch": 1, "accuracy": 1.0, "val_accuracy": 0.999}])
    low, high = fig.layout.yaxis.range
    assert low < 0.999 and high == 1.0


def test_accuracy_figure_placeholder():
    fig = accuracy_figure([])
    assert len(fig.data) == 0 and annotation_texts(fig) == ["waiting for the first epoch"]


# --- confusion matrix -----------------------------------------------------------------------------


def test_confusion_figure_colours_the_mistakes_and_sets_the_diagonal_apart():
    counts = np.zeros((10, 10), int)
    counts[3, 3], counts[3, 5], counts[3, 8] = 990, 12, 8  # 1010 threes
    counts[0, 0], counts[0, 6] = 199, 1  # 0.5 %
    counts[1, 1] = 50
    # no 2s at all: row 2 stays zero
    for d in range(4, 10):
        counts[d, d] = 100
    fig = confusion_figure(counts)
    assert [t.type for t in fig.data] == ["heatmap", "heatmap", "scatter"]
    errors, correct, cells = fig.data

    z = np.asarray(errors.z, float)
    assert np.isnan(np.diag(z)).all()  # the diagonal is not on the error scale
    expected = np.zeros((10, 10))
    expected[3, 5], expected[3, 8], expected[0, 6] = 12 / 1010, 8 / 1010, 1 / 200
    off = ~np.eye(10, dtype=bool)
    np.testing.assert_allclose(z[off], expected[off])
    # The error scale ends at the largest mistake, so a 1 % confusion is strongly coloured.
    assert errors.zmin == 0 and errors.zmax == pytest.approx(12 / 1010)
    assert errors.text[3][5] == "12" and errors.text[0][6] == "1"
    assert errors.text[3][0] == "" and errors.text[3][3] == ""  # zeros and the diagonal blank
    assert errors.colorbar.tickformat == ".1%"

    diagonal = np.asarray(correct.z, float)
    assert np.isnan(diagonal[off]).all() and (np.diag(diagonal) == 1).all()
    assert not correct.showscale
    assert correct.text[3][3] == "98%" and correct.text[1][1] == "100%"
    assert correct.text[2][2] == ""  # no 2s tested: no accuracy to show


def test_confusion_figure_without_mistakes_keeps_a_scale():
    errors = confusion_figure(np.eye(10, dtype=int) * 30).data[0]
    assert errors.zmax == pytest.approx(0.01) and all(t == "" for row in errors.text for t in row)


def test_confusion_hover_lives_on_invisible_cell_markers():
    counts = np.zeros((10, 10), int)
    counts[3, 3], counts[3, 5] = 998, 12
    counts[7, 1] = 1
    counts[7, 7] = 999
    fig = confusion_figure(counts)
    errors, correct, cells = fig.data
    assert errors.hoverinfo == correct.hoverinfo == "skip"  # Streamlit returns no selection for heatmaps
    assert len(cells.x) == 100 and cells.mode == "markers"
    assert cells.marker.symbol == "square" and cells.marker.opacity == 0
    i = 3 * 10 + 5
    assert (cells.x[i], cells.y[i]) == (5, 3)
    assert cells.hovertext[i] == "true 3, predicted 5: 12 of 1010 (1.2%) read as 5"
    assert cells.hovertext[3 * 10 + 3] == "true 3, predicted 3: 998 of 1010 (98.8%) read right"
    assert list(cells.customdata[i]) == [3, 5, 12]
    assert cells.hovertext[7 * 10 + 1] == "true 7, predicted 1: 1 of 1000 (0.1%) read as 1"
    assert "0 of 0" in cells.hovertext[2 * 10 + 2]
    assert [list(c) for c in cells.customdata][:2] == [[0, 0, 0], [0, 1, 0]]


def test_confusion_axes():
    fig = confusion_figure(np.eye(10, dtype=int))
    x, y = fig.layout.xaxis, fig.layout.yaxis
    assert x.title.text == "Predicted" and y.title.text == "True digit"
    assert list(y.range) == [9.5, -0.5]  # digit 0 on top
    assert list(x.range) == [-0.5, 9.5]  # the matrix fills the plot: no padding for the hover markers
    assert y.scaleanchor == "x"  # square cells
    assert list(x.tickvals) == list(range(10)) and list(y.ticktext) == [str(d) for d in range(10)]


def test_confusion_refuses_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        confusion_figure(np.zeros((10, 9)))


# --- per-class accuracy ---------------------------------------------------------------------------


def test_per_class_figure_shows_error_rates_from_zero_and_marks_unknown_digits():
    values = [0.99, None, 0.97, float("nan"), 0.985, 0.98, 0.99, 0.975, 0.96, 0.995]
    fig = per_class_figure(values)
    (bar,) = fig.data
    assert bar.type == "bar" and bar.orientation == "h"
    assert list(bar.y) == [str(d) for d in range(10)]
    assert fig.layout.yaxis.autorange == "reversed"  # digit 0 at the top
    assert bar.x[1] is None and bar.x[3] is None
    assert bar.x[0] == pytest.approx(0.01) and bar.x[8] == pytest.approx(0.04)
    assert bar.text[1] == "" and bar.text[0] == "1.0%" and bar.text[8] == "4.0%"
    assert bar.customdata[8] == pytest.approx(0.96)  # the accuracy, on hover
    na = [a for a in fig.layout.annotations if a.text == "n/a"]
    assert sorted(a.y for a in na) == ["1", "3"]
    low, high = fig.layout.xaxis.range
    # From zero: twice the bar is twice the mistakes.
    assert low == 0 and 0.04 < high <= 0.06
    assert fig.layout.title.text == "Error rate per digit"


def test_per_class_figure_with_nothing_known():
    fig = per_class_figure([None] * 10)
    assert annotation_texts(fig).count("n/a") == 10
    assert list(fig.layout.xaxis.range) == [0.0, 0.01]


# --- weights grid ---------------------------------------------------------------------------------


def test_tile_grid_places_each_unit_and_leaves_gaps():
    kernel = glorot_kernel(23)
    grid, rows, columns = tile_grid(kernel, columns=5)
    assert (rows, columns) == (5, 5)
    assert grid.shape == (5 * PITCH - 1, 5 * PITCH - 1)
    for k in range(23):
        r, c = divmod(k, 5)
        tile = grid[r * PITCH: r * PITCH + 28, c * PITCH: c * PITCH + 28]
        np.testing.assert_array_equal(tile, kernel[:, k].reshape(28, 28))
    gaps = np.arange(28, grid.shape[0], PITCH)
    assert np.isnan(grid[gaps, :]).all() and np.isnan(grid[:, gaps]).all()
    # The two unused tile slots at the end are empty, and nothing else is NaN.
    assert np.isnan(grid[4 * PITCH:, 3 * PITCH:]).all()
    assert np.isfinite(grid).sum() == 23 * 784


@pytest.mark.parametrize("units", [1, 10, 128, 700, 1000])
def test_default_grid_shape_is_wide_and_nearly_full(units):
    _, rows, columns = tile_grid(np.zeros((784, units)))
    assert rows * columns >= units
    assert rows * columns - units < max(rows, columns)  # no mostly empty last row
    if units >= 10:
        assert 1.5 <= columns / rows <= 3.5  # wide, for a wide dashboard


def test_tile_grid_refuses_a_wrong_kernel():
    with pytest.raises(ValueError, match="784"):
        tile_grid(np.zeros((100, 10)))
    with pytest.raises(ValueError, match="columns"):
        tile_grid(np.zeros((784, 10)), columns=0)


def test_weights_grid_png_colours_on_a_shared_symmetric_scale():
    r = 0.2
    kernel = glorot_kernel(8) * 0.5
    kernel[:, 0] = 0.0
    kernel[:, 1] = r
    kernel[:, 2] = -r
    kernel[:, 3] = r / 2
    kernel[:, 4] = 5 * r  # beyond the range: clipped to the end, not a new scale
    fig = weights_grid_figure(kernel, columns=4, value_range=r)
    assert [t.type for t in fig.data] == ["image", "scatter"]
    pixels = png_pixels(fig)
    assert pixels.shape == (2 * PITCH - 1, 4 * PITCH - 1, 3)

    def tile(k):
        row, col = divmod(k, 4)
        return pixels[row * PITCH: row * PITCH + 28, col * PITCH: col * PITCH + 28]

    def uniform_colour(k):
        colours = tile(k).reshape(-1, 3)
        assert (colours == colours[0]).all()
        return colours[0]

    middle = uniform_colour(0)
    np.testing.assert_allclose(middle, scale_rgb(0.5), atol=2)
    assert middle.min() > 235  # near white for RdBu
    np.testing.assert_allclose(uniform_colour(1), scale_rgb(1.0), atol=1)
    np.testing.assert_allclose(uniform_colour(2), scale_rgb(0.0), atol=1)
    np.testing.assert_allclose(uniform_colour(3), scale_rgb(0.75), atol=4)
    np.testing.assert_array_equal(uniform_colour(4), uniform_colour(1))
    positive, negative = uniform_colour(1), uniform_colour(2)
    assert positive[0] > positive[2] + 50 and negative[2] > negative[0] + 50  # red vs blue ends
    # Gaps are the gap colour, not a weight colour.
    np.testing.assert_array_equal(pixels[28, 0], figures.GAP_RGB)
    np.testing.assert_array_equal(pixels[0, 28], figures.GAP_RGB)
    # The colour bar shows the same range.
    marker = fig.data[1].marker
    assert (marker.cmin, marker.cmax) == (-r, r) and marker.showscale


def test_weights_grid_range_is_robust_to_one_outlier():
    kernel = np.random.default_rng(2).uniform(-0.05, 0.05, (784, 50)).astype(np.float32)
    kernel[0, 0] = 10.0
    fig = weights_grid_figure(kernel)
    assert fig.data[1].marker.cmax == pytest.approx(0.05, rel=0.02)
    assert fig.data[1].marker.cmin == -fig.data[1].marker.cmax
    # A weight of 0.05 is still near the scale's end, not washed out to white by the outlier.
    pixels = png_pixels(fig)
    strongest = np.unravel_index(np.argmax(kernel[:, 1]), (28, 28))
    colour = pixels[strongest[0], PITCH + strongest[1]]
    np.testing.assert_allclose(colour, scale_rgb(1.0), atol=12)


def test_weights_grid_hover_markers_name_each_unit():
    kernel = glorot_kernel(130)
    fig = weights_grid_figure(kernel, columns=20)
    image, units = fig.data
    assert image.hoverinfo == "skip"
    assert len(units.x) == 130
    np.testing.assert_array_equal(np.asarray(units.customdata), np.arange(130))
    assert units.text[123] == "unit 123" and "%{text}" in units.hovertemplate
    assert units.marker.symbol == "square" and units.marker.opacity == 0
    # Each marker sits at its tile's centre (pixel (i, j) of the image is centred on x = j, y = i).
    row, col = divmod(123, 20)
    assert units.x[123] == pytest.approx(col * PITCH + 13.5)
    assert units.y[123] == pytest.approx(row * PITCH + 13.5)
    # About a tile on screen: seven rows of markers fill most of the plot's height without overlapping.
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert 0.6 * plot_height <= 7 * units.marker.size <= plot_height
    y = fig.layout.yaxis
    assert y.scaleanchor == "x" and y.range[0] > y.range[1]  # aspect kept, y down
    assert not fig.layout.xaxis.visible and not y.visible


def test_weights_grid_of_700_units_is_one_small_image():
    fig = weights_grid_figure(glorot_kernel(700))
    assert len(fig.data) == 2 and fig.data[0].type == "image"
    assert len(fig.data[1].x) == 700
    grid, rows, columns = tile_grid(glorot_kernel(700))
    assert png_pixels(fig).shape[:2] == grid.shape
    # Re-sent every second while training.
    assert len(fig.to_json()) < 1_500_000


def test_linear_model_grid():
    fig = weights_grid_figure(glorot_kernel(10))
    assert png_pixels(fig).shape[:2] == (2 * PITCH - 1, 5 * PITCH - 1)
    assert len(fig.data[1].x) == 10


def test_weights_grid_of_a_page_names_its_units_frames_the_picked_one_and_labels_digit_templates():
    kernel = glorot_kernel(6)
    fig = weights_grid_figure(kernel, columns=3, unit_ids=[40, 7, 12, 3, 99, 0], highlight=12)
    markers = fig.data[1]
    assert list(markers.customdata) == [40, 7, 12, 3, 99, 0] and markers.text[0] == "unit 40"
    # Each marker sits on the tile's place on the page (where a click lands), not at the unit's number.
    centre = 27 / 2
    assert list(markers.x) == [c * 29 + centre for c in (0, 1, 2, 0, 1, 2)]
    assert list(markers.y) == [r * 29 + centre for r in (0, 0, 0, 1, 1, 1)]
    (frame,) = fig.layout.shapes
    # Unit 12 is the third tile: column 2 of row 0.
    assert frame.x0 < 2 * 29 < frame.x1 and frame.y0 < 0 < frame.y1
    assert not fig.layout.annotations
    assert not weights_grid_figure(kernel, unit_ids=range(6), highlight=500).layout.shapes
    digits = weights_grid_figure(glorot_kernel(10), labels=[f"digit {d}" for d in range(10)])
    assert [a.text for a in digits.layout.annotations] == [f"digit {d}" for d in range(10)]
    assert digits.data[1].text[3] == "digit 3"
    with pytest.raises(ValueError, match="unit ids"):
        weights_grid_figure(kernel, unit_ids=[1, 2])


def test_labelled_tiles_have_their_labels_above_them_not_over_their_weights():
    from mlpdash.figures.weights import GAP_INDEX, LABEL_BAND, WEIGHT_LEVELS

    kernel = glorot_kernel(7)
    fig = weights_grid_figure(kernel, columns=3, labels=[f"epoch {k}" for k in range(7)], highlight=4)
    source = fig.data[0].source
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))
    markers = fig.data[1]
    centre = 27 / 2
    for k, (note, x, y) in enumerate(zip(fig.layout.annotations, markers.x, markers.y, strict=True)):
        left, top = int(x - centre), int(y - centre)
        # The marker (where a click or hover lands) is on its tile: no gap pixel in it.
        assert (pixels[top:top + 28, left:left + 28] != GAP_INDEX).all(), k
        # Its label sits on the band just above the tile, blank (the colour of a zero weight) down to
        # the gap line at the tile's top edge.
        assert note.text == f"epoch {k}" and note.yanchor == "bottom" and note.xanchor == "left"
        assert note.y == top - 0.5 and note.x == left - 0.5
        assert (pixels[top - LABEL_BAND:top - 1, left:left + 28] == WEIGHT_LEVELS // 2).all(), k
        assert (pixels[top - 1, left:left + 28] == GAP_INDEX).all(), k
    (frame,) = fig.layout.shapes  # the fifth tile, row 1 column 1, framed where it is drawn
    assert frame.x0 < markers.x[4] < frame.x1 and frame.y0 < markers.y[4] < frame.y1
    # Unlabelled grids (700 units) keep their tiles packed.
    assert fig.layout.yaxis.range[0] > weights_grid_figure(kernel, columns=3).layout.yaxis.range[0]


def test_weights_grid_refuses_a_bad_range():
    with pytest.raises(ValueError, match="value_range"):
        weights_grid_figure(glorot_kernel(4), value_range=0.0)


def test_unit_figure():
    kernel = glorot_kernel(12)
    fig = unit_figure(kernel, 7, value_range=0.3)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    np.testing.assert_array_equal(np.asarray(heat.z), kernel[:, 7].reshape(28, 28))
    assert (heat.zmin, heat.zmax) == (-0.3, 0.3)
    assert fig.layout.title.text == "Unit 7"
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"
    assert "weight" in heat.hovertemplate
    # The unit's own 784 weights give the same figure.
    same = unit_figure(kernel[:, 7], 7, value_range=0.3)
    np.testing.assert_array_equal(np.asarray(same.data[0].z), np.asarray(heat.z))
    # Without a range: symmetric around zero.
    auto = unit_figure(kernel[:, 7], 7).data[0]
    assert auto.zmin == -auto.zmax > -1
    with pytest.raises(ValueError, match="out of range"):
        unit_figure(kernel, 12)


# --- drawing and prediction -----------------------------------------------------------------------


def test_probabilities_figure_highlights_the_argmax():
    probabilities = np.full(10, 0.02)
    probabilities[6] = 0.82
    fig = probabilities_figure(probabilities)
    (bar,) = fig.data
    assert list(bar.x) == [str(d) for d in range(10)]
    np.testing.assert_allclose(np.asarray(bar.y), probabilities)
    colours = list(bar.marker.color)
    assert colours[6] != colours[0] and len(set(colours[:6] + colours[7:])) == 1
    assert bar.text[6] == "0.82"
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis.range[1] >= 1
    assert not fig.layout.annotations
    # Every digit is a tick, so a narrow chart cannot thin the labels to the even ones.
    assert list(fig.layout.xaxis.tickvals) == [str(d) for d in range(10)]


def test_probabilities_figure_placeholder():
    fig = probabilities_figure(None)
    assert annotation_texts(fig) == ["draw a digit"]
    assert np.all(np.asarray(fig.data[0].y) == 0)
    with pytest.raises(ValueError, match="10 probabilities"):
        probabilities_figure([0.5, 0.5])


def test_digit_figure_shows_ink_white_on_black():
    image = np.zeros((28, 28), np.float32)
    image[5:20, 13:15] = 1.0
    fig = digit_figure(image)
    (heat,) = fig.data
    np.testing.assert_array_equal(np.asarray(heat.z), image)
    assert (heat.zmin, heat.zmax) == (0, 1)
    low, high = heat.colorscale[0][1], heat.colorscale[-1][1]
    assert sum(pcolors.unlabel_rgb(low)) == 0 and min(pcolors.unlabel_rgb(high)) > 240
    assert fig.layout.title.text == "Model input (28×28)"
    assert fig.layout.yaxis.autorange == "reversed" and fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.height <= 260


def test_digit_figure_placeholder():
    fig = digit_figure(None)
    assert np.all(np.asarray(fig.data[0].z) == 0)  # a black square
    assert annotation_texts(fig) == ["draw a digit"]
    with pytest.raises(ValueError, match="28x28"):
        digit_figure(np.zeros((20, 20)))


def test_loss_axis_labels_are_whole_numbers_not_leading_digits():
    from mlpdash.figures import loss_figure

    fig = loss_figure([{"epoch": 1, "loss": 0.5, "val_loss": 0.6}], np.linspace(2.3, 0.04, 10), 10)
    assert fig.layout.yaxis.type == "log"
    assert {"0.05", "0.1", "0.2", "0.5", "1", "2"} <= set(fig.layout.yaxis.ticktext)
    assert list(fig.layout.yaxis.tickvals) == [float(t) for t in fig.layout.yaxis.ticktext]


def test_a_diverging_loss_gets_a_log_axis_that_fits_it():
    batches = np.geomspace(2.3, 1e19, 50).astype(np.float32)
    fig = loss_figure([{"epoch": 1, "loss": 3e18, "val_loss": 1e19}], batches, 50)
    ticks = list(fig.layout.yaxis.tickvals)
    assert len(ticks) <= 9 and min(ticks) <= 2.3 and max(ticks) >= 1e19
    assert all(np.log10(t) == round(np.log10(t)) for t in ticks)  # whole decades, readable labels
    assert "1e+18" in fig.layout.yaxis.ticktext and "1" in fig.layout.yaxis.ticktext


def test_a_first_epoch_divergence_is_labelled_in_decades_few_enough_for_a_short_chart():
    # Learning rate too high on the sample: the smoothed loss went from 2 to 1e4 in 16 batches. In
    # 1-2-5 steps that was 12 labels on a plot about 150 px tall, touching one another.
    fig = loss_figure([], np.geomspace(2.0, 1e4, 16).astype(np.float32), 47, epochs=0.5)
    ticks = list(fig.layout.yaxis.tickvals)
    assert len(ticks) <= 8 and min(ticks) <= 2.0 and max(ticks) >= 1e4
    assert all(np.log10(t) == round(np.log10(t)) for t in ticks)


def test_the_batch_curve_is_the_headline_until_an_epoch_ends_then_context():
    batches = np.linspace(2.3, 0.7, 24).astype(np.float32)
    alone = loss_figure([], batches, 47, epochs=0.75).data[0]
    beside = loss_figure([{"epoch": 1, "loss": 0.6, "val_loss": 0.5}], batches, 47, epochs=2).data[0]
    assert alone.line.color == TRAIN_COLOR and alone.line.width == 2
    assert beside.line.color == BATCH_COLOR and beside.line.width < alone.line.width


def test_the_accuracy_axis_starts_at_zero_near_chance():
    chance = [{"epoch": e, "accuracy": 0.098 + e / 1000, "val_accuracy": 0.1135} for e in (1, 2, 3)]
    assert list(accuracy_figure(chance).layout.yaxis.range) == [0.0, 1.0]
    good = [{"epoch": e, "accuracy": 0.97 + e / 1000, "val_accuracy": 0.975} for e in (1, 2)]
    low, high = accuracy_figure(good).layout.yaxis.range
    assert 0.9 < low < 0.971 and 0.976 < high <= 1.0


def test_loss_figure_places_thinned_batches_at_their_own_steps():
    steps = np.array([2, 4, 6, 8])
    fig = loss_figure([], np.ones(4, np.float32), batches_per_epoch=4, batch_steps=steps)
    np.testing.assert_allclose(np.asarray(fig.data[0].x), [0.5, 1.0, 1.5, 2.0])
    with pytest.raises(ValueError, match="4 batch steps for 3 batch losses"):
        loss_figure([], np.ones(3), batches_per_epoch=4, batch_steps=steps)


# --- how a drawing was prepared -------------------------------------------------------------------


def test_preparation_shows_each_step_says_what_the_stroke_step_did_and_sends_small_pictures():
    steps = prepare(pen_digit(1, 34, 18))
    small = preparation_pictures(steps)
    captions = [p.caption for p in small]
    assert len(small) == 4
    assert "thinned to about 4" in captions[1] and re.search(r"box, \d+×3[45] px", captions[0]), captions
    assert "model's input" in captions[3]
    # Each a small square, whatever the step's shape; the last is the 28x28 input enlarged 4 times,
    # pixel for pixel.
    assert all(p.image.shape == (112, 112) and p.image.dtype == np.uint8 for p in small)
    np.testing.assert_array_equal(small[3].image[::4, ::4], np.round(np.clip(steps.digit, 0, 1) * 255).astype(np.uint8))
    thin = preparation_pictures(prepare(pen_digit(7, 260, 4)))
    assert "thickened to about 3" in thin[1].caption
    kept = preparation_pictures(prepare(pen_digit(4, 150, 18)))
    assert "as MNIST's, kept" in kept[1].caption
    dot = np.zeros((280, 280), np.uint8)
    dot[140, 140] = 255
    assert "a dot or a dab" in preparation_pictures(prepare(dot))[1].caption
    naive = preparation_pictures(steps, naive=(steps.naive(), 7))
    assert len(naive) == 5 and naive[4].caption.endswith("read as 7")


def test_a_picture_keeps_its_shape_on_a_square_and_reads_uint8_and_floats_alike():
    tall = np.zeros((40, 10), np.uint8)
    tall[:, 4:6] = 255
    shown = picture(tall, "a tall box", side=80)
    assert shown.image.shape == (80, 80)
    # 20 px wide in the middle, the slot's grey on either side.
    assert (shown.image[:, :30] == SLOT_GREY).all() and (shown.image[:, 50:] == SLOT_GREY).all()
    assert shown.image[:, 30:50].max() == 255 and shown.image[:, 30:50].min() == 0
    np.testing.assert_array_equal(picture(tall / 255.0, "floats", side=80).image, shown.image)
    # A 20-px step on 112 px: enlarged 5 times (every pixel 5 px), centred, not stretched to 5.6.
    fitted = picture(np.eye(20), "scaled", side=112).image
    np.testing.assert_array_equal(fitted[6:106, 6:106], np.kron(np.eye(20) * 255, np.ones((5, 5))))
    assert (fitted[:6] == SLOT_GREY).all() and (fitted[106:] == SLOT_GREY).all()
    # A large crop is averaged down to fill the square.
    crop = np.zeros((280, 140), np.float32)
    crop[:, :70] = 1.0
    large = picture(crop, "crop", side=112).image
    assert (large[:, :28] == SLOT_GREY).all() and (large[:, 84:] == SLOT_GREY).all()
    assert (large[:, 28:56] == 255).all() and (large[:, 56:84] == 0).all()
    with pytest.raises(ValueError, match="2-D image"):
        picture(np.zeros((2, 2, 2)), "colour")



# --- inside a prediction ----------------------------------------------------------------------------


def test_the_explanation_shows_templates_and_contributions_on_symmetric_scales_with_the_sums():
    e = _explained()
    fig = explanation_figure(e)
    assert len(fig.data) == 4
    assert [t.coloraxis for t in fig.data] == ["coloraxis", "coloraxis2"] * 2
    layout = fig.layout
    assert layout.coloraxis.cmin == -layout.coloraxis.cmax and layout.coloraxis2.cmin == -layout.coloraxis2.cmax
    np.testing.assert_allclose(np.asarray(fig.data[1].z), e.contributions(e.digit), rtol=1e-6)
    titles = [a.text for a in layout.annotations]
    total = float(e.contributions(e.digit).sum() + e.effective_bias[e.digit])
    assert titles[0] == f"template of {e.digit}" and f"= {total:.2f}" in titles[1]
    assert titles[2] == f"template of {e.runner_up}"
    # Every panel is its own pair of axes, with square pixels.
    assert fig.layout.yaxis4.scaleanchor == "x4" and fig.data[3].xaxis == "x4"


def test_activations_are_one_image_a_layer_in_fixed_unit_order():
    layers = (np.arange(120, dtype=np.float32) - 60, np.ones(30, np.float32))
    fig = activations_figure(layers)
    assert len(fig.data) == 2
    first = np.asarray(fig.data[0].z, dtype=float)
    assert first.shape == (3, 50) and np.isnan(first[2, 20:]).all()
    assert list(np.asarray(fig.data[0].customdata)[1, :3]) == [50, 51, 52]
    assert [a.text for a in fig.layout.annotations] == ["layer 1: 59 of 120 units active",
                                                        "layer 2: 30 of 30 units active"]


def test_the_map_colours_digits_by_class_and_marks_the_input_and_its_neighbours():
    hidden_map = _map()
    fig = hidden_map_figure(hidden_map, np.array([1.5, -2.0]), [3, 7])
    classes = [t for t in fig.data if t.name in [str(d) for d in range(10)]]
    assert len(classes) == 10  # the legend; the digits are one image under the axes
    (near,) = [t for t in fig.data if t.name == "nearest"]
    assert list(near.customdata) == [3, 7]
    (here,) = [t for t in fig.data if t.name == "this input"]
    assert (here.x[0], here.y[0]) == (1.5, -2.0)
    assert fig.layout.uirevision == "hidden-map"
    # Every digit is a dot of its label's colour where its point is, in the axes' own coordinates.
    (raster,) = fig.layout.images
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(raster.source.split(",", 1)[1]))))
    height, width = pixels.shape[:2]
    # The image covers the digits' extent, in the axes' own coordinates.
    x0, x1, y1 = raster.x, raster.x + raster.sizex, raster.y
    y0 = y1 - raster.sizey
    points = hidden_map.points
    assert x0 < points[:, 0].min() and points[:, 0].max() < x1 and y0 < points[:, 1].min() and points[:, 1].max() < y1
    for k in (0, 11, 25):
        px, py = hidden_map.points[k]
        col = round((px - x0) / (x1 - x0) * (width - 1))
        row = round((y1 - py) / (y1 - y0) * (height - 1))
        assert pixels[row, col, 3] > 0  # a dot is there (the last one drawn on a shared spot wins)
    assert (pixels[..., 3] > 0).sum() <= 40 * 9  # small dots, nothing else
    ax0, ax1 = fig.layout.xaxis.range
    ay0, ay1 = fig.layout.yaxis.range
    assert ax0 <= 1.5 <= ax1 and ay0 <= -2.0 <= ay1  # the input is always inside the view
    # The plot keeps the image's pixels square, whatever the column's shape: screen px per unit of y
    # over px per unit of x is the image's (rows / y extent) over (columns / x extent).
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.yaxis.scaleratio == pytest.approx((height / raster.sizey) / (width / raster.sizex))


def test_the_map_keeps_its_digits_image_and_widens_its_axes_for_an_input_far_out():
    hidden_map = _map()
    kept = map_raster(hidden_map)
    inside = hidden_map_figure(hidden_map, hidden_map.points[0], [], kept)
    assert inside.layout.images[0].source == kept.source
    assert tuple(inside.layout.xaxis.range) == kept.xs and tuple(inside.layout.yaxis.range) == kept.ys
    far = np.array([kept.xs[1] + 50.0, kept.ys[0] - 50.0])
    fig = hidden_map_figure(hidden_map, far, [], kept)
    (image,) = fig.layout.images
    assert image.source == kept.source  # the digits stay where they were ...
    assert (image.x, image.sizex) == pytest.approx((kept.xs[0], kept.xs[1] - kept.xs[0]))
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    assert x0 <= kept.xs[0] and far[0] < x1 and y0 < far[1] and kept.ys[1] <= y1  # ... the view takes in both


def test_the_attack_shows_the_change_on_its_budgets_scale_and_the_noise():
    fig = attack_figure(_attacked(), np.zeros((28, 28)), 4)
    assert len(fig.data) == 4
    assert (fig.data[1].zmin, fig.data[1].zmax) == (-0.1, 0.1)
    titles = [a.text for a in fig.layout.annotations]
    assert "read as 3" in titles[2] and "read as 4" in titles[3]
    assert len(attack_figure(_attacked(), None, None).data) == 3


def test_unit_tiles_carry_their_unit_for_a_click_and_share_one_scale():
    kernel = glorot_kernel(3)
    fig = unit_tiles_figure(kernel, [5, 9, 2], ["a", "b", "c"])
    markers = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert [int(t.customdata[0]) for t in markers] == [5, 9, 2]
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len({(t.zmin, t.zmax) for t in heatmaps}) == 1 and heatmaps[0].zmin == -heatmaps[0].zmax
    assert list(fig.layout.xaxis.range) == [-0.5, 27.5]  # the markers do not pad the tiles
    with pytest.raises(ValueError, match="weights for 2 units"):
        unit_tiles_figure(kernel, [1, 2], ["a", "b"])


def test_tanh_activations_are_shown_on_their_own_range():
    fig = activations_figure((np.array([-0.5, 0.2, 0.9], np.float32),), "tanh")
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1.0, 1.0)
    assert fig.layout.annotations[0].text == "layer 1: 2 of 3 units above 0"
    assert "tanh outputs" in fig.layout.title.text


def test_an_attack_that_failed_shows_the_change_it_tried():
    from mlpdash.explain import Attack

    original = np.zeros((28, 28), np.float32)
    failed = Attack(3, None, original, original + 0.3, 5)
    fig = attack_figure(failed, None, None)
    assert (fig.data[1].zmin, fig.data[1].zmax) == pytest.approx((-0.3, 0.3))
    assert "±0.3 at most" in fig.layout.annotations[1].text and "not reached" in fig.layout.title.text


def test_the_weight_bands_have_three_bands_and_a_median_per_layer_and_mark_the_epoch():
    epochs = [0, 1, 2]
    bands = [np.sort(np.random.default_rng(k).normal(size=(3, 7)), axis=1) for k in range(2)]
    fig = weight_bands_figure(epochs, bands, ["layer 1", "output"], marker=1)
    assert len(fig.data) == 2 * 7  # per layer: three bands (two edges each) and the median
    medians = [t for t in fig.data if t.name == "median"]
    assert [list(t.y) for t in medians] == [list(b[:, 3]) for b in bands]
    filled = [t for t in fig.data if t.fill == "tonexty"]
    assert len(filled) == 6
    assert [(s.x0, s.xref) for s in fig.layout.shapes] == [(1, "x"), (1, "x2")]
    assert [a.text for a in fig.layout.annotations] == ["layer 1", "output"]
    with pytest.raises(ValueError, match="percentiles"):
        weight_bands_figure(epochs, [np.zeros((2, 7))], ["layer 1"])


def test_accuracy_and_answers_over_time_draw_one_line_a_digit():
    epochs = [0, 1, 3]
    accuracy = np.linspace(0.1, 0.9, 30).reshape(3, 10)
    fig = class_accuracy_figure(epochs, accuracy, marker=3)
    assert len(fig.data) == 10 and list(fig.data[4].y) == list(accuracy[:, 4])
    assert fig.layout.shapes[0].x0 == 3
    probabilities = np.full((3, 10), 0.02)
    probabilities[:, 7] = 0.82
    probabilities[0, 7], probabilities[0, 1] = 0.02, 0.82  # first read as 1, then as 7
    fig = answers_over_time_figure(epochs, probabilities, marker=0)
    bold = [t.name for t in fig.data if t.line.width == 3]
    assert bold == ["1", "7"]
    assert unit_norm_figure(epochs, [1.0, 1.2, 1.3], unit=4).layout.title.text.startswith("Unit 4")
    with pytest.raises(ValueError, match="probabilities"):
        answers_over_time_figure(epochs, probabilities[:2])


def test_a_grid_of_digits_is_one_image_with_a_clickable_marker_on_each():
    images = np.zeros((45, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255
    ids = list(range(100, 145))
    fig = digits_grid_figure(images, ids, [f"digit {i}" for i in ids], "some digits",
                             short=[str(i) for i in ids])
    assert [t.type for t in fig.data] == ["image", "scatter"]
    assert list(fig.data[1].customdata) == ids and fig.data[1].marker.opacity == 0
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(fig.data[0].source.split(",", 1)[1]))))
    assert pixels.shape[:2] == (5 * 30 - 2, 10 * 30 - 2)  # 10 a row, 2 px between them
    assert pixels[12, 13, 0] == 255 and pixels[5, 5, 0] == 0 and pixels[5, 5, 1] == 0  # ink, and the black
    assert pixels[0, 28, 0] == figures.DIGIT_BACKGROUND
    # A digit's marker sits on its tile: the 11th is the first of the second row.
    assert (fig.data[1].x[10], fig.data[1].y[10]) == (13.5, 30 + 13.5)
    assert len(fig.layout.annotations) == 45
    assert fig.layout.yaxis.constraintoward == "top"  # a narrower column leaves its spare room below
    eight = digits_grid_figure(images[:40], ids[:40], ["x"] * 40, "eight a row", columns=8)
    assert max(eight.data[1].x) == 7 * 30 + 13.5 and max(eight.data[1].y) == 4 * 30 + 13.5
    many = digits_grid_figure(np.zeros((80, 28, 28), np.uint8), range(80), ["x"] * 80, "many", short=["s"] * 80)
    assert not many.layout.annotations and max(many.data[1].x) == 19 * 30 + 13.5  # 20 a row, hover only
    few = digits_grid_figure(images[:3], ids[:3], ["a", "b", "c"], "three", short=["x", "y", "z"])
    assert [a.text for a in few.layout.annotations] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="an id and a hover text each"):
        digits_grid_figure(images, ids[:3], ["a"], "bad")


HOSTILE_NAME = '<a href="http://evil.example">log in</a> <b>bold</b> %{x}'
ESCAPED_NAME = '&lt;a href="http://evil.example"&gt;log in&lt;/a&gt; &lt;b&gt;bold&lt;/b&gt; %{x}'


def _templates(fig: go.Figure) -> list[str]:
    return [t.hovertemplate for t in fig.data if t.hovertemplate]


def test_names_from_files_show_as_text_in_figures():
    """A run's name or a drawing's file name may come from someone else's files: Plotly must show its
    <a href>, <b> and %{x} as written, never as a link, bold or a value."""
    grid = digits_grid_figure(np.zeros((2, 28, 28), np.uint8), [0, 1], [HOSTILE_NAME, "a 3 · x.png"], "drawings")
    assert list(grid.data[1].text) == [ESCAPED_NAME, "a 3 · x.png"]
    curves = figures.compare_curves_figure([(HOSTILE_NAME, "#000000", [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85}])], "accuracy", True)
    assert {t.name for t in curves.data} == {ESCAPED_NAME, ESCAPED_NAME + " (training)"}
    per_class = figures.per_class_compare_figure([(HOSTILE_NAME, "#000000", [0.9] * 10), (HOSTILE_NAME, "#111111", None)])
    assert per_class.data[0].name == ESCAPED_NAME and ESCAPED_NAME in per_class.layout.title.text
    for fig in (grid, curves, per_class):
        # A name reaches the hover through a reference to the trace's data, never inside its template,
        # where Plotly would read its %{x}.
        assert all("evil" not in template and "%{x}</a>" not in template for template in _templates(fig))
        shown = [str(value) for trace in fig.to_dict()["data"] for key, value in trace.items()
                 if key != "legendgroup"] + [str(fig.to_dict()["layout"])]  # a legend group is only a key
        assert not [text for text in shown if "<a " in text or "<b>bold" in text]


# --- the package's shape --------------------------------------------------------------------------

FIGURES_DIR = Path(figures.__file__).parent


@pytest.mark.parametrize("path", sorted(FIGURES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_each_figures_module_is_small_documented_and_leans_on_the_base_only(path):
    source = path.read_text()
    tree = ast.parse(source)
    assert len(source.splitlines()) <= 600
    assert ast.get_docstring(tree)
    siblings = {p.stem for p in FIGURES_DIR.glob("*.py")} - {"__init__", "base"}
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    if path.stem != "__init__":  # the package gathers the views; a view never reaches into another
        assert not {f"mlpdash.figures.{name}" for name in siblings} & imported
    if path.stem == "base":  # the ground floor of the package
        assert not [name for name in imported if name.startswith("mlpdash.figures")]


def test_the_package_offers_every_builder_it_names():
    assert all(callable(getattr(figures, name)) or name.isupper() for name in figures.__all__)
    assert {"loss_figure", "weights_grid_figure", "sweep_figure", "MapRaster"} <= set(figures.__all__)


def test_an_ended_runs_charts_say_what_happened_over_a_sane_axis():
    # Stopped before any batch: no "waiting for…", and one epoch of axis, not Plotly's empty -1..6.
    loss = loss_figure([], note="stopped before its first batch finished")
    accuracy = accuracy_figure([], note="stopped before its first epoch finished: no epoch to show")
    assert annotation_texts(loss) == ["stopped before its first batch finished"]
    assert annotation_texts(accuracy) == ["stopped before its first epoch finished: no epoch to show"]
    for fig in (loss, accuracy, loss_figure([]), accuracy_figure([])):
        assert list(fig.layout.xaxis.range) == [0, 1]
    # Diverged in its second batch: both charts span the same fraction of an epoch, the accuracy's
    # empty one saying so; a fraction of an epoch gets Plotly's own ticks, not one a whole epoch.
    span = 2 / 469
    diverged = loss_figure([], np.array([2.3, 9e4]), batches_per_epoch=469, epochs=span)
    empty = accuracy_figure([], epochs=span, note="diverged before its first epoch finished: no epoch to show")
    assert list(diverged.layout.xaxis.range) == list(empty.layout.xaxis.range) == [0, span]
    assert diverged.layout.xaxis.dtick is None and not diverged.layout.annotations
    assert annotation_texts(empty)[0].startswith("diverged")
    # Stopped at 1.2 epochs: both axes end there.
    rows = history(1)
    assert list(loss_figure(rows, np.ones(563), batches_per_epoch=469, epochs=563 / 469).layout.xaxis.range) == \
        list(accuracy_figure(rows, epochs=563 / 469).layout.xaxis.range) == [0, 563 / 469]


def test_a_loss_axis_over_close_values_still_has_two_labelled_ticks():
    fig = loss_figure([{"epoch": 1, "loss": 1.9, "val_loss": 1.63}], epochs=1)
    low, high = (10 ** v for v in fig.layout.yaxis.range)
    assert len([t for t in fig.layout.yaxis.tickvals if low <= t <= high]) >= 2
    assert low < 1.63 and high > 1.9


def test_per_digit_accuracy_axis_zooms_to_the_bars_so_a_change_of_tenths_of_a_percent_shows():
    fig = figures.accuracy_compare_figure([0.991, 0.985, None], [0.989, 0.983, 0.990], "unit 3 off")
    low, high = fig.layout.yaxis.range
    # The bars' spread (0.8 points) takes a large share of the axis, never the 0.8 % of a 0-100 % one.
    assert 0.95 < low < 0.983 and 0.991 < high <= 1.0
    assert (0.991 - 0.983) / (high - low) > 0.25
    # Nothing to show: the whole range.
    assert list(figures.accuracy_compare_figure([None], [None], "off").layout.yaxis.range) == [0.0, 1.05]
