"""Sakr's full-adder cost on a hand-computed network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import quantscope as qs
from quantscope import cost


def test_sakr_full_adders_on_a_hand_computed_network():
    # Linear 3 -> 2 then Linear 2 -> 1: two dot products of D=3 and one of D=2
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    plan = qs.PrecisionPlan.uniform(weights="fixed<4,2>", data="fixed<6,3>")
    got = cost.adder_cost(net, plan, torch.zeros(1, 3))
    # D=3, B_A=6, B_W=4: 3*6*4 + 2*(6+4+2-1) = 72 + 22 = 94, twice; D=2: 2*24 + 1*(6+4+1-1) = 58
    assert cost.dot_product_adders(3, 6, 4) == 94 and cost.dot_product_adders(2, 6, 4) == 58
    assert got.computational == 2 * 94 + 58
    assert got.representational == (3 * 6 + 6 * 4) + (2 * 6 + 2 * 4)
    with pytest.raises(ValueError, match="D, B_A, B_W >= 1"):
        cost.dot_product_adders(0, 6, 4)
