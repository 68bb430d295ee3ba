"""Inside a prediction: why the network gives the answer it gives, for one 28x28 input.

A ReLU network is piecewise linear. For a given input the on/off pattern of its hidden units is fixed,
and with it the network *is* a linear classifier: every logit is exactly

    logit[c] = sum_i x[i] * J[i, c] + b_eff[c],    J = W1 D1 W2 D2 ... W_L

(D the diagonal 0/1 masks of the active units). J's columns are the input's effective templates and
`x * J[:, c]` says how much each pixel adds to class c's logit: the linear classifier of the classic
second tutorial, made local. For tanh or sigmoid there is no exact form; the same product with the
derivatives in place of the masks is the gradient, and gradient x input is an approximation.

Everything here runs on the weights as NumPy arrays (`Network`), with our own forward and backward
passes, so it needs no TensorFlow, costs a few milliseconds for one input, and works the same on the
live model mid-training (its weights copied) and on any saved run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpdash.mnist import NUM_CLASSES, PIXELS

TOP_UNITS = 5
NEIGHBOURS = 5
# The attack's budgets, smallest first: the answer is the first one at which the target is reached.
EPSILON_LADDER = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20, 0.25, 0.30)
ATTACK_STEPS = 40
# Each PGD step moves every pixel by this share of the budget (then the budget is enforced).
ATTACK_STEP_SHARE = 0.1
ATTACK_MARGIN = 0.5  # logits by which the target must lead before the attack stops early


@dataclass(frozen=True)
class Network:
    """An MLP as arrays: kernels [inputs, outputs] and biases [outputs] of each Dense layer in order
    (the last gives the 10 logits), and the hidden layers' activation."""

    kernels: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "relu"

    @classmethod
    def from_weights(cls, weights: Sequence[np.ndarray], activation: str = "relu") -> Network:
        """From `model.network_weights` order: kernel, bias, kernel, bias, ..."""
        if len(weights) < 2 or len(weights) % 2:
            raise ValueError(f"expected kernel and bias pairs, got {len(weights)} arrays")
        kernels = tuple(np.asarray(w, np.float32) for w in weights[0::2])
        biases = tuple(np.asarray(b, np.float32) for b in weights[1::2])
        size = PIXELS
        for kernel, bias in zip(kernels, biases):
            if kernel.ndim != 2 or kernel.shape[0] != size or bias.shape != (kernel.shape[1],):
                raise ValueError(f"layer shapes do not chain: kernel {kernel.shape}, bias {bias.shape} "
                                 f"after {size} units")
            size = kernel.shape[1]
        if size != NUM_CLASSES:
            raise ValueError(f"the last layer gives {size} outputs, not {NUM_CLASSES} logits")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: one of {', '.join(ACTIVATIONS)}")
        return cls(kernels, biases, activation)

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(k.shape[1] for k in self.kernels[:-1])

    @property
    def exact(self) -> bool:
        """Whether the local linear form is exact (ReLU, or no hidden layer at all)."""
        return self.activation == "relu" or not self.hidden_sizes

    def forward(self, images: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """(pre-activations, activations) of every hidden layer and the logits, for images
        [N, 28, 28] or [N, 784] in [0, 1]."""
        h = _flat(images)
        pre, post = [], []
        act = ACTIVATIONS[self.activation]
        for kernel, bias in zip(self.kernels[:-1], self.biases[:-1]):
            z = h @ kernel + bias
            h = act(z)
            pre.append(z)
            post.append(h)
        return pre, post, h @ self.kernels[-1] + self.biases[-1]

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.forward(images)[2]

    def backward(self, pre: list[np.ndarray], upstream: np.ndarray, to_layer: int = 0) -> np.ndarray:
        """d(upstream . logits)/d(x) for one input, where x is the image (`to_layer` 0) or hidden layer
        `to_layer`'s output (1-based): `upstream` [K, 10] rows sent back through the layers, with the
        derivatives at that input's pre-activations `pre`. Returns [K, size of x]. For ReLU and the
        image, row c is J[:, c], exactly the effective template of class c."""
        grad = np.asarray(upstream, np.float32)
        derivative = DERIVATIVES[self.activation]
        for layer in range(len(self.kernels) - 1, to_layer, -1):
            grad = (grad @ self.kernels[layer].T) * derivative(pre[layer - 1])
        return grad @ self.kernels[to_layer].T


@dataclass(frozen=True)
class Explanation:
    """One input through the network. `templates` [10, 784]: J's columns (ReLU: exact) or each logit's
    gradient; `effective_bias` [10]: logit - x . template (ReLU: the biases carried through the active
    units); `activations`: each hidden layer's output; `unit_contributions` [units, 10]: what each
    first-layer unit adds to each logit (its activation times its effective weight to the logit)."""

    image: np.ndarray  # [28, 28]
    logits: np.ndarray
    probabilities: np.ndarray
    exact: bool
    templates: np.ndarray
    effective_bias: np.ndarray
    activations: tuple[np.ndarray, ...]
    unit_contributions: np.ndarray | None

    @property
    def digit(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def runner_up(self) -> int:
        return int(np.argsort(self.logits)[-2])

    def contributions(self, digit: int) -> np.ndarray:
        """How much each pixel adds to `digit`'s logit, [28, 28]; with `effective_bias` it sums to the
        logit (exactly for ReLU)."""
        return (self.image.ravel() * self.templates[digit]).reshape(self.image.shape)

    def template(self, digit: int) -> np.ndarray:
        return self.templates[digit].reshape(self.image.shape)

    @property
    def active_units(self) -> tuple[int, ...]:
        """Units with a positive output in each hidden layer (for ReLU: the ones switched on)."""
        return tuple(int(np.count_nonzero(a > 0)) for a in self.activations)

    def top_units(self, digit: int, count: int = TOP_UNITS) -> list[tuple[int, float, float]]:
        """The first-layer units that add most to `digit`'s logit: (unit, activation, contribution)."""
        if self.unit_contributions is None:
            return []
        column = self.unit_contributions[:, digit]
        order = np.argsort(column)[::-1][:count]
        return [(int(u), float(self.activations[0][u]), float(column[u])) for u in order]


def read_digit(network: Network, image: np.ndarray) -> int:
    """The digit `network` reads in one image [28, 28] in [0, 1]."""
    return int(np.argmax(network.logits(np.asarray(image)[None])[0]))


def logit_table(e: Explanation) -> list[dict[str, float | int]]:
    """For the answer and the runner-up: the pixels' contributions summed, the bias part (carried
    through for ReLU; the remainder otherwise), their sum and the logit, to 4 places: the sum is the
    logit."""
    bias = "bias carried through (b_eff)" if e.exact else "remainder (logit − Σ, not a bias)"
    rows: list[dict[str, float | int]] = []
    for digit in (e.digit, e.runner_up):
        total = float(e.contributions(digit).sum())
        rows.append({"digit": digit, "pixels' contributions (Σ)": round(total, 4),
                     bias: round(float(e.effective_bias[digit]), 4),
                     "sum": round(total + float(e.effective_bias[digit]), 4),
                     "logit": round(float(e.logits[digit]), 4)})
    return rows


def explain(network: Network, image: np.ndarray) -> Explanation:
    """The exact local linear form (or gradient x input) of `network` at one 28x28 `image` in [0, 1]."""
    image = np.asarray(image, np.float32).reshape(28, 28)
    pre, post, logits = network.forward(image[None])
    logits = logits[0]
    one_input = [z[0] for z in pre]
    identity = np.eye(NUM_CLASSES, dtype=np.float32)
    templates = network.backward(one_input, identity)
    effective_bias = logits - templates @ image.ravel()
    units = None
    if post:
        # Each first-layer unit's effective weight to every logit (the logits sent back to that layer's
        # output, not into its own derivative); times the unit's output, it is the unit's share.
        units = post[0][0][:, None] * network.backward(one_input, identity, to_layer=1).T
    return Explanation(image, logits, _softmax(logits), network.exact, templates, effective_bias,
                       tuple(a[0] for a in post), units)


# --- where an input sits among the digits -------------------------------------------------------


@dataclass(frozen=True)
class HiddenMap:
    """A 2-D map of the last hidden layer (the logits for a network without one) for a set of digits:
    the two principal axes of their representations, fitted once per model state so that the axes do
    not move between strokes. `points` [N, 2] are the digits on it, `features` [N, units] their
    representations (for the nearest-neighbour search)."""

    network: Network  # the weights it was fitted with: inputs are placed with these, not newer ones
    mean: np.ndarray
    axes: np.ndarray  # [units, 2]
    explained: tuple[float, float]  # share of the variance along each axis
    features: np.ndarray
    squared_norms: np.ndarray
    points: np.ndarray
    labels: np.ndarray

    def represent(self, image: np.ndarray) -> np.ndarray:
        """An input's representation under the map's own weights (a live model's move on meanwhile)."""
        return representation(self.network, np.asarray(image, np.float32)[None])[0]

    def place(self, representation: np.ndarray) -> np.ndarray:
        """One input's representation [units] -> its point [2] on the map."""
        return (np.asarray(representation, np.float32) - self.mean) @ self.axes

    def nearest(self, representation: np.ndarray, count: int = NEIGHBOURS) -> list[tuple[int, float]]:
        """The `count` digits closest in the representation space: (index, distance), closest first."""
        h = np.asarray(representation, np.float32)
        distances = self.squared_norms - 2 * (self.features @ h) + float(h @ h)
        count = min(count, len(distances))
        pick = np.argpartition(distances, count - 1)[:count]
        pick = pick[np.argsort(distances[pick], kind="stable")]
        return [(int(i), float(np.sqrt(max(distances[i], 0.0)))) for i in pick]


def representation(network: Network, images: np.ndarray) -> np.ndarray:
    """The last hidden layer's output for `images` ([N, units]); the logits without a hidden layer."""
    _, post, logits = network.forward(images)
    return post[-1] if post else logits


def fit_map(network: Network, images: np.ndarray, labels: np.ndarray) -> HiddenMap:
    """PCA of the digits' representations, from the covariance (units x units: a thin SVD of the whole
    [N, units] matrix costs about 50 times more here)."""
    features = representation(network, images).astype(np.float32)
    mean = features.mean(axis=0)
    centred = features - mean
    covariance = (centred.T @ centred) / max(1, len(features) - 1)
    values, vectors = np.linalg.eigh(covariance.astype(np.float64))
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order].astype(np.float32)
    if axes.shape[1] < 2:  # a one-unit layer: a line, drawn along the first axis
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
        order = np.pad(order, (0, 2 - len(order)), constant_values=order[0])
    # An eigenvector's sign is arbitrary: fix it so that a refit of a similar model does not mirror.
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), range(axes.shape[1])] < 0, -1, 1)
    total = float(values.sum())
    explained = tuple(float(values[i] / total) if total > 0 and k < len(values) else 0.0
                      for k, i in enumerate(order))
    points = centred @ axes
    return HiddenMap(network, mean, axes, explained, features, np.einsum("ij,ij->i", features, features), points,
                     np.asarray(labels))


