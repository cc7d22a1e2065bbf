"""BatchNorm folding that never changes what the model computes.

A BatchNorm with running statistics is folded into the linear, convolution or transposed
convolution op that produces its input (w' = w g/s per output channel, b' = (b - mean) g/s + beta,
s = sqrt(var + eps); the BatchNorm becomes `nn.Identity`) only when that op's output feeds nothing
but the BatchNorm, the op's weight is used by no other op, and the BatchNorm normalizes the op's
output channels. Anything else (a pre-activation residual block, where the convolution's output
is also added to the shortcut; a shared weight; a BatchNorm without running statistics) is left
as it is and named in a warning.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

from .tracing import Trace, trace

__all__ = ["fold_batchnorm", "fold_into", "warn_unfolded"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_FOLDABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def _scale(w: torch.Tensor, scale: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """w scaled per output channel (dimension 1 of a transposed convolution's grouped weight)."""
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        g = layer.groups
        grouped = w.reshape(g, w.shape[0] // g, w.shape[1], *w.shape[2:])
        return (grouped * scale.reshape(g, 1, w.shape[1], *([1] * (w.dim() - 2)))).reshape(w.shape)
    return w * scale.reshape(-1, *([1] * (w.dim() - 1)))


def _fold(layer: Any, bn: Any) -> None:
    """Fold BatchNorm `bn` into the weight and bias of `layer`, in place."""
    with torch.no_grad():
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)
        layer.weight.copy_(_scale(layer.weight, scale, layer))
        old = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        layer.bias = nn.Parameter((old - bn.running_mean) * scale + beta)


def _out_channels(layer: Any) -> int:
    """Output channels of a linear or convolution layer (a transposed one keeps them per group)."""
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return layer.weight.shape[1] * layer.groups
    return layer.weight.shape[0]


def _why_not(tr: Trace, model: nn.Module, bn_name: str, bn: Any) -> tuple[str | None, Any]:
    """(reason the BatchNorm cannot be folded or None, the layer to fold it into)."""
    if bn.running_mean is None:
        return "it keeps no running statistics", None
    op = next((o for o in tr.ops if o.module == bn_name and o.kind == "batch_norm"), None)
    if op is None:
        return "it did not run on the example batch", None
    inputs = [t for t, uses in tr.uses.items() if any(name == op.name for name, _ in uses)]
    if len(inputs) != 1:
        return "its input could not be traced", None
    producer = tr.producers.get(inputs[0])
    info = next((o for o in tr.ops if o.name == producer), None)
    if info is None or info.weight is None or not info.weight.endswith("weight"):
        return "its input does not come from a linear or convolution layer", None
    owner_name = info.weight.rpartition(".")[0]
    layer: Any = model.get_submodule(owner_name) if owner_name else model
    if not isinstance(layer, _FOLDABLE) or layer.weight is not model.get_parameter(info.weight):
        return f"its input comes from {producer!r}, which is not a Linear or convolution module", None
    if sum(o.weight == info.weight for o in tr.ops) > 1:
        return f"the weight of {producer!r} is used by another op too", None
    others = [name for name, frame in tr.uses[inputs[0]] if frame != id(bn)]
    if others:
        return f"the output of {producer!r} also feeds {others[0] or 'another op'}", None
    if bn.num_features != _out_channels(layer) or (isinstance(layer, nn.Linear) and len(info.output_shape) != 1):
        return f"it does not normalize the output channels of {producer!r}", None
    return None, layer


def fold_into(model: nn.Module, example: Any) -> tuple[str, ...]:
    """Fold every foldable BatchNorm of `model` in place; returns "name: reason" for the others."""
    tr = trace(model, example)
    left = []
    plan: list[tuple[str, nn.Module, nn.Module]] = []
    for name, bn in model.named_modules():
        if isinstance(bn, _BN):
            reason, layer = _why_not(tr, model, name, bn)
            if layer is not None:
                plan.append((name, bn, layer))
            else:
                left.append(f"{name}: {reason}")
    for name, bn, layer in plan:
        _fold(layer, bn)
        _set_module(model, name, nn.Identity())
    return tuple(left)


def warn_unfolded(left: tuple[str, ...]) -> None:
    """The visible note for BatchNorms that stayed (none: no warning)."""
    if left:
        warnings.warn("BatchNorm not folded: " + "; ".join(left), stacklevel=3)


def fold_batchnorm(model: nn.Module, example: Any) -> nn.Module:
    """A copy of `model` with every BatchNorm folded where folding is exact (see the module
    docstring), in inference semantics (running statistics); BatchNorms left unfolded are named
    in a warning."""
    target = copy.deepcopy(model)
    warn_unfolded(fold_into(target, example))
    return target
