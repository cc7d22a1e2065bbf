"""The emulating backend: every op computed the way the plan says.

For a product op: each operand is rounded onto its role's format (weights and bias from the
parameters, cached between calls while they do not change; data and rhs per call), the product is
computed in float32 or, when the op has an accumulator, with every product and partial sum rounded
(`quantscope.arith`; two block-scaled operands: the block dot product of `arith.blocks`), the
op's epilogue (scale, mask) runs, and the output is rounded onto `output` when set. Element-wise
ops round their result onto `elementwise` when set. In training mode with gradients, rounding
uses straight-through gradients and accumulator results keep the float computation's gradient.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..formats import Format
from ..plan import LayerPrecision
from ..quantization import Axis, quantize, quantize_blocks, quantize_ste, scratch, shares_storage
from .calls import Product
from .scopes import ModuleScopes
from .stats import record

if TYPE_CHECKING:
    from .model import EmulatedModel

__all__ = ["OpSpec", "Emulator"]


@dataclass(frozen=True)
class OpSpec:
    """One op's precision with its activation formats made static (calibrated where adaptive)."""

    name: str
    precision: LayerPrecision
    data: Format
    rhs: Format
    output: Format | None
    elementwise: Format | None

    @property
    def is_float32(self) -> bool:
        """True when the op runs exactly as in the float model."""
        return self.precision.is_float32


class _ValueOf(torch.autograd.Function):
    """Forward: the second tensor's values, bit for bit; backward: the first tensor's gradient."""

    @staticmethod
    def forward(ctx, differentiable, values):
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


#: the first scratch slot of product operands (quantization's kernels use 0-3)
_OPERAND_SLOTS = 8


def _transposed(t: torch.Tensor) -> bool:
    """True where t's columns, not its rows, are contiguous (a transposed view)."""
    return t.dim() >= 2 and t.size(-1) > 1 and t.stride(-1) != 1 and t.stride(-2) == 1


def _parameter_of(t: torch.Tensor) -> nn.Parameter | None:
    if isinstance(t, nn.Parameter):
        return t
    return t._base if isinstance(t._base, nn.Parameter) else None


