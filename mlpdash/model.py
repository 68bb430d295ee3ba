"""The multilayer perceptron: built from a TrainConfig, compiled, exported as a SavedModel.

Inputs are float32 [N, 28, 28] in [0, 1] (raw pixels / 255); outputs are 10 logits. The model and its
optimizer are built inside a `tf.distribute` strategy scope so that the same code runs under the default
strategy on one CPU or GPU today and under a MirroredStrategy later.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mlpdash.config import TrainConfig
from mlpdash.mnist import IMAGE_SIDE as IMAGE_SIZE
from mlpdash.mnist import MAX_PIXEL, NUM_CLASSES, scale

FIRST_LAYER = "hidden_1"


def build_model(
    config: TrainConfig,
    steps_per_epoch: int,
    strategy: tf.distribute.Strategy | None = None,
) -> keras.Model:
    """The compiled MLP of `config`; `steps_per_epoch` sizes the learning-rate schedule."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_network(config)
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


@dataclasses.dataclass(frozen=True)
class SpareModel:
    """A compiled model whose job has ended, kept for the next job of the same graph.

    Every new compiled model traces a new training step, and TensorFlow keeps about 20 MB of native
    memory per traced step for the life of the process (measured: 19 MB a run with plain Keras,
    whatever clear_session or gc do; 1 MB a run when the compiled model is reused). A server where a
    class retrains the same settings all day must not grow by that each time.
    """

    key: tuple
    model: keras.Model
    optimizer_start: tuple[np.ndarray, ...]  # the optimizer's variables before its first step


def graph_key(config: TrainConfig, steps_per_epoch: int) -> tuple:
    """What fixes a compiled model's traced graph. The seed does not: a reused model is given the
    initial weights a fresh build of its config would have (`reuse_model`)."""
    return (dataclasses.replace(config, seed=TrainConfig.seed), steps_per_epoch)


def spare_model(model: keras.Model, key: tuple) -> SpareModel:
    """A freshly built compiled model made ready for reuse: its optimizer's variables are created now,
    as its first training step would, and their starting values kept."""
    model.optimizer.build(model.trainable_variables)
    return SpareModel(key, model, tuple(np.array(v.numpy()) for v in model.optimizer.variables))


def reuse_model(spare: SpareModel, config: TrainConfig) -> keras.Model:
    """`spare`'s model in the state `build_model(config, ...)` would return now: every layer variable
    (seed states included) taken from a fresh, uncompiled build, which draws the same random numbers a
    full build would, and the optimizer back to its start."""
    fresh = build_network(config)
    for target, source in zip(spare.model.variables, fresh.variables, strict=True):
        target.assign(source)
    for variable, start in zip(spare.model.optimizer.variables, spare.optimizer_start, strict=True):
        variable.assign(start)
    return spare.model


def build_network(config: TrainConfig) -> keras.Model:
    """The layers of `config`'s MLP, uncompiled (what a saved run's weights are loaded into)."""
    # Unseeded, Keras draws each initializer's and dropout layer's seed from Python's global `random`
    # as the layer is made: a thread of another library using `random` meanwhile (a Dask worker's
    # does) changed the weights of one run in a few. The same draws, from a generator of our own,
    # seeded as `keras.utils.set_random_seed` seeds the global one: the same weights as before.
    seeds = random.Random(config.seed)

    def seed() -> int:
        return seeds.randint(1, int(1e9))  # keras.random.make_default_seed's range

    layers: list[keras.layers.Layer] = [
        keras.Input((IMAGE_SIZE, IMAGE_SIZE), name="image"),
        keras.layers.Flatten(name="flatten"),
    ]
    for i, units in enumerate(config.hidden, start=1):
        layers.append(keras.layers.Dense(units, activation=config.activation, name=f"hidden_{i}",
                                         kernel_initializer=keras.initializers.GlorotUniform(seed()),
                                         bias_initializer="zeros"))
        if config.dropout > 0:
            layers.append(keras.layers.Dropout(config.dropout, name=f"dropout_{i}", seed=seed()))
    layers.append(keras.layers.Dense(NUM_CLASSES, name="logits", kernel_initializer=keras.initializers.GlorotUniform(seed()),
                                     bias_initializer="zeros"))
    return keras.Sequential(layers, name="mlp" if config.hidden else "linear")


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The constant rate, or a cosine decay from it to 0 over the whole run."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate,
        decay_steps=max(1, config.epochs * steps_per_epoch),
        alpha=0.0,
    )


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    rate = learning_rate(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum)
    return keras.optimizers.Adam(
        learning_rate=rate, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon
    )


def network_weights(model: keras.Model) -> list[np.ndarray]:
    """Every Dense layer's kernel and bias, in layer order, as float32 copies."""
    return [np.array(w, dtype=np.float32) for w in model.get_weights()]


def set_network_weights(model: keras.Model, weights: list[np.ndarray]) -> str | None:
    """Load `weights` (as `network_weights` lists them); the problem, or None when they fit."""
    expected = [tuple(w.shape) for w in model.weights]
    found = [tuple(np.shape(w)) for w in weights]
    if found != expected:
        return f"{len(found)} arrays of shapes {found[:6]}, expected {len(expected)} of {expected[:6]}"
    if not all(np.issubdtype(np.asarray(w).dtype, np.floating) for w in weights):
        return "the arrays are not floating-point numbers"
    model.set_weights([np.asarray(w, np.float32) for w in weights])
    return None


def first_layer_kernel(model: keras.Model) -> np.ndarray:
    """The first Dense layer's kernel, float32 [784, units] (units = 10 for the linear model)."""
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    return np.array(dense.kernel.numpy(), dtype=np.float32)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Raw uint8 MNIST pixels [N, 28, 28] -> the model's float32 input in [0, 1]."""
    return scale(images)


class _Serving(tf.Module):
    """Holds the Keras model so that the SavedModel tracks its variables."""

    def __init__(self, model: keras.Model) -> None:
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.uint8, name="images")])
    def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = self.model(tf.cast(images, tf.float32) / MAX_PIXEL, training=False)
        return {
            "probabilities": tf.nn.softmax(logits),
            "digit": tf.argmax(logits, axis=-1, output_type=tf.int64),
        }


def export_saved_model(model: keras.Model, path: Path) -> None:
    """A SavedModel whose `serving_default` takes raw uint8 `images` [N, 28, 28] and returns
    `probabilities` float32 [N, 10] and `digit` int64 [N], like the tutorial's export module."""
    module = _Serving(model)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
