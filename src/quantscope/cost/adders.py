"""Sakr et al.'s computational cost (one-bit full adders) and representational cost (bits).

A D-dimensional dot product of B_A-bit activations and B_W-bit weights costs
    D*B_A*B_W + (D - 1)*(B_A + B_W + ceil(log2 D) - 1)
full adders (Baugh-Wooley multipliers and a ripple-carry adder tree); a network's computational
cost sums this over every dot product, i.e. every output of every product op (lookups have none).
Its representational cost is |A|*B_A + |W|*B_W, over every activation (product-op operand) and
weight. B_A and B_W are the bit widths of each op's data and weight formats in the plan; for a
weight-free product (attention) B_W is its second operand's (rhs) width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UnsupportedFormat
from ..plan import LayerPrecision, PrecisionPlan
from .layers import ceil_log2, cost_layers

__all__ = ["dot_product_adders", "AdderCost", "adder_cost"]


def dot_product_adders(d: int, b_a: int, b_w: int) -> int:
    """Full adders of one D-dimensional dot product at (B_A, B_W) bits."""
    if d < 1 or b_a < 1 or b_w < 1:
        raise ValueError(f"dot product needs D, B_A, B_W >= 1, got {d}, {b_a}, {b_w}")
    return d * b_a * b_w + (d - 1) * (b_a + b_w + ceil_log2(d) - 1)


@dataclass(frozen=True)
class AdderCost:
    """Per-layer and total Sakr costs for one example."""

    per_layer: dict[str, tuple[int, int]]  # name -> (full adders, representational bits)

    @property
    def computational(self) -> int:
        return sum(fa for fa, _ in self.per_layer.values())

    @property
    def representational(self) -> int:
        return sum(bits for _, bits in self.per_layer.values())


def adder_cost(model: nn.Module, plan: PrecisionPlan | LayerPrecision | None, example_input: torch.Tensor) -> AdderCost:
    """Computational cost (full adders) and representational cost (bits) per example."""
    per = {}
    for c in cost_layers(model, plan, example_input):
        scaled = [str(f) for f in (c.precision.data, c.precision.weights, c.precision.rhs_format) if f.scale_sharing != "none"]
        if scaled and c.info.macs:
            raise UnsupportedFormat(f"op {c.name}: Sakr's full-adder count covers per-element fixed point, not the block-scaled {scaled[0]}")
        fa = c.info.outputs * dot_product_adders(c.fan_in, c.data_bits, c.operand_bits) if c.info.macs else 0
        per[c.name] = (fa, c.input_storage_bits + c.weight_storage_bits)
    return AdderCost(per)
