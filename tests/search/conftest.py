"""A small trained digits CNN and its evaluator, shared by the search tests."""

from __future__ import annotations

import pytest

from quantscope import data, models, search
from quantscope.train import TrainConfig, train


@pytest.fixture(scope="session")
def digits_model():
    tr, te = data.load("digits", "train"), data.load("digits", "test")
    model = models.create("digits-cnn", seed=0)
    train(model, tr, TrainConfig(epochs=8, batch_size=32, lr=0.05))
    return model, tr, te


@pytest.fixture(scope="session")
def evaluator(digits_model):
    model, tr, te = digits_model
    return search.Evaluator(model, te, costs=("traffic", "energy_uj"), calibration=tr.tensors(limit=256)[0])