class Emulator:
    """The backend an `EmulatedModel` runs its forward pass with."""

    def __init__(self, owner: EmulatedModel, scopes: ModuleScopes) -> None:
        self.owner = owner
        self.scopes = scopes
        self.training = owner.training and torch.is_grad_enabled()
        self.rounding = owner.rounding
        self.generator = owner.generator
        self.elementwise_on = owner.plan.uses_elementwise

    # ------------------------------------------------------------------------- rounding
    def _round(self, t: torch.Tensor, fmt: Format, slot: int | None = None, axis: Axis = -1, spent: bool = False) -> torch.Tensor:
        """t rounded onto fmt (a scaled format's blocks along `axis`); an operand `slot` (0, 1)
        rounds into this thread's scratch buffer of that number when nothing can keep the result
        past the op (no autograd): the next op reuses the buffer instead of allocating (fresh
        pages cost several passes over the tensor); a `spent` operand is rounded in place."""
        if fmt.is_identity or not t.is_floating_point():
            return t
        if self.training:
            return quantize_ste(t, fmt, self.rounding, self.generator, axis=axis)
        if slot is None or torch.is_grad_enabled():
            return quantize(t, fmt, self.rounding, self.generator, axis=axis)
        if spent and t.is_contiguous() and t.dtype in (torch.float32, torch.float64):
            return quantize(t, fmt, self.rounding, self.generator, out=t, axis=axis)
        dtype = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32
        transposed = _transposed(t) and fmt.scale_sharing == "none"  # e.g. attention's K^T: round K row by row, then view
        if transposed:
            t = t.mT
        q = quantize(t.to(dtype), fmt, self.rounding, self.generator, out=scratch(t, dtype, _OPERAND_SLOTS + slot), axis=axis)
        return q.mT if transposed else q

    def _parameter(self, p: nn.Parameter, static: Format, axis: Axis) -> torch.Tensor:
        if self.training and p.requires_grad:
            return quantize_ste(p, static, self.rounding, self.generator, axis=axis)
        key = (p._version, p.data_ptr(), static, axis)
        hit = self.owner._cache.get(id(p))
        if hit is None or hit[0] != key:
            hit = (key, quantize(p.detach(), static, self.rounding, self.generator, axis=axis))
            self.owner._cache[id(p)] = hit
        return hit[1]

    def weight(self, t: torch.Tensor, fmt: Format, axis: Axis = -1) -> tuple[torch.Tensor, Format]:
        """A weight operand rounded onto `fmt` (resolved on the whole parameter; a scaled format's
        blocks along `axis`, a per-channel scale of a convolution weight over each output
        channel), and the static format used; a view of a parameter is rounded as the parameter
        and viewed again."""
        if fmt.is_identity:
            return t, fmt
        if fmt.scale_sharing == "channel" and axis == 1 and t.dim() > 2:
            axis = tuple(range(1, t.dim()))  # a convolution weight: one scale per output channel
        param = _parameter_of(t)
        if param is None:
            static = fmt.resolve(t)
            return self._round(t, static, axis=axis), static
        static = fmt.resolve(param)
        if param is t:
            return self._parameter(param, static, axis), static
        if not param.is_contiguous() or static.scale_sharing != "none":  # blocks follow the view's axes
            return self._round(t, static, axis=axis), static
        q = self._parameter(param, static, axis)
        return q.as_strided(t.size(), t.stride(), t.storage_offset() - param.storage_offset()), static

    # ------------------------------------------------------------------------------ ops
    def product(self, p: Product) -> torch.Tensor:
        """Compute a product op under its precision."""
        name = self.scopes.name("product", p.kind, p.label, p.weight)
        spec = self.owner.spec(name)
        if spec.is_float32:
            out = p.compute(*p.operands, p.bias)
            return out if p.epilogue is None else p.epilogue(out)
        operands, formats, scratched = [], [], []
        for slot, (role, t, axis) in enumerate(zip(p.roles, p.operands, p.axes)):
            if role == "weights":
                q, f = self.weight(t, spec.precision.weights, axis)
            elif role in ("data", "rhs"):
                f = spec.data if role == "data" else spec.rhs
                q = self._round(t, f, slot, axis, p.spent[slot])
                if q is not t:
                    scratched.append(q)
            else:
                q, f = t, None
            operands.append(q)
            formats.append(f)
        bias = None if p.bias is None else self.weight(p.bias, spec.precision.bias_format)[0]
        out = self._compute(p, spec, operands, formats, bias)
        if scratched and isinstance(out, torch.Tensor) and any(shares_storage(out, t) for t in scratched):
            out = out.clone()  # a view of a scratch operand must not outlive the op
        if p.epilogue is not None:
            out = p.epilogue(out)
        if spec.output is not None:
            out = self._round(out, spec.output)
        if self.owner._stats is not None:
            record(self.owner._stats, name, p, spec, operands, formats)
        return out

    def _compute(self, p: Product, spec: OpSpec, operands: list[torch.Tensor], formats: list[Format | None],
                 bias: torch.Tensor | None) -> torch.Tensor:
        acc = spec.precision.accumulator
        if acc is None or p.accumulate is None:
            return p.compute(operands[0], operands[1], bias)
        if all(f is not None and f.scale_sharing != "none" for f in formats):
            out = self._block_product(p, spec, formats, bias)
        else:
            out = p.accumulate(operands[0], operands[1], bias, acc, self.rounding, self.generator, formats[0], formats[1])
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (*operands, bias)):
            out = _ValueOf.apply(p.compute(operands[0], operands[1], bias), out)
        return out

    def _block_product(self, p: Product, spec: OpSpec, formats: list[Format | None], bias: torch.Tensor | None) -> torch.Tensor:
        """The block dot product of two block-scaled operands (`arith.blocks`)."""
        if p.block_accumulate is None:
            raise ValueError(f"op {spec.name!r} ({p.kind}{', groups > 1' if p.groups > 1 else ''}): the block dot product of two "
                             f"block-scaled operands ({formats[0]}, {formats[1]}) is emulated for linear, matmul and "
                             "convolutions with groups=1; give one operand a per-element format or leave the accumulator unset")
        blocks = [quantize_blocks(t, f, axis, self.rounding, self.generator)  # type: ignore[arg-type]
                  for t, f, axis in zip(p.operands, formats, p.axes)]
        assert spec.precision.accumulator is not None
        dtype = p.operands[0].dtype if p.operands[0].is_floating_point() else torch.float32
        return p.block_accumulate(blocks[0], blocks[1], bias, spec.precision.accumulator, self.rounding, self.generator, dtype)

    def elementwise(self, kind: str, compute: Callable[[], Any], label: str | None = None, inputs: tuple = ()) -> Any:
        """Compute an element-wise op and round its result where the plan says."""
        if not self.elementwise_on:
            return compute()
        name = self.scopes.name("elementwise", kind, label)
        fmt = self.owner.spec(name).elementwise
        out = compute()
        if fmt is None or not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return out
        q = self._round(out, fmt)
        return out.copy_(q) if any(out is t for t in inputs) else q

    def composite(self, original: Callable[[], Any], decomposed: Callable[[], Any]) -> Any:
        """Composite ops always run decomposed, so each of their products is emulated."""
        return decomposed()

    def unsupported(self, func: Callable[..., Any], macs: int | None, args: tuple, kwargs: dict) -> Any:
        """A call with MACs and no emulation: an error, or float32 with a warning (strict=False)."""
        name = self.scopes.name("product", getattr(func, "__name__", "op"))
        message = (f"op {name!r} calls {getattr(func, '__qualname__', func)} ({'unknown' if macs is None else f'{macs:,}'} MACs), "
                   "which quantscope cannot emulate")
        if self.owner.strict:
            raise ValueError(message + "; rewrite it with supported ops (docs/emulation.md) or pass strict=False to run it in float32")
        if name not in self.owner._warned:
            self.owner._warned.add(name)
            warnings.warn(message + "; it runs in float32 (strict=False)", stacklevel=2)
        return func(*args, **kwargs)
