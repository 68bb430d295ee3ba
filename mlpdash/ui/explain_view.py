"""Inside a prediction: one input followed through the network, for the model the page is about.

Every number comes from `mlpdash.explain` (NumPy on the model's weights) and every figure from
`mlpdash.figures`; this module only lays them out. It runs only while its tab is open; the attack and
the map's raster are derived values, computed once for every session (`mlpdash.ui.cache`).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from mlpdash import figures
from mlpdash.drawings import DrawingsError, drawings_root, listing, load
from mlpdash.explain import (
    EPSILON_LADDER,
    Attack,
    Explanation,
    HiddenMap,
    Network,
    attack,
    explain,
    logit_table,
    noise_reading,
    read_digit,
)
from mlpdash.focus import Focus, ModelInFocus
from mlpdash.files import UnsafeFileError
from mlpdash.mnist import scale
from mlpdash.preprocess import Preparation, prepare
from mlpdash.ui import choices, pictures, plain
from mlpdash.ui.cache import derived
from mlpdash.ui.style import CHART_CONFIG

NO_TARGET = "—"
UNIT_KEY = "explain_unit"
# The nearest digits' side in px (2 a pixel): five fit one row beside the map, and on a phone.
NEIGHBOUR_SIDE = 56


def explain_ui(focus: Focus) -> None:
    model = choices.model(focus, "That run's model cannot be explained",
                        "Train a model first: this view follows an input through the current model, even "
                        "mid-training, or through the run picked under Runs.")
    data = None if model is None else choices.data(focus, model.data_spec)
    if model is None or data is None:
        return
    # The start value in session state, not as `default`: Mistakes, Data and Your drawings set it too
    # (a digit handed over), and a widget given both is warned about in the server log.
    st.session_state.setdefault(choices.INPUT_KEY, choices.DRAWING_INPUT)
    source = st.segmented_control("Input", [choices.DRAWING_INPUT, *choices.SPLIT_INPUTS.values(),
                                            choices.SAVED_DRAWING_INPUT],
                                  key=choices.INPUT_KEY,
                                  help="Your drawing on the canvas above, a digit of the test or validation "
                                       "split (the Mistakes tab hands them over too), or one of the drawings "
                                       "kept under Your drawings")
    steps: Preparation | None = None
    if source == choices.SAVED_DRAWING_INPUT:
        found = _saved_drawing()
        if found is None:
            return
        steps, origin = found
        image = steps.digit
    elif source in choices.SPLIT_INPUTS.values():
        split = next(name for name, label in choices.SPLIT_INPUTS.items() if label == source)
        images, labels = (data.x_test, data.y_test) if split == "test" else (data.x_val, data.y_val)
        index = _digit_picker(split, len(images))
        image = scale(images[index])  # as model.to_model_input, without TF
        origin = f"{split} digit #{index} (labelled {int(labels[index])})"
    else:
        steps = choices.drawing()
        if steps is None:
            st.info("Draw a digit on the canvas above, or choose a test digit.", icon=":material/draw:")
            return
        image, origin = steps.digit, "your drawing"
    e = explain(model.network, image)
    hidden_map = focus.hidden_map(model)
    with st.container(key="explain"):
        st.caption(f"{plain(model.title)} · input: {origin} · read as **{e.digit}** "
                   f"({float(e.probabilities[e.digit]):.1%})")
        if steps is not None:
            _preparation(model, steps)
        _exact(e)
        _hidden(model, e)
        _map(hidden_map, model, e, data.x_test)
        _change_its_mind(model, e)


def _saved_drawing() -> tuple[Preparation, str] | None:
    """A drawing kept under Your drawings, chosen here or handed over from there, as prepared."""
    root = drawings_root()
    try:
        kept = {d.file: d for d in listing(root)}
    except DrawingsError as err:
        st.error(f"The saved drawings cannot be read: {plain(err)}", icon=":material/warning:")
        return None
    if not kept:
        st.info("No saved drawings yet: draw one and press a digit under Save as…", icon=":material/draw:")
        return None
    if st.session_state.get(choices.SAVED_DRAWING_KEY) not in kept:
        st.session_state[choices.SAVED_DRAWING_KEY] = next(reversed(kept))  # the newest
    file = st.selectbox("Saved drawing", list(kept), key=choices.SAVED_DRAWING_KEY,
                        format_func=lambda f: f"a {kept[f].label} · {f}")
    try:
        steps = prepare(load(root, kept[file]))
    except (DrawingsError, UnsafeFileError, ValueError) as err:
        st.error(f"That drawing cannot be read: {plain(err)}", icon=":material/warning:")
        return None
    if steps is None:
        st.info("That drawing has no ink.", icon=":material/info:")
        return None
    return steps, f"your saved drawing {plain(file)} (labelled {kept[file].label})"


def _digit_picker(split: str, count: int) -> int:
    choices.picked_digit(count)  # within this split before the widget reads it: out of range would raise
    index_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    button_col.button("Random", key="explain_random", icon=":material/casino:", width="stretch",
                      on_click=lambda: choices.pick_digit(int(np.random.default_rng().integers(count)), split))
    return int(index_col.number_input(f"{split.capitalize()} digit (0–{count - 1})", min_value=0,
                                      max_value=count - 1, step=1, key=choices.INDEX_KEY))


def _preparation(model: ModelInFocus, steps: Preparation) -> None:
    st.markdown("##### 1 · From your drawing to the model's input")
    naive = steps.naive()
    answer = read_digit(model.network, naive)
    pictures(figures.preparation_pictures(steps, naive=(naive, answer)), "explain_preparation",
             figures.PREPARATION_TITLE)
    st.caption("MNIST digits were cropped to their ink, scaled to 20 px and centred by their centre of "
               f"mass; the whole canvas shrunk as it is (last) is read as **{answer}** — which is why "
               "the drawing is normalised the same way.")


def _exact(e: Explanation) -> None:
    st.markdown("##### 2 · Why: " + ("an exact explanation" if e.exact else "an approximation"))
    if e.exact:
        st.markdown("For this input the network acts as **a linear classifier with these templates**: "
                    "with its units' on/off pattern fixed, each logit is exactly the sum of the input "
                    "times its template, plus a bias — the linear classifier of the classic second "
                    "tutorial, made local.")
    else:
        st.markdown("With tanh or sigmoid units there is no exact linear form: the templates are the "
                    "gradients of the logits, and gradient × input **approximates** each pixel's part.")
    st.plotly_chart(figures.explanation_figure(e), key="explain_templates", theme=None, config=CHART_CONFIG)
    # A static table: a stroke redraws it, and the interactive grid costs the browser a canvas each time.
    st.table(logit_table(e), hide_index=True, border="horizontal", width="content")


def _hidden(model: ModelInFocus, e: Explanation) -> None:
    if not e.activations:
        return
    st.markdown("##### 3 · The hidden layers")
    st.plotly_chart(figures.activations_figure(e.activations, model.network.activation),
                    key="explain_activations", theme=None, config=CHART_CONFIG)
    top = e.top_units(e.digit)
    kernel = model.network.kernels[0]
    units = [u for u, _, _ in top]
    titles = [f"unit {u}<br>{a:.2f}<br>→ {c:+.2f}" for u, a, c in top]  # short lines: five fit at 1024 px
    tiles_col, large_col = st.columns([3, 2])
    with tiles_col:
        st.caption(f"The first-layer units that add most to the logit of {e.digit}: under each unit's "
                   "number, its output for this input → what it adds to the logit through the layers "
                   "above (its output times its effective weight to the logit). Click a tile to see it "
                   "large.")
        # The click is kept by a callback: while a run trains the figure changes on every rerun and
        # Streamlit would forget the chart's selection with it.
        st.plotly_chart(figures.unit_tiles_figure(kernel[:, units], units, titles), key="explain_units",
                        theme=None, on_select=_remember_unit, selection_mode=("points",), config=CHART_CONFIG)
    picked = st.session_state.get(UNIT_KEY)
    unit = picked if picked in units else units[0]
    with large_col:
        st.plotly_chart(figures.unit_figure(kernel, unit), key="explain_unit", theme=None, config=CHART_CONFIG)
        st.button(f"Open unit {unit} in Units", key="explain_open_unit", icon=":material/open_in_new:",
                  on_click=choices.open_unit, args=(1, unit))


def _remember_unit() -> None:
    picked = choices.clicked("explain_units")
    if picked:
        st.session_state[UNIT_KEY] = picked[0]


def _map(hidden_map: HiddenMap, model: ModelInFocus, e: Explanation, test_images: np.ndarray) -> None:
    st.markdown("##### 4 · Where it sits among the digits")
    here = hidden_map.represent(e.image)
    near = hidden_map.nearest(here)
    map_col, near_col = st.columns([3, 2])
    with map_col:
        st.plotly_chart(figures.hidden_map_figure(hidden_map, hidden_map.place(here), [i for i, _ in near],
                                                  _raster(hash(np.asarray(hidden_map.points).tobytes()), hidden_map)),
                        key="explain_map", theme=None, config=CHART_CONFIG)
    with near_col:
        pictures([figures.picture(test_images[i], f"a {int(hidden_map.labels[i])} · #{i}", NEIGHBOUR_SIDE)
                  for i, _ in near], "explain_neighbours", "Its five nearest test digits")
        st.caption("Nearest in the last hidden layer's space (distances "
                   + ", ".join(f"{d:.2f}" for _, d in near) + "), where the network has put what it learned; "
                   "the map is that space's two main directions (PCA over the test digits). While a run "
                   "trains, the map and this input's place on it use the weights of the last finished "
                   "epoch, refitted when an epoch ends, so that the axes do not jump between strokes.")


@derived(max_entries=4)
def _raster(points: int, _hidden_map: HiddenMap) -> figures.MapRaster:
    """The map's digits as an image, kept while the map stays (`points`, a hash of its points: one
    model state): a tenth of a stroke's figure work otherwise."""
    return figures.map_raster(_hidden_map)


