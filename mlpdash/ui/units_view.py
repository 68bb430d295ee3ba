"""Units: get to know any hidden unit, and switch units off on a copy of the model to see what matters.

Every number comes from `mlpdash.units` (NumPy on the weights of the model in focus) and every figure
from `mlpdash.figures`; the trained model is never changed. The layer's summary and its ablation curve
are computed once per model state (`mlpdash.ui.cache`).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.explain import Network
from mlpdash.figures.units import UNIT_CHART_HEIGHT
from mlpdash.focus import Focus, ModelInFocus
from mlpdash.mnist import scale
from mlpdash.ui import choices, plain
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG
from mlpdash.units import (
    CURVE_FRACTIONS,
    LayerSummary,
    ablated,
    ablated_accuracy,
    ablation_curve,
    broken_accuracy,
    dream,
    extremes,
    input_template,
    lab_spec,
    layer_inputs,
    most_hurt,
    parse_units,
    readings,
    summarise,
    template_source,
    unit_table,
    with_unit,
)

LAYER_KEY, UNIT_KEY = choices.UNITS_LAYER_KEY, choices.UNITS_UNIT_KEY
CURVE_KEY = "units_lab_curve_for"  # the model state whose ablation curve was asked for
BREAK_KEYS = {"units_break_biases": False, "units_break_noise": 0.0, "units_break_layer": "none",
              "units_break_bits": "off"}
SELECTIVITY_HELP = ("How much the unit prefers one digit: (its mean output for its favourite digit − its mean "
                    "for the others) ÷ (the two added). 0: it answers every digit alike; 1: only one digit.")
LAB_MODES = {"The k most important": "top", "The k least important": "bottom", "A random k %": "random",
             "These units": "list"}


def units_ui(focus: Focus) -> None:
    with st.container(key="units"):
        model = choices.model(focus, "That run's model cannot be opened",
                            "Train a model first: this view opens every hidden unit of the current model, "
                            "even mid-training, or of the run picked under Runs.", settled=True)
        if model is None:
            return
        if not model.network.hidden_sizes:
            st.info("The linear model has no hidden units: its ten units are the digit templates under "
                    "First-layer weights.", icon=":material/info:")
            return
        data = choices.data(focus, model.data_spec)
        if data is None:
            return
        images, labels = scale(data.x_test), np.asarray(data.y_test)
        sizes = model.network.hidden_sizes
        state = _fingerprint(model)
        # The first layer unless a click elsewhere (open_unit) chose one this model has: set here, not
        # as the widget's default, which Streamlit warns about beside a value set through its key.
        if st.session_state.get(LAYER_KEY) not in range(1, len(sizes) + 1):
            st.session_state[LAYER_KEY] = 1
        layer = st.segmented_control("Layer", list(range(1, len(sizes) + 1)), key=LAYER_KEY,
                                     format_func=lambda n: f"layer {n} ({sizes[n - 1]} units)") or 1
        # Which model this is, before the seconds its summary may take: a new epoch shows at once.
        st.caption(f"{plain(model.title)} · test split of {plain(model.data_spec)}: {len(images):,} digits")
        summary = _summary(state, model.network, images, labels, layer)
        pre = _layer_inputs(state, model.network, images, layer)
        _unit_list(summary, layer)
        _card(model, state, data.x_test, images, labels, layer, summary, pre)
        _lab(model, state, images, labels, layer, summary, pre)
        _break_it(model, state, images, labels)


def _fingerprint(model: ModelInFocus) -> tuple:
    """The model's state and a hash of its weights: a live job's weights move with every batch, its
    state only with every epoch, and a cached measurement must never mix two models."""
    return (*model.state, tuple(hash(k.tobytes()) for k in model.network.kernels))


@derived(max_entries=8, spinner="Measuring every unit of the layer…")
def _summary(state: tuple, _network: Network, _images: np.ndarray, _labels: np.ndarray, layer: int) -> LayerSummary:
    return summarise(_network, _images, _labels, layer, pre=_layer_inputs(state, _network, _images, layer))


def _unit_list(summary: LayerSummary, layer: int) -> None:
    rows = unit_table(summary)
    with st.expander(f"All {len(rows)} units of layer {layer}: sort by a column, select a row to open its card",
                     expanded=False):
        event = st.dataframe(rows, key="units_table", hide_index=True, on_select="rerun", selection_mode="single-row",
                             height=280, column_config={
                                 "selectivity": st.column_config.NumberColumn(help=SELECTIVITY_HELP),
                                 "importance": st.column_config.NumberColumn(
                                     format="%.4f", help="The first-order cost of switching it off: the mean over "
                                                         "the test digits of |output × d(loss)/d(output)|"),
                                 "weight norm": st.column_config.NumberColumn(help="The length of its incoming weights")})
        picked = event.selection.rows if event and event.selection else []
        if not picked:
            st.session_state.pop("units_table_picked", None)
        elif st.session_state.get("units_table_picked") != picked[0]:  # a new selection: open its card
            st.session_state["units_table_picked"] = picked[0]
            st.session_state[UNIT_KEY] = picked[0]
            st.rerun()


def _card(model: ModelInFocus, state: tuple, pixels: np.ndarray, images: np.ndarray, labels: np.ndarray, layer: int,
          summary: LayerSummary, pre: np.ndarray) -> None:
    """One unit's card; `pixels` are the test digits as stored (uint8), `images` as the model sees them."""
    count = model.network.hidden_sizes[layer - 1]
    if st.session_state.get(UNIT_KEY, 0) >= count:
        st.session_state[UNIT_KEY] = 0
    unit = int(st.number_input(f"Unit (0–{count - 1})", 0, count - 1, step=1, key=UNIT_KEY))
    name = f"Layer {layer}, unit {unit}"
    st.markdown(f"##### {name}")
    template, averaged = _template(state, model.network, images, layer, unit)
    what = template_source(layer, model.network.activation, averaged)
    wanted = _dream(state, model.network, layer, unit)
    template_col, dream_col, class_col = st.columns(3)
    with template_col:
        # As tall as its neighbours: at 420 px its colour bar stood far taller than a 130-px template.
        template_fig = figures.unit_figure(template.ravel(), unit, quantity="template")
        template_fig.update_layout(height=UNIT_CHART_HEIGHT)
        st.plotly_chart(template_fig, key="units_template", theme=None, config=CHART_CONFIG)
        st.caption(f"Its input template: {what} (red: ink there drives it up).")
    with dream_col:
        st.plotly_chart(figures.grey_image_figure(wanted, "What it wants to see"), key="units_dream", theme=None,
                        config=CHART_CONFIG)
        if float(wanted.max() - wanted.min()) < 1e-3:
            st.caption("Nothing: from a uniform grey its input does not move (a unit switched off there "
                       "has no gradient to climb).")
        else:
            st.caption("An image made for it: gradient ascent on its input from a uniform grey, kept smooth "
                       "(a stroke, not noise).")
    with class_col:
        st.plotly_chart(figures.class_means_figure(summary.means[:, unit]), key="units_class_means",
                        theme=None, config=CHART_CONFIG)
        st.metric("Selectivity", f"{summary.selectivity[unit]:.2f}", help=SELECTIVITY_HELP)
    most, least = extremes(pre, unit)
    most_col, least_col = st.columns(2)
    for column, chosen, title, key in ((most_col, most, "The nine test digits that drive it hardest", "units_most"),
                                       (least_col, least, "The nine that drive it most negative", "units_least")):
        with column:
            hover = [f"#{int(i)}: a {int(labels[i])}, input {pre[i, unit]:.2f}" for i in chosen]
            st.plotly_chart(figures.digits_grid_figure(pixels[chosen], chosen, hover, title,
                                                       short=[f"{pre[i, unit]:.1f}" for i in chosen], columns=9),
                            key=key, theme=None, config=CHART_CONFIG)
    off = _switched_off(state, model.network, pre, labels, layer, (unit,))
    intact = _intact(state, model.network, images, labels)
    found = most_hurt(intact, off)
    hurt = "; no digit loses" if found is None else f"; the digit it matters most to: {found[0]} ({found[1]:+.2%})"
    st.caption(f"Switched off, the model reads {off.overall:.2%} of the test digits right (intact: "
               f"{intact.overall:.2%}; {off.overall - intact.overall:+.2%}){hurt}. Over each digit above: the "
               "unit's input for it (before the ReLU).")
    st.button(f"Add unit {unit} to the units switched off in the lab", key="units_to_lab",
              icon=":material/power_settings_new:", on_click=_add_to_lab, args=(unit,))


