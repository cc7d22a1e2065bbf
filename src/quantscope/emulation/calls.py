"""What each intercepted torch call computes: product ops, element-wise ops, unsupported ops.

An adapter turns one torch call into a `Product` (operands with their roles, MAC count, the float
computation and its accumulator-arithmetic twin) or an element-wise op, and hands it to the
running backend (`tracer.Tracer` or `emulator.Emulator`). Composite calls (attention, recurrent
layers) are decomposed by `attention` and `recurrent` into the same products. Calls that carry
MACs but that the emulator cannot compute are reported to the backend as unsupported.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .. import arith
from ..arith import blocks as block_arith
from ..formats import Format
from ..quantization import Blocks

__all__ = ["Product", "Backend", "PRODUCTS", "ELEMENTWISE", "UNSUPPORTED", "ROLES", "linear_product", "two_operand", "unsupported_macs"]

#: what each operand of a product is: activations, a weight, the second activation operand of
#: a weight-free product, or integer indices (never quantized)
ROLES = ("data", "weights", "rhs", "index")

Accumulate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, Format, str, "torch.Generator | None", Format | None, Format | None], torch.Tensor]
#: the block dot product of two block-scaled operands: (blocks, blocks, bias, accumulator, rounding, generator, dtype)
BlockAccumulate = Callable[[Blocks, Blocks, torch.Tensor | None, Format, str, "torch.Generator | None", torch.dtype], torch.Tensor]


@dataclass
class Product:
    """One product op call: `compute(x, y, bias)` in float, or `accumulate(...)` rounding every
    product and partial sum; `epilogue` (a scale, a mask) runs after either, before the output
    is quantized. `axes` names each operand's reduction dimension (where a scaled format's blocks
    run: a weight's input features or channels, the data's features or channels);
    `block_accumulate` computes the op from two block-scaled operands (`arith.blocks`), where the
    op has that arithmetic."""

    kind: str
    operands: tuple[torch.Tensor, torch.Tensor]
    roles: tuple[str, str]
    bias: torch.Tensor | None
    compute: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    accumulate: Accumulate | None
    macs: int
    outputs: int
    label: str | None = None
    epilogue: Callable[[torch.Tensor], torch.Tensor] | None = None
    kernel_size: tuple[int, ...] = ()
    groups: int = 1
    in_channels: int = 0
    axes: tuple[int, int] = (-1, -1)
    block_accumulate: BlockAccumulate | None = None
    #: operands the caller hands over (nothing reads them after the op): rounded in place
    spent: tuple[bool, bool] = (False, False)

    @property
    def weight(self) -> torch.Tensor | None:
        """The operand in the weights role, if any."""
        return self.operands[self.roles.index("weights")] if "weights" in self.roles else None

    @property
    def fan_in(self) -> int:
        """Products per output (the dot-product length; the mean where it varies)."""
        return self.macs // max(self.outputs, 1)


class Backend(Protocol):
    """What runs the ops: the tracer (records, computes in float) or the emulator."""

    def product(self, p: Product) -> torch.Tensor: ...

    def elementwise(self, kind: str, compute: Callable[[], Any], label: str | None = None, inputs: tuple = ()) -> Any: ...

    def composite(self, original: Callable[[], Any], decomposed: Callable[[], Any]) -> Any: ...

    def unsupported(self, func: Callable[..., Any], macs: int | None, args: tuple, kwargs: dict) -> Any: ...


def _is_parameter(t: Any) -> bool:
    return isinstance(t, torch.nn.Parameter) or (isinstance(t, torch.Tensor) and isinstance(t._base, torch.nn.Parameter))


def _roles(a: torch.Tensor, b: torch.Tensor) -> tuple[str, str]:
    """Roles of a two-operand product: a parameter operand is the weight, else (data, rhs)."""
    if _is_parameter(b):
        return ("data", "weights")
    if _is_parameter(a):
        return ("weights", "data")
    return ("data", "rhs")


# ------------------------------------------------------------------------------ dense ops
def _linear_acc(x, w, b, a, r, g, xf, wf):
    return arith.linear(x, w, b, a, rounding=r, generator=g, weight_format=wf, data_format=xf)


def _linear_blocks(x, w, b, a, r, g, dtype):
    return block_arith.block_linear(x, w, b, a, rounding=r, generator=g, dtype=dtype)


def linear_product(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, label: str | None = None) -> Product:
    """`F.linear(input, weight, bias)` as a product op."""
    k, o = weight.shape[-1], weight.shape[0]
    rows = input.numel() // max(k, 1)
    return Product("linear", (input, weight), ("data", "weights"), bias, F.linear, _linear_acc,
                   macs=rows * k * o, outputs=rows * o, label=label, in_channels=k, block_accumulate=_linear_blocks)


def _linear(backend: Backend, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    return backend.product(linear_product(input, weight, bias))


def _conv_padding(padding: Any, kernel: Sequence[int], dilation: Sequence[int]) -> tuple[list[int], list[int]]:
    """(low, high) padding per spatial dimension, string modes resolved as PyTorch does."""
    nd = len(kernel)
    if padding == "valid":
        return [0] * nd, [0] * nd
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [t // 2 for t in total], [t - t // 2 for t in total]
    p = [padding] * nd if isinstance(padding, int) else list(padding)
    return p, p


def _nd(v: Any, n: int) -> list[int]:
    return [v] * n if isinstance(v, int) else list(v)


def _conv(nd: int) -> Callable[..., torch.Tensor]:
    func = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]

    def adapter(backend: Backend, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        kernel = list(weight.shape[2:])
        stride_, dilation_ = _nd(stride, nd), _nd(dilation, nd)
        low, high = _conv_padding(padding, kernel, dilation_)
        batch = input.shape[0] if input.dim() == nd + 2 else 1
        spatial = input.shape[-nd:]
        out = [(s + lo + hi - d * (k - 1) - 1) // st + 1 for s, lo, hi, d, k, st in zip(spatial, low, high, dilation_, kernel, stride_)]
        outputs = batch * weight.shape[0] * math.prod(out)

        def compute(x, w, b):
            return func(x, w, b, stride, padding, dilation, groups)

        def acc(x, w, b, a, r, g, xf, wf):
            unbatched = x.dim() == nd + 1
            x = x[None] if unbatched else x
            x = arith.pad(x, low, high)
            y = arith.conv(x, w, b, a, stride_, 0, dilation_, groups, rounding=r, generator=g, weight_format=wf, data_format=xf)
            return y[0] if unbatched else y

        def blocks(x, w, b, a, r, g, dtype):
            unbatched = len(x.shape) == nd + 1
            if unbatched:
                raise ValueError(f"conv{nd}d: the block dot product needs a batched input")
            return block_arith.block_conv(x, w, b, a, stride_, low, high, dilation_, rounding=r, generator=g, dtype=dtype)

        return backend.product(Product(f"conv{nd}d", (input, weight), ("data", "weights"), bias, compute, acc,
                                       macs=outputs * weight.shape[1] * math.prod(kernel), outputs=outputs,
                                       kernel_size=tuple(kernel), groups=groups, in_channels=weight.shape[1] * groups,
                                       axes=(-(nd + 1), 1), block_accumulate=blocks if groups == 1 else None))

    return adapter


def _conv_transpose(nd: int) -> Callable[..., torch.Tensor]:
    func = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]

    def adapter(backend: Backend, input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        kernel = list(weight.shape[2:])
        stride_, padding_, out_pad, dilation_ = (_nd(v, nd) for v in (stride, padding, output_padding, dilation))
        batch = input.shape[0] if input.dim() == nd + 2 else 1
        out = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1
               for s, st, p, d, k, op in zip(input.shape[-nd:], stride_, padding_, dilation_, kernel, out_pad)]
        c_out = weight.shape[1] * groups

        def compute(x, w, b):
            return func(x, w, b, stride, padding, output_padding, groups, dilation)

        def acc(x, w, b, a, r, g, xf, wf):
            unbatched = x.dim() == nd + 1
            y = arith.conv_transpose(x[None] if unbatched else x, w, b, a, stride_, padding_, out_pad, groups, dilation_,
                                     rounding=r, generator=g, weight_format=wf, data_format=xf)
            return y[0] if unbatched else y

        return backend.product(Product(f"conv_transpose{nd}d", (input, weight), ("data", "weights"), bias, compute, acc,
                                       macs=input.numel() * weight.shape[1] * math.prod(kernel), outputs=batch * c_out * math.prod(out),
                                       kernel_size=tuple(kernel), groups=groups, in_channels=input.shape[-nd - 1],
                                       axes=(-(nd + 1), 0)))

    return adapter


# ----------------------------------------------------------------------------- matmul family
def _matmul_macs(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
    """(MACs, outputs) of torch.matmul(a, b) with broadcasting."""
    sa = a.shape if a.dim() > 1 else (1, *a.shape)
    sb = b.shape if b.dim() > 1 else (*b.shape, 1)
    batch = math.prod(torch.broadcast_shapes(sa[:-2], sb[:-2]))
    outputs = batch * sa[-2] * sb[-1]
    return outputs * sa[-1], outputs


def _matmul_acc(x, y, b, a, r, g, xf, yf):
    return arith.matmul(x, y, a, bias=b, rounding=r, generator=g, a_format=xf, b_format=yf)


def _matmul_blocks(x, y, b, a, r, g, dtype):
    return block_arith.block_matmul(x, y, b, a, rounding=r, generator=g, dtype=dtype)


def two_operand(kind: str, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None,
                 epilogue: Callable[[torch.Tensor], torch.Tensor] | None = None, label: str | None = None,
                 spent: tuple[bool, bool] = (False, False)) -> Product:
    """`a @ b` (+ bias, then `epilogue`) as a product op; a parameter operand is the weight;
    `spent` operands are the caller's to give up (see Product)."""
    macs, outputs = _matmul_macs(a, b)

    def compute(x, y, bb):
        out = torch.matmul(x, y)
        return out if bb is None else out + bb

    return Product(kind, (a, b), _roles(a, b), bias, compute, _matmul_acc, macs=macs, outputs=outputs,
                   label=label, epilogue=epilogue, in_channels=a.shape[-1], axes=(-1, -2 if b.dim() > 1 else -1),
                   block_accumulate=_matmul_blocks, spent=spent)


