"""Units: what each hidden unit responds to, and what breaks when it is switched off.

Everything runs on the weights as NumPy arrays (`explain.Network`). Hidden layers are numbered from 1
(the first, fed by the 784 pixels); a unit is switched off by zeroing its outgoing weights, which is
exactly forcing its output to zero, so an ablated model is just another `Network` and the trained
model is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlpdash.explain import ACTIVATIONS, DERIVATIVES, Network, read_digit
from mlpdash.mnist import NUM_CLASSES

EVAL_BATCH = 2048
TOP = 9  # digits shown for what excites a unit most, and for what it ignores
# Gradient ascent ("what it wants to see"): start from a uniform grey, small steps up the unit's input,
# each followed by a decay towards grey (L2) and, every few steps, a blur, so that the result is a
# stroke rather than pixel noise.
DREAM_START = 0.1
DREAM_STEPS = 200
DREAM_STEP = 0.05  # the largest change of any pixel in one step
DREAM_DECAY = 0.01
DREAM_BLUR_EVERY = 4


@dataclass(frozen=True)
class Accuracy:
    """Accuracy on a split: overall and per digit (None for a digit the split lacks)."""

    overall: float
    per_class: tuple[float | None, ...]


def check_layer(network: Network, layer: int) -> int:
    """The number of units of hidden layer `layer` (1-based); ValueError if there is no such layer."""
    sizes = network.hidden_sizes
    if not 1 <= layer <= len(sizes):
        raise ValueError(f"layer {layer} does not exist: the model has {len(sizes)} hidden layer(s), 1 to {len(sizes)}"
                         if sizes else "the model has no hidden layer: its only units are the ten outputs")
    return sizes[layer - 1]


def ablated(network: Network, layer: int, units: Sequence[int]) -> Network:
    """The network with the `units` of hidden layer `layer` switched off (their output forced to 0)."""
    count = check_layer(network, layer)
    units = np.asarray(list(units), np.int64)
    if units.size and (units.min() < 0 or units.max() >= count):
        raise ValueError(f"units must be 0 to {count - 1} in layer {layer}")
    kernels = list(network.kernels)
    outgoing = kernels[layer].copy()
    outgoing[units, :] = 0.0
    kernels[layer] = outgoing
    return Network(tuple(kernels), network.biases, network.activation)


def accuracy(network: Network, images: np.ndarray, labels: np.ndarray) -> Accuracy:
    """Accuracy on `images` ([N, 28, 28] in [0, 1]) in batches, overall and per digit."""
    answers = np.concatenate([network.logits(images[i : i + EVAL_BATCH]).argmax(axis=1)
                              for i in range(0, len(images), EVAL_BATCH)]) if len(images) else np.zeros(0, np.int64)
    return _scored(answers, labels)


def ablated_accuracy(network: Network, pre: np.ndarray, labels: np.ndarray, layer: int,
                     units: Sequence[int]) -> Accuracy:
    """What `accuracy(ablated(network, layer, units), images, labels)` gives, from the layer's
    pre-activations `pre` for those images (`layer_inputs`): the layers below are not computed again,
    which in the first layer is most of the work (784 inputs a unit). Switching a unit off zeroes its
    output, exactly as zeroing its outgoing weights does."""
    count = check_layer(network, layer)
    units = np.asarray(list(units), np.int64)
    if units.size and (units.min() < 0 or units.max() >= count):
        raise ValueError(f"units must be 0 to {count - 1} in layer {layer}")
    act = ACTIVATIONS[network.activation]
    answers = []
    for i in range(0, len(pre), EVAL_BATCH):
        h = act(pre[i : i + EVAL_BATCH])
        h[:, units] = 0.0
        for kernel, bias in zip(network.kernels[layer:-1], network.biases[layer:-1]):
            h = act(h @ kernel + bias)
        answers.append((h @ network.kernels[-1] + network.biases[-1]).argmax(axis=1))
    return _scored(np.concatenate(answers) if answers else np.zeros(0, np.int64), labels)


def _scored(answers: np.ndarray, labels: np.ndarray) -> Accuracy:
    labels = np.asarray(labels, np.int64)
    right = answers == labels
    per_class = tuple(float(right[labels == d].mean()) if np.any(labels == d) else None for d in range(NUM_CLASSES))
    return Accuracy(float(right.mean()) if right.size else 0.0, per_class)


def layer_inputs(network: Network, images: np.ndarray, layer: int) -> np.ndarray:
    """[N, units]: hidden layer `layer`'s pre-activations (its units' inputs, before the ReLU)."""
    check_layer(network, layer)
    pre = np.concatenate([network.forward(images[i : i + EVAL_BATCH])[0][layer - 1]
                          for i in range(0, len(images), EVAL_BATCH)])
    return pre


def extremes(pre: np.ndarray, unit: int, count: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """(the `count` digits that drive `unit` hardest, most first; the `count` that drive it most
    negative, most negative first), as indices, from the layer's pre-activations `pre` [N, units]."""
    column = pre[:, unit]
    order = np.argsort(column, kind="stable")
    return order[::-1][:count], order[:count]