# --- changing its mind ------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    """The smallest budget on EPSILON_LADDER at which a targeted attack makes the network answer
    `target` (None: not reached on the ladder; 0: it already did), the changed image and its answer."""

    target: int
    epsilon: float | None
    original: np.ndarray  # [28, 28], in [0, 1]
    image: np.ndarray  # [28, 28], in [0, 1]
    digit: int

    @property
    def change(self) -> np.ndarray:
        return self.image - self.original


def attack(network: Network, image: np.ndarray, target: int, ladder: Sequence[float] = EPSILON_LADDER,
           steps: int = ATTACK_STEPS) -> Attack:
    """Targeted PGD under an L-infinity budget: for each budget on the ladder, smallest first, `steps`
    signed-gradient steps up the target's log-probability, each projected back into the budget and
    into [0, 1]; the first budget that reaches the target is the answer."""
    if not 0 <= target < NUM_CLASSES:
        raise ValueError(f"the target is a digit 0-9, got {target}")
    x0 = np.asarray(image, np.float32).reshape(PIXELS)
    if int(np.argmax(network.logits(x0[None])[0])) == target:
        return Attack(target, 0.0, x0.reshape(28, 28), x0.reshape(28, 28), target)
    last = x0
    for epsilon in ladder:
        x = _pgd(network, x0, target, float(epsilon), steps)
        digit = int(np.argmax(network.logits(x[None])[0]))
        if digit == target:
            return Attack(target, float(epsilon), x0.reshape(28, 28), x.reshape(28, 28), digit)
        last = x
    digit = int(np.argmax(network.logits(last[None])[0]))
    return Attack(target, None, x0.reshape(28, 28), last.reshape(28, 28), digit)


def _pgd(network: Network, x0: np.ndarray, target: int, epsilon: float, steps: int) -> np.ndarray:
    low, high = np.maximum(x0 - epsilon, 0.0), np.minimum(x0 + epsilon, 1.0)
    step = ATTACK_STEP_SHARE * epsilon
    x = x0.copy()
    goal = np.zeros(NUM_CLASSES, np.float32)
    goal[target] = 1.0
    for _ in range(steps):
        pre, _, logits = network.forward(x[None])
        # d log p_target / d logits = onehot(target) - p
        upstream = (goal - _softmax(logits[0]))[None]
        grad = network.backward([z[0] for z in pre], upstream)[0]
        x = np.clip(x + step * np.sign(grad), low, high)
        logits = network.logits(x[None])[0]
        # Reached with a margin: the answer then survives rounding the image to 8-bit pixels.
        if logits[target] - np.max(np.delete(logits, target)) >= ATTACK_MARGIN:
            break
    return x


def sign_noise(image: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Random +-epsilon on every pixel, kept in [0, 1]: a change as large as an attack's, aimed nowhere."""
    x = np.asarray(image, np.float32)
    return np.clip(x + epsilon * rng.choice(np.array([-1.0, 1.0], np.float32), size=x.shape), 0.0, 1.0)


def noise_reading(network: Network, image: np.ndarray, epsilon: float | None,
                  seed: int = 0) -> tuple[np.ndarray | None, int | None]:
    """`sign_noise` of an attack's size `epsilon` on the image and the digit the network reads in it:
    what a change as large as the attack's, aimed nowhere, does. (None, None) without a budget (no
    attack reached its target, or none was needed)."""
    if not epsilon:
        return None, None
    noisy = sign_noise(image, epsilon, np.random.default_rng(seed))
    return noisy, read_digit(network, noisy)


# --- shared pieces ------------------------------------------------------------------------------


def _flat(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.size == PIXELS:
        return x.reshape(1, PIXELS)
    if x.ndim == 3 and x.shape[1:] == (28, 28) or x.ndim == 2 and x.shape[1] == PIXELS:
        return x.reshape(len(x), PIXELS)
    raise ValueError(f"expected images of 28x28 = {PIXELS} pixels, got shape {x.shape}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64) - np.max(logits)
    e = np.exp(z)
    return (e / e.sum()).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * z) + 1.0)  # no overflow for large |z|


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}
DERIVATIVES = {
    "relu": lambda z: (z > 0).astype(np.float32),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
}
