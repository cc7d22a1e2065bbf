"""The per-layer facts every cost model starts from: shapes, counts and the plan's bit widths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from ..emulate import LayerInfo, layers
from ..plan import LayerPrecision, PrecisionPlan

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class CostLayer:
    """One compute layer with its formats' bit widths (per example)."""

    info: LayerInfo
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
    def fan_in(self) -> int:
        """Products summed per output (the dot-product length D)."""
        return self.info.macs // max(self.info.outputs, 1)


def cost_layers(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision | None,
    example_input: torch.Tensor,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[CostLayer]:
    """`layers(model, example_input)` joined with each layer's precision under `plan`."""
    if plan is None:
        plan = PrecisionPlan()
    elif isinstance(plan, LayerPrecision):
        plan = PrecisionPlan(plan)
    info = layers(model, example_input[:1], groups)
    plan.validate([i.name for i in info])
    return [CostLayer(i, plan.for_layer(i.name)) for i in info]


def load_table(name_or_path: str | Path) -> dict[str, Any]:
    """A technology table: a shipped name (e.g. "hashemi65", "horowitz45") or a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = DATA_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in DATA_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"technology table {str(name_or_path)!r} not found; shipped tables: {', '.join(shipped)}, or give a .yaml path")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"technology table {path} must be a YAML mapping")
    return data


def ceil_log2(n: int) -> int:
    """ceil(log2 n) for n >= 1, exactly (integer arithmetic)."""
    return (n - 1).bit_length() if n > 1 else 0