def _add_to_lab(unit: int) -> None:
    """The lab's own list gains the unit (a click on a card is how units are switched off by hand)."""
    listed = st.session_state.get("units_lab_list", "") if st.session_state.get("units_lab_mode") == "These units" else ""
    st.session_state["units_lab_mode"] = "These units"
    st.session_state["units_lab_list"] = with_unit(listed, unit)


@derived(max_entries=64)
def _template(state: tuple, _network: Network, _images: np.ndarray, layer: int, unit: int) -> tuple[np.ndarray, int]:
    return input_template(_network, _images, layer, unit)


@derived(max_entries=4)
def _layer_inputs(state: tuple, _network: Network, _images: np.ndarray, layer: int) -> np.ndarray:
    return layer_inputs(_network, _images, layer)


@derived(max_entries=16)
def _switched_off(state: tuple, _network: Network, _pre: np.ndarray, _labels: np.ndarray, layer: int,
                  units: tuple[int, ...]):
    """The test accuracy with `units` of `layer` switched off, once per model state: a page that
    comes back to a card or the lab does not pass the test split through the model again."""
    return ablated_accuracy(_network, _pre, _labels, layer, units)


@derived(max_entries=64)
def _dream(state: tuple, _network: Network, layer: int, unit: int) -> np.ndarray:
    return dream(_network, layer, unit)


