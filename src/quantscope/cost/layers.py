"""The per-op facts every cost model starts from: counts from the op table and the plan's bit widths.

Every cost model prices what an op computes (its kind, MACs, dot-product length, channels), taken
from the traced op table, never from module class names: a subclass of `nn.Linear`, a functional
model or an emulated model is priced as what it executes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..emulation import OpInfo, layers
from ..files import read_yaml
from ..plan import LayerPrecision, PrecisionPlan

__all__ = ["DATA_DIR", "CostLayer", "cost_layers", "as_plan", "load_table", "ceil_log2"]

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class CostLayer:
    """One product op (or lookup) with its formats' bit widths (per example)."""

    info: OpInfo
    precision: LayerPrecision

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def weight_bits(self) -> int:
        return self.precision.weights.bits

    @property
    def bias_bits(self) -> int:
        return self.precision.bias_format.bits

    @property
    def data_bits(self) -> int:
        return self.precision.data.bits

    @property
    def rhs_bits(self) -> int:
        """Bits of the second operand of a weight-free product."""
        return self.precision.rhs_format.bits

    @property
    def operand_bits(self) -> int:
        """Bits of the operand the data multiplies: the weight's, or the rhs of a weight-free product."""
        return self.weight_bits if self.info.has_weight else self.rhs_bits

    @property
    def fan_in(self) -> int:
        """Products summed per output (the dot-product length D)."""
        return self.info.fan_in

    @property
    def reduction_length(self) -> int:
        """Length of the axis an operand's scaled-format blocks run along (the features or input
        channels one output sums over; an embedding's row)."""
        m = self.info
        if m.kind.startswith("conv") and not m.kind.startswith("conv_transpose"):
            return max(m.in_channels // max(m.conv_groups, 1), 1)
        return m.in_channels or (m.output_shape[-1] if m.output_shape else 1)

    @property
    def weight_storage_bits(self) -> int:
        """Bits of the op's weights in their format, shared scales included (a per-channel scale
        of a convolution weight covers an output channel's whole kernel)."""
        w = self.precision.weights
        length = self.reduction_length
        if w.scale_sharing == "channel" and self.info.kind.startswith("conv") and not self.info.kind.startswith("conv_t"):
            length *= math.prod(self.info.kernel_size)
        return w.storage_bits(self.info.weights, length)

    @property
    def bias_storage_bits(self) -> int:
        """Bits of the op's bias (one row: a scaled bias format shares along it)."""
        return self.precision.bias_format.storage_bits(self.info.bias)

    @property
    def input_storage_bits(self) -> int:
        """Bits of the op's activation operands per example (data and rhs), shared scales included."""
        data = self.precision.data.storage_bits(self.info.inputs, self.info.in_channels or None)
        return data + self.precision.rhs_format.storage_bits(self.info.rhs, self.info.in_channels or None)


def cost_layers(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision | None,
    example_input: torch.Tensor,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[CostLayer]:
    """`layers(model, example_input)` joined with each op's precision under `plan` (for an
    emulated model without a plan: its own)."""
    plan = as_plan(plan if plan is not None else getattr(model, "plan", None))
    table = layers(model, example_input[:1], groups)
    plan.validate([o.name for o in table.ops], [o.name for o in table.elementwise])
    return [CostLayer(o, plan.for_layer(o.name)) for o in table]


def as_plan(plan: PrecisionPlan | LayerPrecision | None) -> PrecisionPlan:
    """A plan from a plan, one op precision for all ops, or None (float32)."""
    if plan is None:
        return PrecisionPlan()
    return PrecisionPlan(plan) if isinstance(plan, LayerPrecision) else plan


def load_table(name_or_path: str | Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """A technology table: a shipped name (e.g. "hashemi65", "horowitz45") or a YAML path, holding
    at least the `required` keys."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DATA_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in DATA_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"technology table {str(name_or_path)!r} not found; shipped tables: {', '.join(shipped)}, or give a .yaml path")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"technology table {path} must be a YAML mapping")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"technology table {path} lacks {', '.join(missing)}; this cost model needs {', '.join(required)} "
                         f"(see {DATA_DIR / 'hashemi65.yaml'} for an example)")
    return data


def ceil_log2(n: int) -> int:
    """ceil(log2 n) for n >= 1, exactly (integer arithmetic)."""
    return (n - 1).bit_length() if n > 1 else 0
