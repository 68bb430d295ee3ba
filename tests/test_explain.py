"""Inside a prediction: each computation of mlpdash.explain against an independent reference (Keras'
own logits, finite differences, a brute-force SVD and search)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpdash.config import TrainConfig
from mlpdash.explain import (
    EPSILON_LADDER,
    Network,
    attack,
    explain,
    fit_map,
    logit_table,
    noise_reading,
    read_digit,
    representation,
    sign_noise,
)
from mlpdash.model import build_network, network_weights, to_model_input


@pytest.fixture
def trained(trained_model, trained_network):
    """The session's small ReLU MLP (conftest), as Keras model and as arrays."""
    assert len(trained_network.kernels) == 3  # two hidden layers: the tests below reach through both
    return trained_model, trained_network


@pytest.fixture(scope="module")
def digits(tiny_data):
    return to_model_input(tiny_data.x_test[:50]), tiny_data.y_test[:50]


def _keras_logits(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False))


def test_our_forward_pass_gives_keras_logits(trained, digits):
    model, network = trained
    images, _ = digits
    np.testing.assert_allclose(network.logits(images), _keras_logits(model, images), rtol=1e-4, atol=1e-4)


def test_for_relu_the_contribution_map_plus_the_effective_bias_is_exactly_the_logit(trained, digits):
    model, network = trained
    images, _ = digits
    reference = _keras_logits(model, images)
    for image, logits in zip(images[:20], reference):
        e = explain(network, image)
        assert e.exact
        for c in range(10):
            total = float(e.contributions(c).sum() + e.effective_bias[c])
            assert total == pytest.approx(float(logits[c]), rel=1e-4, abs=1e-4)
        assert e.digit == int(np.argmax(logits)) and e.runner_up != e.digit
        assert e.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_effective_template_is_the_network_itself_near_the_input(trained, digits):
    # Linear within the region where no unit switches: a small step along any direction changes the
    # logits by exactly template . step.
    _, network = trained
    image = digits[0][3]
    e = explain(network, image)
    rng = np.random.default_rng(0)
    step = rng.normal(size=784).astype(np.float32) * 1e-4
    moved = network.logits((image.ravel() + step)[None])[0]
    np.testing.assert_allclose(moved - e.logits, e.templates @ step, rtol=1e-2, atol=1e-5)


def test_tanh_gives_gradient_times_input_labelled_an_approximation(digits):
    config = TrainConfig(hidden=(16, 8), activation="tanh")
    model = build_network(config)
    network = Network.from_weights(network_weights(model), "tanh")
    image = digits[0][1]
    e = explain(network, image)
    assert not e.exact
    np.testing.assert_allclose(e.logits, _keras_logits(model, image[None])[0], rtol=1e-4, atol=1e-5)
    # The templates are the gradients: checked against central differences on a few pixels.
    flat = image.ravel().astype(np.float64)
    for pixel in (100, 350, 400, 600):
        h = 1e-3
        up, down = flat.copy(), flat.copy()
        up[pixel] += h
        down[pixel] -= h
        numeric = (network.logits(up[None].astype(np.float32))[0] - network.logits(down[None].astype(np.float32))[0]) / (2 * h)
        np.testing.assert_allclose(e.templates[:, pixel], numeric, rtol=2e-2, atol=2e-4)


def test_a_first_layer_units_share_is_its_output_times_its_effective_weight(trained, digits):
    _, network = trained
    image = digits[0][5]
    e = explain(network, image)
    c = e.digit
    top = e.top_units(c)
    assert len(top) == 5 and [u[2] for u in top] == sorted((u[2] for u in top), reverse=True)
    unit, activation, share = top[0]
    assert activation == pytest.approx(float(e.activations[0][unit])) and activation > 0
    # Finite difference on that unit's output, the later layers run by hand with the same masks.
    pre, post, _ = network.forward(image[None])
    h1 = post[0][0].astype(np.float64)

    def logits_from_first(h: np.ndarray) -> np.ndarray:
        z = h @ network.kernels[1] + network.biases[1]
        return np.maximum(z, 0) @ network.kernels[2] + network.biases[2]

    bumped = h1.copy()
    bumped[unit] += 1e-3
    slope = (logits_from_first(bumped)[c] - logits_from_first(h1)[c]) / 1e-3
    assert share == pytest.approx(activation * slope, rel=1e-2, abs=1e-5)
    assert e.active_units[0] == int(np.count_nonzero(post[0][0] > 0)) and len(e.active_units) == 2


def test_the_linear_model_is_its_own_template():
    config = TrainConfig(hidden=())
    model = build_network(config)
    network = Network.from_weights(network_weights(model), "relu")
    image = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    e = explain(network, image)
    assert e.exact and e.activations == () and e.top_units(0) == []
    np.testing.assert_allclose(e.templates, network.kernels[0].T, rtol=1e-6)
    np.testing.assert_allclose(e.effective_bias, network.biases[0], atol=1e-5)


def test_the_map_is_the_principal_plane_and_the_neighbours_the_nearest(trained, tiny_data):
    _, network = trained
    images = to_model_input(tiny_data.x_test[:300])
    labels = tiny_data.y_test[:300]
    hidden_map = fit_map(network, images, labels)
    features = representation(network, images).astype(np.float64)
    # Against a brute-force SVD of the whole centred matrix: the same two directions (up to sign).
    _, _, vt = np.linalg.svd(features - features.mean(axis=0), full_matrices=False)
    for k in range(2):
        assert abs(float(vt[k] @ hidden_map.axes[:, k])) == pytest.approx(1.0, abs=1e-3)
    assert hidden_map.explained[0] >= hidden_map.explained[1] > 0
    np.testing.assert_allclose(hidden_map.place(features[7]), hidden_map.points[7], atol=1e-3)
    # Against a brute-force search over every digit.
    query = representation(network, to_model_input(tiny_data.x_test[400:401]))[0]
    found = hidden_map.nearest(query, 5)
    brute = np.sqrt(((features - query) ** 2).sum(axis=1))
    assert [i for i, _ in found] == list(np.argsort(brute, kind="stable")[:5])
    np.testing.assert_allclose([d for _, d in found], np.sort(brute)[:5], rtol=1e-3, atol=1e-3)


