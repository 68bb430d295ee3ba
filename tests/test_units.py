"""Units: ablation, the digits a unit likes, its selectivity, its template and its dream, against
independent references (Keras with zeroed weights, brute-force sorts, hand-made units)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.explain import Network
from mlpdash.training import Status, TrainingJob
from mlpdash.units import (
    ablated,
    accuracy,
    class_means,
    dream,
    extremes,
    importance,
    input_template,
    input_templates,
    layer_inputs,
    parse_units,
    selectivity,
)

SMALL = TrainConfig(hidden=(48, 24), epochs=3, batch_size=128)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    from mlpdash.model import network_weights

    job = TrainingJob(SMALL, tiny_data, tmp_path_factory.mktemp("runs"))
    job.start().join(120)
    assert job.snapshot().status == Status.FINISHED
    model = job.predictor.model
    images = tiny_data.x_test.astype(np.float32) / 255.0
    return model, Network.from_weights(network_weights(model)), images, tiny_data.y_test


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
    everything_off = accuracy(ablated(network, 2, range(24)), images, labels)
    assert everything_off.overall < 0.3  # the last layer's units all off: one constant answer


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
    ranking = importance(network, images, labels, 1)
    assert ranking.shape == (48,) and np.all(ranking >= 0)
    top = parse_units("top:12", 48, ranking)
    bottom = parse_units("bottom:12", 48, ranking)
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