def class_means(post: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[10, units]: each unit's mean output over the digits of each class (NaN for a class absent)."""
    labels = np.asarray(labels, np.int64)
    means = np.full((NUM_CLASSES, post.shape[1]), np.nan)
    for digit in range(NUM_CLASSES):
        chosen = labels == digit
        if np.any(chosen):
            means[digit] = post[chosen].mean(axis=0)
    return means


def selectivity(means: np.ndarray) -> np.ndarray:
    """How much a unit prefers one class, from its mean output per class [10] (or [10, units]):
    (best - mean of the others) / (best + mean of the others). 0: it answers every class alike;
    1: it answers one class only. (The selectivity index of neuroscience, for outputs >= 0; a unit
    with negative means is measured from its lowest.)"""
    means = np.asarray(means, np.float64)
    # Outputs that can be negative (tanh): measured from the unit's lowest mean, as if it were 0.
    lowest = np.nanmin(means, axis=0) if means.size else 0.0
    means = np.nan_to_num(means - np.minimum(lowest, 0.0), nan=0.0)
    best = means.max(axis=0)
    others = (means.sum(axis=0) - best) / (means.shape[0] - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(best + others > 0, (best - others) / (best + others), 0.0)


def input_templates(network: Network, images: np.ndarray, layer: int, unit: int) -> np.ndarray:
    """[N, 784]: for each image, the gradient of `unit`'s input (pre-activation) with respect to the
    pixels. For ReLU this is exact: with the units' on/off pattern of that image fixed, the unit's
    input is that template times the image plus a constant."""
    count = check_layer(network, layer)
    if not 0 <= unit < count:
        raise ValueError(f"unit {unit} is out of range: layer {layer} has {count} units")
    pre, _, _ = network.forward(images)
    derivative = DERIVATIVES[network.activation]
    grad = np.broadcast_to(network.kernels[layer - 1][:, unit], (len(pre[0]), network.kernels[layer - 1].shape[0]))
    grad = np.asarray(grad, np.float32)
    for below in range(layer - 1, 0, -1):  # down through the hidden layers under it
        grad = (grad * derivative(pre[below - 1])) @ network.kernels[below - 1].T
    return grad


def input_template(network: Network, images: np.ndarray, layer: int, unit: int) -> tuple[np.ndarray, int]:
    """(the unit's input template [28, 28], the number of digits it was averaged over). A first-layer
    unit's template is its weights; a deeper unit's is its exact template (see `input_templates`)
    averaged over the digits that switch it on."""
    if layer == 1:
        check_layer(network, 1)
        return network.kernels[0][:, unit].reshape(28, 28).astype(np.float32), 0
    pre = layer_inputs(network, images, layer)[:, unit]
    on = np.flatnonzero(pre > 0) if network.activation == "relu" else np.argsort(pre)[::-1][: max(1, len(pre) // 10)]
    if not on.size:
        on = np.argsort(pre)[::-1][:TOP]  # a unit never on: the digits that come closest
    return input_templates(network, images[on], layer, unit).mean(axis=0).reshape(28, 28), int(on.size)


def dream(network: Network, layer: int, unit: int, steps: int = DREAM_STEPS) -> np.ndarray:
    """An image in [0, 1] that drives `unit`'s input up: gradient ascent from a uniform grey, each
    step followed by a decay towards grey and, every few steps, a blur (so a stroke, not noise)."""
    x = np.full((1, 28, 28), DREAM_START, np.float32)
    for step in range(steps):
        grad = input_templates(network, x, layer, unit)[0].reshape(28, 28)
        scale = float(np.abs(grad).max())
        if scale == 0:
            break
        x[0] += DREAM_STEP * grad / scale
        x[0] -= DREAM_DECAY * (x[0] - DREAM_START)
        if step % DREAM_BLUR_EVERY == DREAM_BLUR_EVERY - 1:
            x[0] = _blur(x[0])
        np.clip(x, 0.0, 1.0, out=x)
    return x[0]


def _blur(image: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur, edges repeated."""
    padded = np.pad(image, 1, mode="edge")
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def importance(network: Network, images: np.ndarray, labels: np.ndarray, layer: int,
               layer_pre: np.ndarray | None = None) -> np.ndarray:
    """[units]: how much each unit of `layer` matters to the right answers, as a first-order estimate
    of what switching it off costs: the mean over the digits of |output x d(loss)/d(output)| (Taylor
    importance; switching every unit off one at a time would take minutes). `layer_pre`: the layer's
    inputs for `images` (`layer_inputs`), when already computed: the layers below are then skipped."""
    count = check_layer(network, layer)
    total = np.zeros(count, np.float64)
    derivative = DERIVATIVES[network.activation]
    for start in range(0, len(images) if layer_pre is None else len(layer_pre), EVAL_BATCH):
        if layer_pre is None:
            pre, post, logits = network.forward(images[start : start + EVAL_BATCH])
        else:
            pre, post, logits = _forward_from(network, layer_pre[start : start + EVAL_BATCH], layer)
        y = np.asarray(labels[start : start + EVAL_BATCH], np.int64)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        grad = shifted / shifted.sum(axis=1, keepdims=True)
        grad[np.arange(len(y)), y] -= 1.0  # d(cross-entropy)/d(logits)
        grad = grad @ network.kernels[-1].T
        for above in range(len(network.kernels) - 2, layer - 1, -1):
            grad = (grad * derivative(pre[above])) @ network.kernels[above].T
        total += np.abs(post[layer - 1] * grad).sum(axis=0)
    return total / max(1, len(images))


def _forward_from(network: Network, layer_pre: np.ndarray, layer: int
                  ) -> tuple[list[np.ndarray | None], list[np.ndarray | None], np.ndarray]:
    """Network.forward's (pre-activations, activations, logits) from hidden layer `layer`'s inputs on:
    the entries of the layers below are None."""
    act = ACTIVATIONS[network.activation]
    pre: list[np.ndarray | None] = [None] * (layer - 1) + [layer_pre]
    post: list[np.ndarray | None] = [None] * (layer - 1) + [act(layer_pre)]
    for kernel, bias in zip(network.kernels[layer:-1], network.biases[layer:-1]):
        pre.append(post[-1] @ kernel + bias)
        post.append(act(pre[-1]))
    return pre, post, post[-1] @ network.kernels[-1] + network.biases[-1]


def parse_units(spec: str, count: int, ranking: np.ndarray | None = None, seed: int = 0) -> list[int]:
    """Units from a spec: '3,17,200', 'top:50' (the 50 most important by `ranking`, highest first),
    'bottom:50', 'random:10%' or 'random:50', or 'all'. ValueError with a message otherwise."""
    spec = spec.strip()
    kind, _, amount = spec.partition(":")
    if spec == "all":
        return list(range(count))
    if kind in ("top", "bottom", "random") and amount:
        number = _amount(amount, count)
        if kind == "random":
            return sorted(np.random.default_rng(seed).choice(count, size=number, replace=False).tolist())
        if ranking is None:
            raise ValueError(f"'{spec}' needs the units ranked by importance")
        order = np.argsort(-np.asarray(ranking), kind="stable")
        return sorted((order[:number] if kind == "top" else order[::-1][:number]).tolist())
    try:
        units = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"'{spec}' is no unit list: use 3,17,200, top:50, bottom:50, random:10% or all") from None
    if not units or units[0] < 0 or units[-1] >= count:
        raise ValueError(f"units must be 0 to {count - 1} (got '{spec}')")
    return units


def _amount(text: str, count: int) -> int:
    try:
        number = round(float(text[:-1]) / 100 * count) if text.endswith("%") else int(text)
    except (ValueError, OverflowError):  # OverflowError: round(inf)
        raise ValueError(f"'{text}' is no number of units (50, or 10%)") from None
    if not 0 <= number <= count:
        raise ValueError(f"{text} of {count} units is not possible")
    return number


def lab_spec(mode: str, k: int) -> str:
    """The `parse_units` spec of the lab's "the k most / least important" ('top', 'bottom') and "a
    random k %" ('random') choices."""
    return f"{mode}:{int(k)}{'%' if mode == 'random' else ''}"


def with_unit(listed: str, unit: int) -> str:
    """A comma-separated list of units with `unit` added at its end (once; blanks dropped)."""
    units = [part.strip() for part in listed.split(",") if part.strip()]
    if str(unit) not in units:
        units.append(str(unit))
    return ",".join(units)


# The ablation curve: accuracy with these shares of a layer's units switched off.
CURVE_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class LayerSummary:
    """Per unit of one layer, for the sortable list: its mean output per class [10, units], its
    selectivity, its importance (the first-order cost of switching it off) and the length of its
    incoming weights."""

    means: np.ndarray
    selectivity: np.ndarray
    importance: np.ndarray
    weight_norm: np.ndarray


def summarise(network: Network, images: np.ndarray, labels: np.ndarray, layer: int,
              pre: np.ndarray | None = None) -> LayerSummary:
    """The layer's units at a glance; `pre`: its inputs for `images`, when already computed."""
    pre = layer_inputs(network, images, layer) if pre is None else pre
    means = class_means(ACTIVATIONS[network.activation](pre), labels)
    return LayerSummary(means, selectivity(means), importance(network, images, labels, layer, layer_pre=pre),
                        np.linalg.norm(network.kernels[layer - 1], axis=0))


def unit_table(summary: LayerSummary) -> list[dict[str, int | float]]:
    """The layer's units, one row each, for the sortable list: its favourite digit (highest mean
    output), selectivity and weight norm rounded to 3 places, importance as measured."""
    return [{"unit": u, "favourite digit": int(np.nanargmax(summary.means[:, u])),
             "selectivity": round(float(summary.selectivity[u]), 3), "importance": float(summary.importance[u]),
             "weight norm": round(float(summary.weight_norm[u]), 3)}
            for u in range(len(summary.selectivity))]


def template_source(layer: int, activation: str, averaged: int) -> str:
    """What a unit's input template (`input_template`) is, in words, for its caption."""
    if layer == 1:
        return "its weights"
    if activation == "relu":
        return f"its exact template averaged over the {averaged:,} test digits that switch it on"
    return (f"its gradient with respect to the pixels (an approximation for {activation}) "
            f"averaged over the {averaged:,} test digits that drive it hardest")


def most_hurt(intact: Accuracy, changed: Accuracy) -> tuple[int, float] | None:
    """The digit whose accuracy falls most from `intact` to `changed` (the smallest digit of a tie)
    and that change (< 0); None when no digit loses."""
    changes = [(after - before, digit) for digit, (after, before) in enumerate(zip(changed.per_class, intact.per_class))
               if after is not None and before is not None]
    worst, digit = min(changes) if changes else (0.0, 0)
    return (digit, worst) if worst < 0 else None


def readings(intact: Network, changed: Network, image: np.ndarray) -> tuple[int, int]:
    """The digit each network reads in one image ([28, 28] in [0, 1]): (intact, changed), the
    before and after of switching units off or breaking the model."""
    return read_digit(intact, image), read_digit(changed, image)


def ablation_curve(network: Network, images: np.ndarray | None, labels: np.ndarray, layer: int,
                   ranking: np.ndarray, fractions: Sequence[float] = CURVE_FRACTIONS, seed: int = 0,
                   pre: np.ndarray | None = None) -> dict[str, list[float]]:
    """Test accuracy with each share of the layer's units switched off: the most important first
    (by `ranking`), and a random order (the classic ablation curve). `pre`: the layer's inputs for
    the images, when already computed (then `images` may be None)."""
    count = check_layer(network, layer)
    if pre is None:
        if images is None:
            raise ValueError("ablation_curve needs the images or their layer inputs (pre)")
        pre = layer_inputs(network, images, layer)
    orders = {"most important first": np.argsort(-np.asarray(ranking), kind="stable"),
              "random": np.random.default_rng(seed).permutation(count)}
    return {name: [ablated_accuracy(network, pre, labels, layer, order[: round(f * count)]).overall
                   for f in fractions] for name, order in orders.items()}


# --- breaking it on purpose -------------------------------------------------------------------------


def broken(network: Network, *, zero_biases: bool = False, noise: float = 0.0, zero_layer: int | None = None,
           bits: int | None = None, seed: int = 0) -> Network:
    """A copy of the network broken on purpose: every bias zeroed; Gaussian noise of standard
    deviation `noise` times each layer's own weight spread added to the kernels; every unit of hidden
    layer `zero_layer` switched off; the kernels quantised to `bits` bits (uniform levels over each
    kernel's range, symmetric around zero)."""
    if bits is not None and not 1 <= bits <= 16:
        raise ValueError(f"quantise to 1 to 16 bits, not {bits}")
    if noise < 0:
        raise ValueError(f"noise is a size >= 0, not {noise}")
    rng = np.random.default_rng(seed)
    kernels = [k.copy() for k in network.kernels]
    biases = [np.zeros_like(b) if zero_biases else b.copy() for b in network.biases]
    for i, kernel in enumerate(kernels):
        if noise:
            kernel += rng.normal(0.0, noise * float(kernel.std()), kernel.shape).astype(np.float32)
        if bits is not None:
            kernels[i] = quantised(kernel, bits)
    result = Network(tuple(kernels), tuple(biases), network.activation)
    if zero_layer is not None:
        result = ablated(result, zero_layer, range(check_layer(result, zero_layer)))
    return result


def breaks_nothing(*, zero_biases: bool = False, noise: float = 0.0, zero_layer: int | None = None,
                   bits: int | None = None) -> bool:
    """Whether `broken` with these settings is the network as it is (its accuracy need not be
    measured again)."""
    return not zero_biases and not noise and zero_layer is None and bits is None


def broken_accuracy(network: Network, images: np.ndarray, labels: np.ndarray, intact: Accuracy, *,
                    zero_biases: bool = False, noise: float = 0.0, zero_layer: int | None = None,
                    bits: int | None = None) -> tuple[Network, Accuracy]:
    """The network `broken` with these settings and its accuracy on `images` (`intact`, the
    network's own, when nothing is broken)."""
    damaged = broken(network, zero_biases=zero_biases, noise=noise, zero_layer=zero_layer, bits=bits)
    if breaks_nothing(zero_biases=zero_biases, noise=noise, zero_layer=zero_layer, bits=bits):
        return damaged, intact
    return damaged, accuracy(damaged, images, labels)


def quantised(kernel: np.ndarray, bits: int) -> np.ndarray:
    """The kernel rounded to 2**bits - 1 levels spread evenly over [-max|w|, max|w|], zero one of them
    (as int8 does with 8 bits); 1 bit keeps only each weight's sign, times the mean |weight|."""
    magnitude = np.abs(kernel)
    top = float(magnitude.max())
    if top == 0:
        return kernel.copy()
    if bits == 1:
        return (np.sign(kernel) * magnitude.mean()).astype(np.float32)
    steps = 2 ** (bits - 1) - 1  # levels on each side of zero
    return (np.round(kernel / top * steps) / steps * top).astype(np.float32)