def _matmul(backend: Backend, input, other, *, out=None):
    if out is not None:
        return backend.unsupported(torch.matmul, _matmul_macs(input, other)[0], (input, other), {"out": out})
    return backend.product(two_operand("matmul", input, other))


def _rmatmul(backend: Backend, self, other):
    return backend.product(two_operand("matmul", other, self))


def _bmm(kind: str) -> Callable[..., torch.Tensor]:
    def adapter(backend: Backend, input, mat2, *, out=None):
        if out is not None:
            return backend.unsupported(getattr(torch, kind), _matmul_macs(input, mat2)[0], (input, mat2), {"out": out})
        return backend.product(two_operand(kind, input, mat2))
    return adapter


def _add_product(kind: str) -> Callable[..., torch.Tensor]:
    """addmm / baddbmm: beta * input + alpha * (a @ b); a parameter `input` is the op's bias
    (added inside the accumulator); anything else (a mask) is added exactly afterwards."""

    def adapter(backend: Backend, input, mat1, mat2, *, beta=1, alpha=1, out=None):
        if out is not None:
            return backend.unsupported(getattr(torch, kind), _matmul_macs(mat1, mat2)[0], (input, mat1, mat2), {"out": out})
        if beta == 1 and alpha == 1 and _is_parameter(input):
            return backend.product(two_operand(kind, mat1, mat2, bias=input))
        return backend.product(two_operand(kind, mat1, mat2, epilogue=lambda p: beta * input + alpha * p))

    return adapter


