"""What an emulated model's operands looked like while it ran: ranges, saturation, flushes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..formats import Format

if TYPE_CHECKING:
    from .calls import Product
    from .emulator import OpSpec

__all__ = ["LayerStats", "observe", "record"]


@dataclass
class LayerStats:
    """One op's data (activation operands) and weights during an observed run."""

    name: str
    data_format: str
    weight_format: str
    data_max_abs: float = 0.0
    data_count: int = 0
    data_saturated: int = 0
    data_flushed: int = 0
    weight_max_abs: float = 0.0
    weight_saturated: int = 0
    weight_flushed: int = 0
    weight_count: int = 0

    @property
    def data_saturated_fraction(self) -> float:
        """Fraction of inputs outside the data format's range."""
        return self.data_saturated / max(self.data_count, 1)

    @property
    def data_flushed_fraction(self) -> float:
        """Fraction of inputs that were nonzero and became zero."""
        return self.data_flushed / max(self.data_count, 1)

    @property
    def weight_saturated_fraction(self) -> float:
        """Fraction of weights outside the weight format's range."""
        return self.weight_saturated / max(self.weight_count, 1)

    @property
    def weight_flushed_fraction(self) -> float:
        """Fraction of weights that were nonzero and became zero."""
        return self.weight_flushed / max(self.weight_count, 1)


def _tally(x: torch.Tensor, q: torch.Tensor, fmt: Format | None) -> tuple[float, int, int]:
    """(max |x|, count outside fmt's range, count nonzero -> zero)."""
    x = x.detach()
    max_abs = float(x.abs().max()) if x.numel() else 0.0
    if fmt is None or fmt.is_identity:
        return max_abs, 0, 0
    saturated = int(((x > fmt.max_value) | (x < fmt.min_value)).sum())
    flushed = int(((x != 0) & (q.detach() == 0)).sum())
    return max_abs, saturated, flushed


def record(stats: dict[str, LayerStats], name: str, p: Product, spec: OpSpec, operands: list[torch.Tensor],
           formats: list[Format | None]) -> None:
    """Add one product call's operands to `stats[name]`."""
    s = stats.setdefault(name, LayerStats(name, str(spec.data), str(spec.precision.weights)))
    for role, raw, q, fmt in zip(p.roles, p.operands, operands, formats):
        if role in ("data", "rhs"):
            m, sat, flushed = _tally(raw, q, fmt)
            s.data_max_abs = max(s.data_max_abs, m)
            s.data_count += raw.numel()
            s.data_saturated += sat
            s.data_flushed += flushed
        elif role == "weights":
            s.weight_max_abs, s.weight_saturated, s.weight_flushed = _tally(raw, q, fmt)
            s.weight_count = raw.numel()


@contextlib.contextmanager
def observe(model: Any) -> Iterator[dict[str, LayerStats]]:
    """Collect per-op statistics of an emulated model while the block runs.

        with qs.observe(qmodel) as stats:
            qmodel(x)
        stats["conv1"].data_saturated_fraction
    """
    from .model import EmulatedModel

    if not isinstance(model, EmulatedModel):
        raise ValueError("observe() needs a model returned by quantscope.emulate()")
    stats: dict[str, LayerStats] = {}
    model._stats = stats
    try:
        yield stats
    finally:
        model._stats = None