@derived(max_entries=8)
def _intact(state: tuple, _network: Network, _images: np.ndarray, _labels: np.ndarray):
    # From the first layer's inputs, which the view has computed (and cached) already.
    return ablated_accuracy(_network, _layer_inputs(state, _network, _images, 1), _labels, 1, ())


def _lab(model: ModelInFocus, state: tuple, images: np.ndarray, labels: np.ndarray, layer: int, summary: LayerSummary,
         pre: np.ndarray) -> None:
    st.markdown("##### The lab: switch units off (on a copy; the trained model is never changed)")
    count = model.network.hidden_sizes[layer - 1]
    mode = LAB_MODES[st.segmented_control("Switch off", list(LAB_MODES), default="The k most important",
                                          key="units_lab_mode") or "The k most important"]
    amount_col, _ = st.columns([2, 3])
    with amount_col:
        if mode == "list":
            spec = st.text_input("Units", "0,1,2", key="units_lab_list",
                                 help="Unit numbers, comma separated; a card's button adds its unit")
        else:
            k = st.number_input("k", 1, count if mode != "random" else 100,
                                min(10, count) if mode != "random" else 10, key="units_lab_k")
            spec = lab_spec(mode, int(k))
    try:
        units = parse_units(spec, count, summary.importance)
    except ValueError as err:
        st.warning(plain(err), icon=":material/warning:")
        return
    intact = _intact(state, model.network, images, labels)
    broken_network = ablated(model.network, layer, units)
    broken = _switched_off(state, model.network, pre, labels, layer, tuple(units))
    drawing = choices.drawing()
    said = ""
    if drawing is not None:
        before, after = readings(model.network, broken_network, drawing.digit)
        said = f" Your drawing: read as **{before}** intact, **{after}** with them off."
    st.markdown(f"**{len(units)}** of {count} units off: test accuracy **{broken.overall:.2%}** "
                f"(intact {intact.overall:.2%}, {broken.overall - intact.overall:+.2%}).{said}")
    compare_col, curve_col = st.columns(2)
    with compare_col:
        st.plotly_chart(figures.accuracy_compare_figure(intact.per_class, broken.per_class, f"{len(units)} off"),
                        key="units_lab_compare", theme=None, config=CHART_CONFIG)
    if layer == 1:
        with curve_col:
            _curve_ui(model, state, pre, labels, summary)
            st.caption("The classic ablation curve: the units that matter most first, against a random "
                       "order. A network spreads what it knows: most single units can go.")