def _einsum_parse(equation: str, operands: Sequence[torch.Tensor]) -> tuple[list[str], str]:
    """Input index strings and the output string, ellipses expanded to fresh letters."""
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    inputs = lhs.split(",")
    fresh = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in eq]
    width = max((t.dim() - len(s.replace("...", "")) for s, t in zip(inputs, operands) if "..." in s), default=0)
    dots = "".join(fresh[:width])
    inputs = [s.replace("...", dots[len(dots) - (t.dim() - len(s.replace("...", ""))):]) for s, t in zip(inputs, operands)]
    if "->" in eq:
        out = rhs.replace("...", dots)
    else:
        counts = {c: "".join(inputs).count(c) for c in "".join(inputs)}
        out = dots + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in dots))
    return inputs, out


def _einsum_macs(inputs: list[str], operands: Sequence[torch.Tensor], out: str) -> tuple[int, int]:
    size: dict[str, int] = {}
    for s, t in zip(inputs, operands):
        for c, n in zip(s, t.shape):
            size[c] = max(size.get(c, 1), n)
    outputs = math.prod(size[c] for c in out)
    return math.prod(size.values()), outputs


def _einsum_acc(equation: str) -> Accumulate:
    """Two-operand einsum as a batched matmul: batch indices, free indices, contracted ones."""

    def acc(x, y, b, a, r, g, xf, yf):
        (sx, sy), out = _einsum_parse(equation, (x, y))
        alone = [c for c in sx + sy if c not in out and (c in sx) != (c in sy)]
        if alone:
            raise ValueError(f"einsum {equation!r} sums index {alone[0]!r} inside one operand; that sum is not a product "
                             "and has no accumulator emulation: sum it first")
        batch = [c for c in out if c in sx and c in sy]
        left = [c for c in out if c in sx and c not in sy]
        right = [c for c in out if c in sy and c not in sx]
        inner = [c for c in sx if c in sy and c not in out]
        xs = torch.einsum(f"{sx}->{''.join(batch + left + inner)}", x)
        ys = torch.einsum(f"{sy}->{''.join(batch + inner + right)}", y)
        shape = dict(zip(sx, x.shape)) | dict(zip(sy, y.shape))
        nb, nl, ni, nr = (math.prod(shape[c] for c in group) for group in (batch, left, inner, right))
        res = arith.matmul(xs.reshape(nb, nl, ni), ys.reshape(nb, ni, nr), a, rounding=r, generator=g, a_format=xf, b_format=yf)
        res = res.reshape(*(shape[c] for c in batch + left + right))
        return torch.einsum(f"{''.join(batch + left + right)}->{out}", res)

    return acc


