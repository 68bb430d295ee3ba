"""Units: ablation, the digits a unit likes, its selectivity, its template and its dream, against
independent references (Keras with zeroed weights, brute-force sorts, hand-made units)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.explain import Network
from mlpdash.units import (
    Accuracy,
    LayerSummary,
    ablated,
    ablated_accuracy,
    ablation_curve,
    accuracy,
    broken,
    broken_accuracy,
    class_means,
    dream,
    extremes,
    importance,
    input_template,
    input_templates,
    lab_spec,
    layer_inputs,
    most_hurt,
    parse_units,
    readings,
    selectivity,
    template_source,
    unit_table,
    with_unit,
)


@pytest.fixture
def trained(trained_model, trained_network, tiny_data):
    """The session's small ReLU MLP (conftest) with its test digits. The tests read its layers' widths
    from the weights; they need two hidden layers, the first wider than 40 units."""
    assert len(trained_network.kernels) == 3 and trained_network.kernels[0].shape[1] > 40
    images = tiny_data.x_test.astype(np.float32) / 255.0
    return trained_model, trained_network, images, tiny_data.y_test


def test_switching_units_off_is_zeroing_their_weights_in_keras(trained):
    model, network, images, _ = trained
    off = [0, 5, 17, 40]
    weights = [w.copy() for w in model.get_weights()]
    weights[2][off, :] = 0.0  # the second kernel: what the first layer's units send on
    import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(weights)
    np.testing.assert_allclose(ablated(network, 1, off).logits(images), twin(images, training=False).numpy(),
                               rtol=1e-4, atol=1e-4)
    # ... and forcing their output to 0 in a forward pass of our own.
    h = np.maximum(images.reshape(-1, 784) @ network.kernels[0] + network.biases[0], 0)
    h[:, off] = 0
    h = np.maximum(h @ network.kernels[1] + network.biases[1], 0)
    np.testing.assert_allclose(ablated(network, 1, off).logits(images), h @ network.kernels[2] + network.biases[2],
                               rtol=1e-5, atol=1e-5)
    assert network.kernels[1][off].any()  # the trained model itself is untouched
    with pytest.raises(ValueError, match="layer 3 does not exist"):
        ablated(network, 3, [0])


def test_accuracy_overall_and_per_digit_is_a_direct_count(trained):
    _, network, images, labels = trained
    answers = network.logits(images).argmax(axis=1)
    result = accuracy(network, images, labels)
    assert result.overall == pytest.approx(np.mean(answers == labels))
    for digit in range(10):
        assert result.per_class[digit] == pytest.approx(np.mean(answers[labels == digit] == digit))
    everything_off = accuracy(ablated(network, 2, range(network.kernels[1].shape[1])), images, labels)
    assert everything_off.overall < 0.3  # the last layer's units all off: one constant answer


def test_switching_units_off_from_the_layers_inputs_gives_the_accuracy_of_the_ablated_model(trained):
    _, network, images, labels = trained
    for layer, off in ((1, [0, 5, 17, 40]), (2, [1, 2]), (1, [])):
        pre = layer_inputs(network, images, layer)
        assert ablated_accuracy(network, pre, labels, layer, off) == accuracy(ablated(network, layer, off), images,
                                                                              labels)
    ranking = np.arange(network.kernels[0].shape[1], dtype=np.float64)
    curve = ablation_curve(network, images, labels, 1, ranking, fractions=(0.0, 0.5, 1.0))
    assert curve["most important first"][0] == accuracy(network, images, labels).overall
    highest_half = np.argsort(-ranking, kind="stable")[: round(0.5 * len(ranking))]
    assert curve["most important first"][1] == accuracy(ablated(network, 1, highest_half), images, labels).overall
    # From the layer's inputs alone (as the page draws it), the same curve; from nothing, a clear error.
    assert ablation_curve(network, None, labels, 1, ranking, fractions=(0.0, 0.5, 1.0),
                          pre=layer_inputs(network, images, 1)) == curve
    with pytest.raises(ValueError, match="images or their layer inputs"):
        ablation_curve(network, None, labels, 1, ranking)
    with pytest.raises(ValueError, match="units must be 0 to"):
        ablated_accuracy(network, layer_inputs(network, images, 1), labels, 1, [10_000])
    # The importance from the layer's inputs is the one from the pixels.
    for layer in (1, 2):
        np.testing.assert_allclose(importance(network, images, labels, layer,
                                              layer_pre=layer_inputs(network, images, layer)),
                                   importance(network, images, labels, layer), rtol=1e-6)


def test_the_digits_a_unit_likes_most_and_least_are_a_sorted_order(trained):
    _, network, images, _ = trained
    pre = layer_inputs(network, images, 2)
    most, least = extremes(pre, 7)
    brute = sorted(range(len(images)), key=lambda i: pre[i, 7])
    assert least.tolist() == brute[:9] and most.tolist() == brute[::-1][:9]
    np.testing.assert_allclose(pre, network.forward(images)[0][1], rtol=1e-6)


def test_selectivity_of_constructed_units():
    one_class = np.zeros(10)
    one_class[3] = 2.0
    flat = np.ones(10)
    half = np.full(10, 0.5)
    half[0] = 1.0
    assert selectivity(one_class) == pytest.approx(1.0)
    assert selectivity(flat) == pytest.approx(0.0)
    assert selectivity(half) == pytest.approx(0.5 / 1.5)
    assert selectivity(np.zeros(10)) == 0.0  # never on: no preference
    means = class_means(np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 0.0]]), np.array([0, 0, 1]))
    assert means[0].tolist() == [2.0, 1.0] and means[1].tolist() == [5.0, 0.0] and np.isnan(means[2]).all()


def test_a_units_template_is_exact_for_relu(trained):
    _, network, images, _ = trained
    x = images[:3]
    templates = input_templates(network, x, 2, 5)
    # Brute force for one image: W1 D1 w2 (D1 the first layer's on/off pattern).
    on = (x[0].reshape(784) @ network.kernels[0] + network.biases[0]) > 0
    brute = network.kernels[0] @ (on * network.kernels[1][:, 5])
    np.testing.assert_allclose(templates[0], brute, rtol=1e-4, atol=1e-6)
    # Exact: a small step along any direction moves the unit's input by template . step.
    step = np.random.default_rng(0).normal(0, 1e-4, 784).astype(np.float32)
    before = layer_inputs(network, x[:1], 2)[0, 5]
    after = layer_inputs(network, (x[0].reshape(784) + step).reshape(1, 28, 28), 2)[0, 5]
    assert after - before == pytest.approx(float(templates[0] @ step), rel=1e-2, abs=1e-6)
    first, averaged = input_template(network, images, 1, 4)
    np.testing.assert_array_equal(first.ravel(), network.kernels[0][:, 4])
    deeper, count = input_template(network, images, 2, 5)
    assert deeper.shape == (28, 28) and count == int(np.sum(layer_inputs(network, images, 2)[:, 5] > 0))


def test_what_a_unit_wants_to_see_drives_it_harder_than_any_test_digit(trained):
    _, network, images, _ = trained
    for layer, unit in ((1, 3), (2, 11)):
        pre = layer_inputs(network, images, layer)[:, unit]
        wanted = dream(network, layer, unit)
        assert wanted.shape == (28, 28) and 0.0 <= wanted.min() and wanted.max() <= 1.0
        reached = layer_inputs(network, wanted[None], layer)[0, unit]
        assert reached > pre.max(), (layer, unit, reached, pre.max())


def test_the_units_ranked_important_matter_more_than_the_ones_ranked_least(trained):
    _, network, images, labels = trained
    width = network.kernels[0].shape[1]
    ranking = importance(network, images, labels, 1)
    assert ranking.shape == (width,) and np.all(ranking >= 0)
    top = parse_units("top:12", width, ranking)
    bottom = parse_units("bottom:12", width, ranking)
    assert set(top).isdisjoint(bottom)
    assert accuracy(ablated(network, 1, top), images, labels).overall < \
        accuracy(ablated(network, 1, bottom), images, labels).overall


@pytest.mark.parametrize(("spec", "expected"), [
    ("3,7,2", [2, 3, 7]),
    ("all", list(range(8))),
    ("random:50%", None),
    ("random:3", None),
    ("top:2", [5, 7]),
    ("bottom:1", [0]),
])
def test_unit_specs(spec, expected):
    ranking = np.array([0.0, 1, 2, 3, 4, 9, 5, 8])
    units = parse_units(spec, 8, ranking)
    if expected is not None:
        assert units == expected
    else:
        assert len(units) == (4 if spec.endswith("%") else 3) and units == sorted(set(units))


@pytest.mark.parametrize("spec", ["9", "-1", "a,b", "top:x", "random:200%", "top:3x", ""])
def test_bad_unit_specs_say_what_is_wrong(spec):
    with pytest.raises(ValueError, match="unit|units|number|possible"):
        parse_units(spec, 8, np.zeros(8))


def test_breaking_it_on_purpose(trained):
    from mlpdash.units import broken, quantised

    _, network, images, labels = trained
    same = broken(network)
    np.testing.assert_array_equal(same.logits(images[:5]), network.logits(images[:5]))
    assert all(not b.any() for b in broken(network, zero_biases=True).biases)
    assert all(b.any() for b in network.biases[:1])  # the trained model untouched
    off = broken(network, zero_layer=2)
    np.testing.assert_allclose(off.logits(images[:5]), np.broadcast_to(network.biases[-1], (5, 10)), atol=1e-6)
    noisy = broken(network, noise=0.5, seed=1)
    spread = network.kernels[0].std()
    assert 0.4 * spread < (noisy.kernels[0] - network.kernels[0]).std() < 0.6 * spread
    kernel = network.kernels[1]
    for bits in (2, 3, 8):
        q = quantised(kernel, bits)
        assert len(np.unique(q)) <= 2**bits - 1 and 0.0 in np.unique(q)
        assert np.abs(q - kernel).max() <= np.abs(kernel).max() / (2 ** (bits - 1) - 1) / 2 + 1e-6
    assert len(np.unique(quantised(kernel, 1))) <= 3
    eight_bits = accuracy(broken(network, bits=8), images, labels).overall
    assert abs(eight_bits - accuracy(network, images, labels).overall) < 0.02  # 8 bits: as good as float32
    with pytest.raises(ValueError, match="1 to 16 bits"):
        broken(network, bits=0)


def test_selectivity_of_units_whose_output_can_be_negative():
    tanh_like = np.full(10, -0.9)
    tanh_like[4] = 0.01  # it answers 4, and is pushed down by everything else alike
    assert selectivity(tanh_like) == pytest.approx(1.0)
    assert selectivity(np.full(10, -0.5)) == pytest.approx(0.0)  # the same for every digit
    assert selectivity(np.linspace(-1, 1, 10)) < 1.0


# --- what the page shows, computed headless


def _two_units() -> Network:
    """784-2-10, ReLU: unit 0 sees the top-left pixel and argues for 3; unit 1 sees every pixel, and
    argues for 5 half as hard. A bright top-left pixel reads 3; without unit 0 it reads 5."""
    first = np.zeros((784, 2), np.float32)
    first[0, 0], first[:, 1] = 1.0, 1.0 / 784
    second = np.zeros((2, 10), np.float32)
    second[0, 3], second[1, 5] = 2.0, 1.0
    return Network((first, second), (np.zeros(2, np.float32), np.zeros(10, np.float32)))


def test_the_unit_list_has_a_row_a_unit_with_its_favourite_digit():
    means = np.zeros((10, 3))
    means[7, 0], means[2, 1], means[:, 2] = 1.0, 0.5, np.nan
    means[4, 2] = 0.2  # NaN for the digits the split lacks: the favourite is among the others
    summary = LayerSummary(means, np.array([0.91234, 0.5, 0.0]), np.array([0.123456, 0.0, 1.0]),
                           np.array([1.23456, 2.0, 3.0]))
    rows = unit_table(summary)
    assert [row["favourite digit"] for row in rows] == [7, 2, 4]
    assert rows[0] == {"unit": 0, "favourite digit": 7, "selectivity": 0.912, "importance": 0.123456,
                       "weight norm": 1.235}


def test_a_units_template_says_what_it_is():
    assert template_source(1, "relu", 0) == "its weights"
    assert template_source(2, "relu", 1234) == "its exact template averaged over the 1,234 test digits that switch it on"
    assert template_source(2, "tanh", 50).startswith("its gradient with respect to the pixels (an approximation for tanh)")


def test_the_digit_a_unit_matters_most_to_is_the_largest_fall():
    intact = Accuracy(0.9, (0.9, 0.8, None, 0.7) + (0.9,) * 6)
    off = Accuracy(0.8, (0.95, 0.6, 0.5, 0.5) + (0.9,) * 6)
    assert most_hurt(intact, off) == (1, pytest.approx(-0.2))  # 1 and 3 fall by 0.2: the smaller digit
    assert most_hurt(intact, intact) is None  # no digit loses
    assert most_hurt(intact, Accuracy(0.95, (1.0,) * 10)) is None
    assert most_hurt(Accuracy(0.0, (None,) * 10), off) is None


def test_a_drawing_is_read_before_and_after_as_each_network_reads_it():
    network = _two_units()
    image = np.zeros((28, 28), np.float32)
    image[0, 0] = 1.0
    assert readings(network, ablated(network, 1, [0]), image) == (3, 5)
    assert readings(network, network, image) == (3, 3)
    blank = np.zeros((28, 28), np.float32)
    assert readings(network, network, blank) == (int(np.argmax(network.logits(blank[None])[0])),) * 2


def test_breaking_nothing_is_not_measured_again():
    network = _two_units()
    images = np.zeros((4, 28, 28), np.float32)
    images[:2, 0, 0] = 1.0
    labels = np.array([3, 3, 5, 0])
    intact = accuracy(network, images, labels)
    same, result = broken_accuracy(network, images, labels, intact)
    assert result is intact
    np.testing.assert_array_equal(same.logits(images), network.logits(images))
    damaged, result = broken_accuracy(network, images, labels, intact, zero_layer=1)
    assert result == accuracy(broken(network, zero_layer=1), images, labels) and result.overall < intact.overall
    for how in ({"zero_biases": True}, {"noise": 0.1}, {"bits": 4}):
        assert broken_accuracy(network, images, labels, intact, **how)[1] is not intact


def test_the_labs_choices_are_unit_specs():
    assert lab_spec("top", 10) == "top:10" and lab_spec("bottom", 3) == "bottom:3"
    assert lab_spec("random", 25) == "random:25%"
    assert parse_units(lab_spec("random", 50), 8) == parse_units("random:50%", 8)
    assert with_unit("", 4) == "4"
    assert with_unit("0, 1,2", 7) == "0,1,2,7"
    assert with_unit("3,7,", 7) == "3,7"  # once