def test_the_attack_reaches_the_target_within_its_budget_and_noise_of_that_size_does_not(trained, digits):
    model, network = trained
    images, _ = digits
    rng = np.random.default_rng(3)
    reached, noise_changed = 0, 0
    for image in images[:10]:
        answer = int(np.argmax(network.logits(image[None])[0]))
        target = int((answer + 1 + rng.integers(9)) % 10)
        result = attack(network, image, target)
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0
        if result.epsilon is None:
            continue
        reached += 1
        assert result.epsilon in EPSILON_LADDER
        assert np.abs(result.change).max() <= result.epsilon + 1e-6
        # The model itself (Keras, not our forward pass) answers the target for the changed image.
        assert int(np.argmax(_keras_logits(model, result.image[None])[0])) == target == result.digit
        before = int(np.argmax(_keras_logits(model, image[None])[0]))
        noisy = sign_noise(image, result.epsilon, rng)
        noise_changed += int(np.argmax(_keras_logits(model, noisy[None])[0])) != before
    assert reached >= 8
    assert noise_changed <= 2
    already = attack(network, images[0], int(np.argmax(network.logits(images[:1])[0])))
    assert already.epsilon == 0.0 and np.array_equal(already.image, already.original)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="kernel and bias pairs"):
        Network.from_weights([np.zeros((784, 10))])
    with pytest.raises(ValueError, match="do not chain"):
        Network.from_weights([np.zeros((784, 5)), np.zeros(5), np.zeros((4, 10)), np.zeros(10)])
    with pytest.raises(ValueError, match="not 10 logits"):
        Network.from_weights([np.zeros((784, 5)), np.zeros(5)])
    with pytest.raises(ValueError, match="unknown activation"):
        Network.from_weights([np.zeros((784, 10)), np.zeros(10)], "gelu")
    network = Network.from_weights([np.zeros((784, 10)), np.zeros(10)])
    with pytest.raises(ValueError, match="28x28"):
        network.logits(np.zeros((3, 27, 27)))
    with pytest.raises(ValueError, match="digit 0-9"):
        attack(network, np.zeros((28, 28)), 12)


def test_the_map_places_inputs_with_the_weights_it_was_fitted_with_and_handles_a_one_unit_layer(trained, digits):
    _, network = trained
    images, labels = digits
    hidden_map = fit_map(network, images, labels)
    moved = Network.from_weights([w * 1.5 for pair in zip(network.kernels, network.biases) for w in pair])
    assert hidden_map.network is network
    np.testing.assert_allclose(hidden_map.represent(images[4]), representation(network, images[4:5])[0])
    assert not np.allclose(hidden_map.represent(images[4]), representation(moved, images[4:5])[0])
    rng = np.random.default_rng(0)
    narrow = Network.from_weights([rng.normal(size=(784, 1)), np.zeros(1), rng.normal(size=(1, 10)), np.zeros(10)])
    line = fit_map(narrow, images, labels)
    assert line.points.shape == (len(images), 2) and np.all(line.points[:, 1] == 0)
    assert line.explained[1] == 0.0


# --- what the page shows, computed headless


def _random_network(activation: str, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, 0.05, (784, 16)), rng.normal(0, 0.1, 16), rng.normal(0, 0.3, (16, 10)),
               rng.normal(0, 0.1, 10)]
    return Network.from_weights(weights, activation)


def test_the_digit_read_is_the_largest_logit():
    network = _random_network("relu")
    images = np.random.default_rng(1).random((5, 28, 28)).astype(np.float32)
    assert [read_digit(network, image) for image in images] == network.logits(images).argmax(axis=1).tolist()


@pytest.mark.parametrize(("activation", "bias"), [("relu", "bias carried through (b_eff)"),
                                                  ("tanh", "remainder (logit − Σ, not a bias)")])
def test_the_logit_table_adds_up_to_the_logit_for_the_answer_and_the_runner_up(activation, bias):
    e = explain(_random_network(activation), np.random.default_rng(2).random((28, 28)).astype(np.float32))
    rows = logit_table(e)
    assert [row["digit"] for row in rows] == [e.digit, e.runner_up]
    for row in rows:
        assert list(row) == ["digit", "pixels' contributions (Σ)", bias, "sum", "logit"]
        assert row["sum"] == pytest.approx(row["pixels' contributions (Σ)"] + row[bias], abs=2e-4)
        assert row["sum"] == pytest.approx(row["logit"], abs=2e-4)
        assert row["logit"] == round(float(e.logits[row["digit"]]), 4)


def test_random_noise_as_large_as_the_attack_is_read_too():
    network = _random_network("relu")
    image = np.random.default_rng(3).random((28, 28)).astype(np.float32)
    noisy, answer = noise_reading(network, image, 0.1)
    np.testing.assert_array_equal(noisy, sign_noise(image, 0.1, np.random.default_rng(0)))
    assert answer == read_digit(network, noisy)
    assert noise_reading(network, image, None) == (None, None)  # no attack reached its target
    assert noise_reading(network, image, 0.0) == (None, None)  # none was needed

