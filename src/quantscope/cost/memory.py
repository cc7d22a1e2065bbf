"""Memory footprint (bits stored) and memory traffic (Judd et al.) under a precision plan.

Traffic accounting (Judd et al., Section 2.4 and Table 2), on the traced dataflow: every product
op is a group (Judd's layer: a compute stage with the element-wise stages after it), or an explicit
`groups` map merges ops into groups. Every tensor that crosses from one group to another is written
once by the group that produced it and read once by each group that consumes it (a residual input
is stored once and read again by the add that uses it), stored in the format of the product ops
that read it (the widest of their `data`/`rhs` formats; quantscope's plans name an op's *input*
format), else in its producer's `output` format, else in float32. The network input is read by the
groups that consume it and the network output written once at `output_bits`. Integer tensors
(token ids) are not data traffic. Weights and biases are read once per image (single-image use
case) or once per batch (batch use case: per image divided by the batch size). TR is the traffic
over the same accounting at 32 bits everywhere.

Judd's Table 2 gives per-layer widths of the data each layer *writes*, the first layer's also for
the input image; `judd_plan` turns such a list into this accounting's plan (layer k+1's input
format is layer k's width), which reproduces the published traffic ratios.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..emulation import trace
from ..emulation.model import op_table
from ..formats import FixedPoint
from ..plan import LayerPrecision, PrecisionPlan
from .layers import CostLayer, as_plan, cost_layers

__all__ = ["FootprintRow", "footprint", "GroupTraffic", "Traffic", "traffic", "judd_plan"]


@dataclass(frozen=True)
class FootprintRow:
    """Bits stored for one op: parameters once, activation operands per example."""

    name: str
    weight_bits: int
    bias_bits: int
    data_bits: int

    @property
    def parameter_bytes(self) -> float:
        return (self.weight_bits + self.bias_bits) / 8


def footprint(model: nn.Module, plan: PrecisionPlan | LayerPrecision | None, example_input: torch.Tensor) -> list[FootprintRow]:
    """Per-op storage in bits: weights, bias, and the op's activation operands per example."""
    return [
        FootprintRow(c.name, c.weight_storage_bits, c.bias_storage_bits, c.input_storage_bits)
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


def _widths(flows, plan: PrecisionPlan, producer_op: dict[str, str]) -> dict[int, float]:
    """Storage bits per value of every crossing tensor, block scales included (see the module
    docstring)."""
    width: dict[int, float] = {}
    for f in flows:
        if f.consumer_op is not None and f.role in ("data", "rhs"):
            p = plan.for_layer(f.consumer_op)
            bits = (p.data if f.role == "data" else p.rhs_format).bits_per_value
            width[f.tensor] = max(width.get(f.tensor, 0), bits)
    for f in flows:
        if f.tensor not in width:
            out = plan.for_layer(f.producer).output if f.producer in producer_op else None
            width[f.tensor] = out.bits if out is not None else 32.0
    return width


def _crossings(tr, plan: PrecisionPlan, member: dict[str, str], names: list[str]) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(reads, writes) per group as (elements, bits): every tensor written once by the group
    that produced it, read once by every other group that consumes it."""
    flows = [f for f in tr.flows if f.producer != f.consumer]
    width = _widths(flows, plan, member)
    reads = dict.fromkeys(names, (0, 0))
    writes = dict.fromkeys(names, (0, 0))
    seen_reads, seen_writes = set(), set()
    for f in flows:
        src, dst = member.get(f.producer, "input"), member.get(f.consumer, "input")
        if src == dst or dst == "input":
            continue
        if (f.tensor, dst) not in seen_reads:
            seen_reads.add((f.tensor, dst))
            reads[dst] = (reads[dst][0] + f.elements, reads[dst][1] + f.elements * width[f.tensor])
        if src != "input" and f.tensor not in seen_writes:
            seen_writes.add(f.tensor)
            writes[src] = (writes[src][0] + f.elements, writes[src][1] + f.elements * width[f.tensor])
    return reads, writes


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
    plan = as_plan(plan)
    tr = trace(model, example_input[:1])
    table = op_table(tr, model, groups)
    plan.validate([o.name for o in table.ops], [o.name for o in table.elementwise])
    member = {o.name: o.group for o in table.ops}
    names = list(dict.fromkeys(o.group for o in table.ops))
    reads, writes = _crossings(tr, plan, member, names)
    last = member.get(tr.output_producer, names[-1])
    writes[last] = (writes[last][0] + tr.output_elements, writes[last][1] + tr.output_elements * output_bits)
    per = 0.0 if batch_size is None else 1.0 / batch_size
    rows = {o.name: CostLayer(o, plan.for_layer(o.name)) for o in table}
    result = []
    for g in names:
        ops = [rows[o.name] for o in table.ops if o.group == g]
        w_elems = sum(r.info.weights + r.info.bias for r in ops) * per
        w_bits = sum(r.weight_storage_bits + r.bias_storage_bits for r in ops) * per
        result.append(GroupTraffic(group=g, data_reads=reads[g][0], data_writes=writes[g][0], weight_reads=w_elems,
                                   data_bits=reads[g][1] + writes[g][1], weight_bits=w_bits,
                                   data_bits_32=32 * (reads[g][0] + writes[g][0]), weight_bits_32=32 * w_elems))
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
    for k, members in enumerate(order.values()):
        fmt = fmts[0] if k == 0 else fmts[k - 1]
        for name in members:
            plan = plan.with_layer(name, data=fmt)
    return plan, fmts[-1].bits
