"""Every study config under experiments/configs is valid before anyone waits for it: it parses,
each run fits its study (costs it minimizes are measured, ...), and every op a run names exists
in the model (checked on the registered model's op table, without data or checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest

import quantscope as qs
from quantscope import models
from quantscope.study.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "configs").glob("*.yaml"))


def test_the_experiment_configs_are_found():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_experiment_config_is_valid(path):
    cfg, _ = load_config(path)
    assert cfg.model.name is not None, "experiment configs use registered networks"
    model = models.create(cfg.model.name, width=cfg.model.width, seed=0).eval()
    table = qs.layers(model, models.example_input(cfg.model.name))
    for run in cfg.runs:
        run.check(cfg)
        run.check_ops(table)
