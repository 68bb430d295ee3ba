"""Plotly figure builders for the dashboard: plain arrays and values in, `go.Figure` out (and a few
`Picture`s: a grey image and its caption, for `st.image`).

Every builder is a pure function, and nothing here imports Streamlit or TensorFlow, so every figure
can be built and unit-tested headless (tests/test_figures.py). One module per view, over a shared
base:

- `base`: the template, colours, `_Panels` (a grid of panels in one figure) and layout helpers;
- `training`: loss and accuracy curves;            `report`: the confusion matrix, error per digit;
- `weights`: the first layer's tiles and one unit;  `drawing`: probabilities, the input, its preparation;
- `inside`: inside a prediction (templates, activations, the hidden map, the attack);
- `over_time`: weights and answers over the epochs; `mistakes`: a clickable grid of many digits;
- `units`: one unit and the ablation lab;           `data`: the splits' class counts;
- `compare`: comparing runs and a sweep.

The view modules import from `base` only, never from each other. Callers use the names re-exported
here (`from mlpdash import figures; figures.loss_figure(...)`); a test that monkeypatches one of them
on this package changes what such callers get.

Two habits run through the package:

- Every figure sets `layout.uirevision`. The page re-sends the training figures every few seconds; with an
  unchanged `uirevision`, Plotly.react keeps the user's zoom, pan and legend toggles instead of resetting
  them. A caller that wants a fresh view (a new run) overrides it: `fig.update_layout(uirevision=run_id)`.
  Streamlit (1.67) still mounts a new plot for every figure that changed, and plots it twice: pictures
  that change on every stroke and need no hover or click are `Picture`s for `st.image` instead.
- Heatmap cells cannot be clicked through Streamlit's `on_select` (see STACK-NOTES), so the grid figures
  skip hover on the coloured layer and put an invisible scatter of square markers on top; the scatter
  carries the hover text and a `customdata` that a selection returns.
"""

from __future__ import annotations

from mlpdash.figures.base import log_ticks
from mlpdash.figures.compare import compare_curves_figure, per_class_compare_figure, run_colours, sweep_figure
from mlpdash.figures.data import class_counts_figure
from mlpdash.figures.drawing import (
    PREPARATION_TITLE,
    Picture,
    digit_figure,
    picture,
    preparation_pictures,
    probabilities_figure,
)
from mlpdash.figures.inside import (
    MapRaster,
    activations_figure,
    attack_figure,
    explanation_figure,
    hidden_map_figure,
    map_raster,
    unit_tiles_figure,
)
from mlpdash.figures.mistakes import DIGIT_BACKGROUND, digits_grid_figure
from mlpdash.figures.over_time import (
    answers_over_time_figure,
    class_accuracy_figure,
    unit_norm_figure,
    weight_bands_figure,
)
from mlpdash.figures.report import confusion_figure, per_class_figure
from mlpdash.figures.training import accuracy_figure, downsample_indices, loss_figure
from mlpdash.figures.units import (
    ablation_curve_figure,
    accuracy_compare_figure,
    class_means_figure,
    grey_image_figure,
)
from mlpdash.figures.weights import (
    GAP_RGB,
    colour_indices,
    default_columns,
    grid_png,
    tile_grid,
    unit_figure,
    weight_palette,
    weight_range,
    weights_grid_figure,
)

__all__ = [
    "DIGIT_BACKGROUND",
    "GAP_RGB",
    "MapRaster",
    "PREPARATION_TITLE",
    "Picture",
    "ablation_curve_figure",
    "accuracy_compare_figure",
    "accuracy_figure",
    "activations_figure",
    "answers_over_time_figure",
    "attack_figure",
    "class_accuracy_figure",
    "class_counts_figure",
    "class_means_figure",
    "colour_indices",
    "compare_curves_figure",
    "confusion_figure",
    "default_columns",
    "digit_figure",
    "digits_grid_figure",
    "downsample_indices",
    "explanation_figure",
    "grey_image_figure",
    "grid_png",
    "hidden_map_figure",
    "log_ticks",
    "loss_figure",
    "map_raster",
    "per_class_compare_figure",
    "per_class_figure",
    "picture",
    "preparation_pictures",
    "probabilities_figure",
    "run_colours",
    "sweep_figure",
    "tile_grid",
    "unit_figure",
    "unit_norm_figure",
    "unit_tiles_figure",
    "weight_bands_figure",
    "weight_palette",
    "weight_range",
    "weights_grid_figure",
]