def _break_it(model: ModelInFocus, state: tuple, images: np.ndarray, labels: np.ndarray) -> None:
    st.markdown("##### Break it (on a copy)")
    layers = ["none", *[f"layer {n}" for n in range(1, len(model.network.hidden_sizes) + 1)]]
    layer_col, bias_col, reset_col = st.columns([2, 2, 1], vertical_alignment="bottom")
    with layer_col:
        layer = st.selectbox("Switch off a whole layer", layers, key="units_break_layer")
    with bias_col:
        zero_biases = st.toggle("Zero every bias", key="units_break_biases")
    with reset_col:
        st.button("Reset", key="units_break_reset", on_click=_reset_break, icon=":material/restart_alt:",
                  width="stretch")
    noise_col, bits_col = st.columns(2)
    with noise_col:
        noise = st.slider("Noise on the weights (× each layer's spread)", 0.0, 2.0, step=0.1, key="units_break_noise")
    with bits_col:
        bits = st.select_slider("Quantise the weights", ["off", 16, 8, 6, 4, 3, 2, 1], key="units_break_bits",
                                format_func=lambda b: b if b == "off" else f"{b} bits")
    intact = _intact(state, model.network, images, labels)
    broken_network, result = broken_accuracy(model.network, images, labels, intact, zero_biases=zero_biases,
                                             noise=float(noise),
                                             zero_layer=None if layer == "none" else int(layer.split()[1]),
                                             bits=None if bits == "off" else int(bits))
    drawing = choices.drawing()
    said = ""
    if drawing is not None:
        before, after = readings(model.network, broken_network, drawing.digit)
        said = f" Your drawing: read as **{before}** intact, **{after}** broken."
    st.markdown(f"Test accuracy **{result.overall:.2%}** (intact {intact.overall:.2%}, "
                f"{result.overall - intact.overall:+.2%}).{said}")
    st.plotly_chart(figures.accuracy_compare_figure(intact.per_class, result.per_class, "broken"),
                    key="units_break_compare", theme=None, config=CHART_CONFIG)


def _reset_break() -> None:
    for key, value in BREAK_KEYS.items():
        st.session_state[key] = value


def _curve_ui(model: ModelInFocus, state: tuple, pre: np.ndarray, labels: np.ndarray, summary: LayerSummary) -> None:
    """The ablation curve, drawn when asked for: it passes the test split through the model
    2 x len(CURVE_FRACTIONS) times (seconds), which opening the view should not cost. Once drawn for
    a model, it is shown straight away (cached)."""
    drawn = st.session_state.get(CURVE_KEY)
    if drawn != state and not st.button("Draw the ablation curve", key="units_lab_curve_draw",
                                        icon=":material/show_chart:",
                                        help=f"Test accuracy as ever more units are switched off, the most "
                                             f"important first and in a random order: "
                                             f"{2 * len(CURVE_FRACTIONS)} passes over the test split"):
        return
    st.session_state[CURVE_KEY] = state
    curves = _curve(state, model.network, pre, labels, summary.importance)
    st.plotly_chart(figures.ablation_curve_figure(CURVE_FRACTIONS, curves), key="units_lab_curve",
                    theme=None, config=CHART_CONFIG)


@derived(max_entries=4, spinner="Switching off ever more units…")
def _curve(state: tuple, _network: Network, _pre: np.ndarray, _labels: np.ndarray,
           _ranking: np.ndarray) -> dict[str, list[float]]:
    return ablation_curve(_network, None, _labels, 1, _ranking, pre=_pre)
