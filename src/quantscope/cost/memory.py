"""Memory footprint (bits stored) and memory traffic (Judd et al.) under a precision plan.

Traffic accounting (Judd et al., Section 2.4 and Table 2): compute layers are grouped into Judd's
layers (a compute stage with the pooling and element-wise stages after it; see `layers`). Every
tensor that crosses a group boundary is written once by the group that produces it and read once
by the group that consumes it, stored in the format its consumer quantizes it to (the consumer's
`data` format: quantscope's plans name a layer's *input* format). The network input is read once
at the first group's data width and the network output written once at `output_bits`.
Weights and biases are read once per image (single-image use case) or once per batch (batch use
case: per image divided by the batch size). TR is the traffic over the same accounting at 32
bits everywhere.

Judd's Table 2 gives per-layer widths of the data each layer *writes*, the first layer's also for
the input image; `judd_plan` turns such a list into this accounting's plan (layer k+1's input
format is layer k's width), which reproduces the published traffic ratios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..emulate import _eval_mode
from ..formats import FixedPoint
from ..plan import LayerPrecision, PrecisionPlan
from .layers import CostLayer, cost_layers


@dataclass(frozen=True)
class FootprintRow:
    """Bits stored for one layer: parameters once, data per example (the layer's input)."""

    name: str
    weight_bits: int
    bias_bits: int
    data_bits: int

    @property
    def parameter_bytes(self) -> float:
        return (self.weight_bits + self.bias_bits) / 8


def footprint(model: nn.Module, plan: PrecisionPlan | LayerPrecision | None, example_input: torch.Tensor) -> list[FootprintRow]:
    """Per-layer storage in bits: weights, bias, and the layer's input data per example."""
    return [
        FootprintRow(c.name, c.info.weights * c.weight_bits, c.info.bias * c.bias_bits, c.info.inputs * c.data_bits)
        for c in cost_layers(model, plan, example_input)
    ]


@dataclass(frozen=True)
class GroupTraffic:
    """One Judd layer: elements and bits moved per image."""

    group: str
    data_reads: int
    data_writes: int
    weight_reads: float
    data_bits: int
    weight_bits: float
    data_bits_32: int
    weight_bits_32: float


@dataclass(frozen=True)
class Traffic:
    """Per-group traffic and totals per image; ratios against 32 bits everywhere."""

    groups: list[GroupTraffic]
    batch_size: int | None

    @property
    def data_bits(self) -> int:
        return sum(g.data_bits for g in self.groups)

    @property
    def weight_bits(self) -> float:
        return sum(g.weight_bits for g in self.groups)

    @property
    def accesses(self) -> float:
        """Elements moved per image (Judd's Figure 4 counts)."""
        return sum(g.data_reads + g.data_writes + g.weight_reads for g in self.groups)

    @property
    def total_bits(self) -> float:
        return self.data_bits + self.weight_bits

    @property
    def data_ratio(self) -> float:
        """Data traffic over data traffic at 32 bits (Judd's Table 2 TR)."""
        return self.data_bits / sum(g.data_bits_32 for g in self.groups)

    @property
    def ratio(self) -> float:
        """All traffic (data and weights) over the same at 32 bits."""
        return self.total_bits / sum(g.data_bits_32 + g.weight_bits_32 for g in self.groups)


def traffic(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision | None,
    example_input: torch.Tensor,
    batch_size: int | None = 1,
    groups: Mapping[str, Sequence[str]] | None = None,
    output_bits: int = 32,
) -> Traffic:
    """Memory traffic per image (see the module docstring). `batch_size=1` is the single-image
    use case, N the batch use case, None the batch limit where weight traffic vanishes."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 or None, got {batch_size}")
    rows = cost_layers(model, plan, example_input, groups)
    ordered: dict[str, list[CostLayer]] = {}
    for r in rows:
        ordered.setdefault(r.info.group, []).append(r)
    with torch.no_grad(), _eval_mode(model):
        out_elems = model(example_input[:1]).numel()
    names = list(ordered)
    result = []
    for k, g in enumerate(names):
        first = ordered[g][0]
        reads, width = first.info.inputs, first.data_bits
        if k + 1 < len(names):
            nxt = ordered[names[k + 1]][0]
            writes, write_width = nxt.info.inputs, nxt.data_bits
        else:
            writes, write_width = out_elems, output_bits
        per = 1.0 if batch_size is None else 1.0 / batch_size
        w_elems = sum(r.info.weights + r.info.bias for r in ordered[g]) * (0.0 if batch_size is None else per)
        w_bits = sum(r.info.weights * r.weight_bits + r.info.bias * r.bias_bits for r in ordered[g]) * (0.0 if batch_size is None else per)
        result.append(GroupTraffic(
            group=g, data_reads=reads, data_writes=writes, weight_reads=w_elems,
            data_bits=reads * width + writes * write_width, weight_bits=w_bits,
            data_bits_32=32 * (reads + writes), weight_bits_32=32 * w_elems,
        ))
    return Traffic(result, batch_size)


def judd_plan(
    model: nn.Module,
    example_input: torch.Tensor,
    widths: Sequence[int | tuple[int, int]],
    groups: Mapping[str, Sequence[str]] | None = None,
) -> tuple[PrecisionPlan, int]:
    """(plan, output_bits) for Judd's per-layer widths, each `bits` or `(I, F)` for I.F.

    Judd's width of layer k applies to the data layer k writes (layer 1's also to the image), so
    layer 1's input and layer 2's input take width 1, layer k+1's input width k, and the network
    output the last width.
    """
    rows = cost_layers(model, None, example_input, groups)
    order: dict[str, list[str]] = {}
    for r in rows:
        order.setdefault(r.info.group, []).append(r.name)
    if len(widths) != len(order):
        raise ValueError(f"{len(widths)} widths given for {len(order)} layers ({', '.join(order)})")
    fmts = [FixedPoint(w[0] + w[1], w[1]) if isinstance(w, tuple) else FixedPoint(int(w), 0) for w in widths]
    plan = PrecisionPlan()
    for k, (g, members) in enumerate(order.items()):
        fmt = fmts[0] if k == 0 else fmts[k - 1]
        for name in members:
            plan = plan.with_layer(name, data=fmt)
    return plan, fmts[-1].bits