def _einsum(backend: Backend, equation, *operands):
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if len(operands) != 2:
        if len(operands) == 1:
            return backend.elementwise("einsum", lambda: torch.einsum(equation, *operands))
        return backend.unsupported(torch.einsum, None, (equation, *operands), {})
    a, b = operands
    inputs, out = _einsum_parse(equation, operands)
    macs, outputs = _einsum_macs(inputs, operands, out)
    shared = [c for c in inputs[0] if c in inputs[1] and c not in out]

    def compute(x, y, bb):
        return torch.einsum(equation, x, y)

    axes = (inputs[0].index(shared[-1]), inputs[1].index(shared[-1])) if shared else (-1, -1)
    return backend.product(Product("einsum", (a, b), _roles(a, b), None, compute, _einsum_acc(equation), macs=macs,
                                   outputs=outputs, in_channels=math.prod(dict(zip(inputs[0], a.shape))[c] for c in shared),
                                   axes=axes))


# ---------------------------------------------------------------------------- embeddings
def _embedding(backend: Backend, input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    def compute(i, w, b):
        return F.embedding(i, w, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)

    return backend.product(Product("embedding", (input, weight), ("index", "weights"), None, compute, None,
                                   macs=0, outputs=input.numel() * weight.shape[-1]))


def _bags(input: torch.Tensor, offsets: torch.Tensor | None, include_last_offset: bool, padding_idx: int | None,
          n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) padded indices (padding: -1) and the (B,) bag sizes of an embedding_bag call."""
    if input.dim() == 2:
        idx = input
    elif offsets is None:
        raise ValueError("embedding_bag: a 1-D input needs offsets")
    else:
        bounds = offsets.tolist() + ([] if include_last_offset else [input.numel()])
        pieces = [input[s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        width = max((len(p) for p in pieces), default=0)
        idx = torch.full((len(pieces), width), -1, dtype=input.dtype, device=input.device)
        for i, p in enumerate(pieces):
            idx[i, : len(p)] = p
    keep = idx >= 0
    if padding_idx is not None:
        keep &= idx != (padding_idx % n_rows)
    return torch.where(keep, idx, -1), keep.sum(1)


def _embedding_bag(backend: Backend, input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                   mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    def compute(i, w, b):
        return F.embedding_bag(i, w, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse, per_sample_weights,
                               include_last_offset, padding_idx)

    idx, counts = _bags(input, offsets, include_last_offset, padding_idx, weight.shape[0])

    def acc(i, w, b, a, r, g, xf, wf):
        rows = torch.where((idx >= 0)[..., None], w[idx.clamp(min=0)], torch.zeros((), dtype=w.dtype, device=w.device))
        scale = None
        if per_sample_weights is not None:
            scale, _ = _bags(per_sample_weights, offsets, include_last_offset, None, weight.shape[0])
            scale = torch.where(idx >= 0, scale.to(w.dtype), 0)
        return arith.embedding_bag(rows, scale, a, counts=counts if mode == "mean" else None, rounding=r, generator=g, table_format=wf)

    arithmetic = mode in ("sum", "mean")
    entries = int(counts.sum())
    return backend.product(Product("embedding_bag", (input, weight), ("index", "weights"), None, compute,
                                   acc if arithmetic else None, macs=entries * weight.shape[1] if arithmetic else 0,
                                   outputs=idx.shape[0] * weight.shape[1]))


# ------------------------------------------------------------------------------- tables
def _product_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    from . import attention, recurrent

    table: dict[Callable[..., Any], Callable[..., Any]] = {
        F.linear: _linear,
        torch.matmul: _matmul, torch.Tensor.matmul: _matmul, torch.Tensor.__matmul__: _matmul, torch.Tensor.__rmatmul__: _rmatmul,
        torch.mm: _bmm("mm"), torch.Tensor.mm: _bmm("mm"), torch.bmm: _bmm("bmm"), torch.Tensor.bmm: _bmm("bmm"),
        torch.addmm: _add_product("addmm"), torch.Tensor.addmm: _add_product("addmm"),
        torch.baddbmm: _add_product("baddbmm"), torch.Tensor.baddbmm: _add_product("baddbmm"),
        torch.einsum: _einsum,
        F.embedding: _embedding, F.embedding_bag: _embedding_bag,
        F.scaled_dot_product_attention: attention.scaled_dot_product_attention,
        F.multi_head_attention_forward: attention.multi_head_attention_forward,
    }
    for nd in (1, 2, 3):
        table[(F.conv1d, F.conv2d, F.conv3d)[nd - 1]] = _conv(nd)
        table[(F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]] = _conv_transpose(nd)
    table.update(recurrent.ADAPTERS)
    return table


def _elementwise_table() -> dict[Callable[..., Any], str]:
    kinds: dict[str, list[Any]] = {
        "add": [torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__iadd__],
        "sub": [torch.sub, torch.Tensor.sub, torch.Tensor.sub_, torch.Tensor.__sub__, torch.Tensor.__rsub__, torch.Tensor.__isub__],
        "mul": [torch.mul, torch.Tensor.mul, torch.Tensor.mul_, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.__imul__],
        "div": [torch.div, torch.Tensor.div, torch.Tensor.div_, torch.Tensor.__truediv__, torch.Tensor.__itruediv__],
        "relu": [F.relu, torch.relu, torch.Tensor.relu, F.relu_, torch.relu_, torch.Tensor.relu_],
        "relu6": [F.relu6], "gelu": [F.gelu], "silu": [F.silu], "mish": [F.mish], "elu": [F.elu], "softplus": [F.softplus],
        "leaky_relu": [F.leaky_relu], "hardtanh": [F.hardtanh], "hardswish": [F.hardswish], "hardsigmoid": [F.hardsigmoid],
        "sigmoid": [torch.sigmoid, torch.Tensor.sigmoid, F.sigmoid], "tanh": [torch.tanh, torch.Tensor.tanh, F.tanh],
        "softmax": [F.softmax, torch.softmax, torch.Tensor.softmax], "log_softmax": [F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax],
        "layer_norm": [F.layer_norm], "batch_norm": [F.batch_norm], "group_norm": [F.group_norm], "instance_norm": [F.instance_norm],
        "local_response_norm": [F.local_response_norm],
        "dropout": [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout],
        "rms_norm": [F.rms_norm] if hasattr(F, "rms_norm") else [],
        "max_pool": [F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d],
        "avg_pool": [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d],
    }
    return {f: kind for kind, funcs in kinds.items() for f in funcs}


def unsupported_macs(func: Callable[..., Any], args: tuple, kwargs: dict | None = None) -> int | None:
    """MACs of a product call the emulator cannot compute (None when not known)."""
    t = [a for a in args if isinstance(a, torch.Tensor)]
    name = getattr(func, "__name__", "")
    if name in ("mv", "addmv") and len(t) >= 2:
        return t[-2].numel()
    if name in ("dot", "vdot") and t:
        return t[0].numel()
    if name == "inner" and len(t) == 2:
        return t[0].numel() * (t[1].numel() // max(t[1].shape[-1], 1)) if t[0].dim() else t[1].numel()
    if name == "addbmm" and len(t) >= 3:
        return _matmul_macs(t[1], t[2])[0]
    if name == "bilinear" and len(t) >= 3:
        return t[0].numel() // max(t[0].shape[-1], 1) * t[2].numel()
    if name == "tensordot" and len(t) == 2:
        dims = (kwargs or {}).get("dims", args[2] if len(args) > 2 else 2)
        contracted = list(range(t[0].dim() - dims, t[0].dim())) if isinstance(dims, int) else list(dims[0])
        inner = math.prod(t[0].shape[d] for d in contracted)
        return t[0].numel() * (t[1].numel() // max(inner, 1))
    if name in ("chain_matmul", "multi_dot"):
        mats = t if t else list(args[0])
        total, left = 0, mats[0]
        for m in mats[1:]:
            total += left.shape[-2] * left.shape[-1] * m.shape[-1] if left.dim() > 1 else left.numel() * m.shape[-1]
            left = torch.empty(left.shape[-2] if left.dim() > 1 else 1, m.shape[-1], device="meta")
        return total
    return None


#: calls that carry MACs but have no emulation: refused (strict) or run in float with a warning
UNSUPPORTED: set[Callable[..., Any]] = {
    torch.mv, torch.Tensor.mv, torch.addmv, torch.dot, torch.Tensor.dot, torch.vdot, torch.inner, torch.tensordot,
    torch.addbmm, torch.chain_matmul, torch.linalg.multi_dot, torch.bilinear, F.bilinear, torch.Tensor.addmv, torch.Tensor.addbmm,
    torch._transformer_encoder_layer_fwd, torch._native_multi_head_attention, torch.conv_tbc,
}

PRODUCTS = _product_table()
ELEMENTWISE = _elementwise_table()
