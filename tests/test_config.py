"""TrainConfig: the tutorial defaults, validation with usable messages, and serialisation."""

from __future__ import annotations

import math

import pytest

from mlpdash.config import TrainConfig, config_from_form, parse_hidden, problems


def test_defaults_are_the_tutorial_recipe_with_cosine_decay():
    c = TrainConfig()
    assert c.hidden == (700, 500) and c.activation == "relu" and c.optimizer == "adam"
    assert (c.learning_rate, c.beta_1, c.beta_2, c.epsilon) == (1e-3, 0.9, 0.999, 1e-7)
    assert (c.batch_size, c.epochs, c.seed, c.dropout) == (128, 10, 22, 0.0)
    assert c.lr_schedule == "cosine"
    assert c.architecture == "784-700-500-10"
    assert TrainConfig(hidden=()).architecture == "784-10 linear"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"epochs": 0}, "epochs", "epochs must be 1 to"),
        ({"epochs": 2.5}, "epochs", "epochs must be 1 to"),
        ({"epochs": True}, "epochs", "epochs must be"),
        ({"batch_size": 0}, "batch_size", "batch size"),
        ({"learning_rate": 0}, "learning_rate", "learning rate must be above 0"),
        ({"learning_rate": math.nan}, "learning_rate", "learning rate"),
        ({"learning_rate": 50.0}, "learning_rate", "at most 10"),
        ({"train_digits": 50}, "train_digits", "or 100 to 1,000,000"),
        ({"dropout": 1.0}, "dropout", "below 1"),
        ({"dropout": -0.1}, "dropout", "at least 0"),
        ({"hidden": (700, 0)}, "hidden", "1 to 4096 units"),
        ({"hidden": (10, 10, 10, 10, 10)}, "hidden", "at most 4 hidden layers"),
        ({"hidden": "700"}, "hidden", "list of sizes"),
        ({"activation": "gelu"}, "activation", "relu, tanh, sigmoid"),
        ({"optimizer": "rmsprop"}, "optimizer", "adam, sgd"),
        ({"lr_schedule": "step"}, "lr_schedule", "cosine, constant"),
        ({"seed": -1}, "seed", "seed must be"),
        ({"momentum": 1.0}, "momentum", "momentum"),
    ],
)
def test_each_invalid_setting_is_named_with_what_is_allowed(changes, field, words):
    found = problems(changes)
    assert list(found) == [field]
    assert words in found[field]
    with pytest.raises(ValueError, match=words):
        TrainConfig(**changes)


def test_problems_lists_every_invalid_setting_at_once():
    found = problems({"epochs": 0, "batch_size": -3, "activation": "x"})
    assert set(found) == {"epochs", "batch_size", "activation"}
    assert problems({}) == {}


def test_valid_edges_are_accepted():
    TrainConfig(hidden=(), epochs=1, batch_size=1, dropout=0.0, learning_rate=1.0, seed=0)
    TrainConfig(hidden=(1, 2, 3, 4), activation="sigmoid", optimizer="sgd", lr_schedule="constant")


def test_dict_round_trip_and_unknown_keys():
    c = TrainConfig(hidden=(64,), dropout=0.2, seed=5)
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert TrainConfig.from_dict({**c.to_dict(), "hidden": [64]}).hidden == (64,)
    with pytest.raises(ValueError, match="unknown setting.*epoch"):
        TrainConfig.from_dict({"epoch": 3})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("700,500", (700, 500)), (" 64 , 32 ", (64, 32)), ("0", ()), ("", ()), ("none", ()), ("128", (128,))],
)
def test_parse_hidden(text, expected):
    assert parse_hidden(text) == expected


@pytest.mark.parametrize("text", ["abc", "700,,500", "7.5", "-3", "700;500"])
def test_parse_hidden_rejects_garbage(text):
    with pytest.raises(ValueError, match="comma-separated positive integers"):
        parse_hidden(text)


def test_config_from_form_collects_every_problem_per_field():
    config, found = config_from_form({"hidden": "700,abc", "epochs": 0, "learning_rate": 0.01})
    assert config is None
    assert set(found) == {"hidden", "epochs"}
    assert "comma-separated" in found["hidden"]
    config, found = config_from_form({"hidden": "64, 32", "epochs": 3, "dropout": 0.2})
    assert found == {} and config == TrainConfig(hidden=(64, 32), epochs=3, dropout=0.2)


def test_the_recipe_line_names_what_runs_are_compared_by():
    assert TrainConfig().recipe == "784-700-500-10 relu · adam, learning rate 0.001, cosine · batch 128 · 10 epochs"
    assert TrainConfig(hidden=(), epochs=1, dropout=0.5, train_digits=1000, learning_rate=5e-05).recipe == (
        "784-10 linear · adam, learning rate 5e-05, cosine · batch 128 · 1 epoch · dropout 0.5 · 1,000 training digits")