def _attack(model: ModelInFocus, image: np.ndarray, target: int) -> Attack:
    """The attack, kept while the weights, the input and the target stay the same (up to 400 PGD
    steps: not on every unrelated rerun)."""
    network = model.network
    key = (hash(network.kernels[-1].tobytes()), hash(network.biases[-1].tobytes()), hash(image.tobytes()))
    return _attack_on(key, target, network, image)


@derived(max_entries=8)
def _attack_on(key: tuple, target: int, _network: Network, _image: np.ndarray) -> Attack:
    return attack(_network, _image, target)


def _change_its_mind(model: ModelInFocus, e: Explanation) -> None:
    st.markdown("##### 5 · Change its mind")
    choices = [NO_TARGET] + [str(d) for d in range(10) if d != e.digit]
    target = st.selectbox("Make it read", choices, key="explain_target",
                          help="A targeted attack: small steps on every pixel (at most ε each) in the "
                               "direction that raises the target's probability, with the smallest ε "
                               "that works")
    if target == NO_TARGET:
        st.caption("Pick a digit: the smallest change to the pixels that makes the network read it.")
        return
    found = _attack(model, e.image, int(target))
    noisy, noise_answer = noise_reading(model.network, e.image, found.epsilon)
    st.plotly_chart(figures.attack_figure(found, noisy, noise_answer), key="explain_attack", theme=None,
                    config=CHART_CONFIG)
    if found.epsilon is None:
        st.caption(f"Not even ε = {EPSILON_LADDER[-1]:g} made it read {target}.")
    else:
        st.caption(f"Changing each pixel by at most **{found.epsilon:g}** (of 1) makes it read "
                   f"**{found.digit}**; random changes of the same size leave it at **{noise_answer}**. "
                   "What the network relies on is not what we see.")
