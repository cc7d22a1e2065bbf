"""Run any PyTorch model the way a reduced-precision accelerator would, under a PrecisionPlan.

`emulate(model, plan)` returns a new module (the model is untouched) in which every compute layer
(Conv1d, Conv2d, Linear) quantizes its stored weights and bias, quantizes every input, and, where
the plan sets an accumulator, computes with `quantscope.arith`. Emulated layers keep their class
hierarchy and parameter names, so float and emulated state dicts load into each other, and the
float parameters are the full-precision shadow copy that quantization-aware training updates.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import did_you_mean
from . import arith
from .formats import Float32, Format
from .plan import LayerPrecision, PrecisionPlan
from .quantize import _check_rounding, quantize, quantize_ste

__all__ = [
    "COMPUTE_TYPES",
    "LayerInfo",
    "LayerStats",
    "layers",
    "emulate",
    "fold_batchnorm",
    "observe",
    "compute_layer_names",
]

COMPUTE_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Linear)


def compute_layer_names(model: nn.Module) -> list[str]:
    """Names of the model's compute layers in definition order."""
    return [n for n, m in model.named_modules() if isinstance(m, COMPUTE_TYPES)]


# ------------------------------------------------------------------------------ layer discovery
@dataclass(frozen=True)
class LayerInfo:
    """One compute layer as executed on an example batch (shapes and counts per example)."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weights: int
    bias: int
    macs: int
    followers: tuple[str, ...] = ()
    group: str = ""
    kernel_size: tuple[int, ...] = ()
    conv_groups: int = 1

    @property
    def inputs(self) -> int:
        """Input elements per example."""
        return math.prod(self.input_shape)

    @property
    def outputs(self) -> int:
        """Output elements per example."""
        return math.prod(self.output_shape)


@dataclass
class _Call:
    name: str
    module: nn.Module
    inp: torch.Tensor
    out: torch.Tensor


def _leaf_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, m in model.named_modules():
        if isinstance(m, COMPUTE_TYPES) or (not any(True for _ in m.children()) and name):
            yield name, m


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def _trace(model: nn.Module, example_input: torch.Tensor) -> list[_Call]:
    """Leaf-module calls in execution order on one eval-mode, no-grad forward pass."""
    calls: list[_Call] = []
    handles = []
    for name, m in _leaf_modules(model):
        def hook(mod, args, out, name=name):
            inp = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if isinstance(out, torch.Tensor) and inp is not None:
                calls.append(_Call(name, mod, inp, out))
        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), _eval_mode(model):
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    return calls


def _macs(m: nn.Module, out: torch.Tensor) -> int:
    per_example = out[0].numel()
    if isinstance(m, nn.Linear):
        return per_example * m.in_features
    return per_example * (m.in_channels // m.groups) * math.prod(m.kernel_size)


def layers(
    model: nn.Module,
    example_input: torch.Tensor,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[LayerInfo]:
    """The compute layers in execution order, with per-example shapes, weight counts and MACs.

    Each compute layer is grouped with the element-wise and pooling layers that follow it up to
    the next compute layer (`followers`; Judd's "layers"), and `group` is its own name. An
    explicit `groups` map {group: [module names]} names the groups instead; every compute layer
    must belong to exactly one group, and unknown module names are an error.
    """
    calls = _trace(model, example_input)
    compute = [c for c in calls if isinstance(c.module, COMPUTE_TYPES)]
    if not compute:
        raise ValueError(f"{type(model).__name__} has no compute layer ({', '.join(t.__name__ for t in COMPUTE_TYPES)})")
    followers: dict[str, list[str]] = {}
    current = None
    for c in calls:
        if isinstance(c.module, COMPUTE_TYPES):
            current = c.name
            followers.setdefault(current, [])
        elif current is not None and c.name not in followers[current]:
            followers[current].append(c.name)
    membership = _group_membership(model, [c.name for c in compute], groups)
    seen: dict[str, LayerInfo] = {}
    for c in compute:
        if c.name in seen:  # a layer called twice: count its work twice
            prev = seen[c.name]
            seen[c.name] = LayerInfo(**{**prev.__dict__, "macs": prev.macs + _macs(c.module, c.out)})
            continue
        m = c.module
        seen[c.name] = LayerInfo(
            name=c.name,
            kind=type(m).__name__.lower(),
            input_shape=tuple(c.inp.shape[1:]),
            output_shape=tuple(c.out.shape[1:]),
            weights=m.weight.numel(),
            bias=0 if m.bias is None else m.bias.numel(),
            macs=_macs(m, c.out),
            followers=tuple(followers.get(c.name, ())),
            group=membership[c.name],
            kernel_size=tuple(getattr(m, "kernel_size", ())),
            conv_groups=int(getattr(m, "groups", 1)),
        )
    return list(seen.values())


def _group_membership(model: nn.Module, compute: list[str], groups: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    if groups is None:
        return {n: n for n in compute}
    known = [n for n, _ in model.named_modules() if n]
    member: dict[str, str] = {}
    for group, names in groups.items():
        for n in names:
            if n not in known:
                raise ValueError(f"group {group!r}: no module named {n!r}{did_you_mean(n, known)}; modules: {', '.join(known)}")
            if n in compute:
                if n in member:
                    raise ValueError(f"compute layer {n!r} is in two groups: {member[n]!r} and {group!r}")
                member[n] = group
    missing = [n for n in compute if n not in member]
    if missing:
        raise ValueError(f"compute layers in no group: {', '.join(missing)}")
    return member


# ----------------------------------------------------------------------------- BatchNorm folding
def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def fold_batchnorm(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """A copy of `model` with every BatchNorm that directly consumes a conv's output folded into
    that conv (w' = w*g/s, b' = (b - mean)*g/s + beta, s = sqrt(var + eps)); the BN becomes Identity.
    Uses the running statistics, i.e. inference semantics."""
    model = copy.deepcopy(model)
    calls = _trace(model, example_input)
    producer = {id(c.out): c for c in calls if isinstance(c.module, (nn.Conv1d, nn.Conv2d))}
    for c in calls:
        if not isinstance(c.module, (nn.BatchNorm1d, nn.BatchNorm2d)) or id(c.inp) not in producer:
            continue
        conv, bn = producer[id(c.inp)].module, c.module
        if bn.running_mean is None:
            continue  # no running statistics to fold
        with torch.no_grad():
            scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
            old_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter((old_bias - bn.running_mean) * scale + shift)
        _set_module(model, c.name, nn.Identity())
    return model


# ------------------------------------------------------------------------------------ statistics
@dataclass
class LayerStats:
    """What one layer's data and weights looked like during an observed run."""

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
        return self.weight_saturated / max(self.weight_count, 1)

    @property
    def weight_flushed_fraction(self) -> float:
        return self.weight_flushed / max(self.weight_count, 1)


def _tally(x: torch.Tensor, q: torch.Tensor, fmt: Format) -> tuple[float, int, int]:
    """(max |x|, count outside fmt's range, count nonzero -> zero)."""
    x = x.detach()
    max_abs = float(x.abs().max()) if x.numel() else 0.0
    if isinstance(fmt, Float32):
        return max_abs, 0, 0
    saturated = int(((x > fmt.max_value) | (x < fmt.min_value)).sum())
    flushed = int(((x != 0) & (q.detach() == 0)).sum())
    return max_abs, saturated, flushed


@contextlib.contextmanager
def observe(model: nn.Module) -> Iterator[dict[str, LayerStats]]:
    """Collect per-layer statistics of an emulated model while the block runs.

        with qs.observe(qmodel) as stats:
            qmodel(x)
        stats["conv1"].data_saturated_fraction
    """
    stats: dict[str, LayerStats] = {}
    emulated = [(n, m) for n, m in model.named_modules() if isinstance(m, _EmulatedLayer)]
    if not emulated:
        raise ValueError("observe() needs a model returned by quantscope.emulate()")
    for name, m in emulated:
        m.qs_stats = stats.setdefault(name, LayerStats(name, str(m.qs_data_format), str(m.qs_precision.weights)))
    try:
        yield stats
    finally:
        for _, m in emulated:
            m.qs_stats = None


# ------------------------------------------------------------------------------ emulated layers
class _EmulatedLayer:
    """Mixin placed in front of a compute layer's class by `emulate` (see module docstring)."""

    qs_precision: LayerPrecision
    qs_data_format: Format  # static (adaptive data formats are resolved by calibration)
    qs_rounding: str
    qs_stats: LayerStats | None
    qs_cache: dict

    def _qs_param(self, which: str, fmt: Format) -> tuple[torch.Tensor | None, Format | None]:
        """The quantized weight or bias and its static format (cached when not training)."""
        p = getattr(self, which)
        if p is None or isinstance(fmt, Float32):
            return p, None if p is None else Float32()
        static = fmt.resolve(p)
        if self.training and torch.is_grad_enabled() and p.requires_grad:
            return quantize_ste(p, static, self.qs_rounding), static
        key = (p._version, p.data_ptr(), static)
        hit = self.qs_cache.get(which)
        if hit is None or hit[0] != key:
            hit = (key, quantize(p.detach(), static, self.qs_rounding))
            self.qs_cache[which] = hit
        return hit[1], static

    def _qs_float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self, nn.Linear):
            return F.linear(x, w, b)
        return self._conv_forward(x, w, b)  # type: ignore[attr-defined]

    def _qs_arith(self, x: torch.Tensor, w: torch.Tensor, b, w_fmt: Format | None) -> torch.Tensor:
        acc = self.qs_precision.accumulator
        kw = dict(rounding=self.qs_rounding, weight_format=w_fmt, data_format=self.qs_data_format)
        if isinstance(self, nn.Linear):
            return arith.linear(x, w, b, acc, **kw)
        op = arith.conv2d if isinstance(self, nn.Conv2d) else arith.conv1d
        return op(x, w, b, acc, self.stride, self.padding, self.dilation, self.groups, **kw)  # type: ignore[attr-defined]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D401 - nn.Module API
        p = self.qs_precision
        data_fmt = self.qs_data_format
        if isinstance(data_fmt, Float32):
            xq = x
        elif self.training and torch.is_grad_enabled():
            xq = quantize_ste(x, data_fmt, self.qs_rounding)
        else:
            xq = quantize(x, data_fmt, self.qs_rounding)
        w, w_fmt = self._qs_param("weight", p.weights)
        b, _ = self._qs_param("bias", p.bias_format)
        if self.qs_stats is not None:
            self._qs_record(x, xq, w)
        if p.accumulator is None:
            return self._qs_float(xq, w, b)
        y = self._qs_arith(xq, w, b, w_fmt)
        if torch.is_grad_enabled() and (xq.requires_grad or w.requires_grad):
            y = _ValueOf.apply(self._qs_float(xq, w, b), y)  # exact values, float gradient
        return y

    def _qs_record(self, x: torch.Tensor, xq: torch.Tensor, w: torch.Tensor) -> None:
        s = self.qs_stats
        assert s is not None
        max_abs, sat, flushed = _tally(x, xq, self.qs_data_format)
        s.data_max_abs = max(s.data_max_abs, max_abs)
        s.data_count += x.numel()
        s.data_saturated += sat
        s.data_flushed += flushed
        w_fmt = self.qs_precision.weights.resolve(self.weight)  # type: ignore[attr-defined]
        s.weight_max_abs, s.weight_saturated, s.weight_flushed = _tally(self.weight, w, w_fmt)  # type: ignore[attr-defined]
        s.weight_count = self.weight.numel()  # type: ignore[attr-defined]

    def extra_repr(self) -> str:
        base = super().extra_repr()  # type: ignore[misc]
        return f"{base}, precision=({self.qs_precision}), data={self.qs_data_format}"


class _ValueOf(torch.autograd.Function):
    """Forward: the second tensor's values, bit for bit; backward: the first tensor's gradient."""

    @staticmethod
    def forward(ctx, differentiable, values):  # type: ignore[override]
        return values.clone()

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return grad, None


_EMULATED_CLASSES: dict[type, type] = {}


def _emulated_class(cls: type) -> type:
    """`Emulated<cls>`: a subclass of the layer's own class with the emulating forward."""
    if cls not in _EMULATED_CLASSES:
        _EMULATED_CLASSES[cls] = type(f"Emulated{cls.__name__}", (_EmulatedLayer, cls), {})
    return _EMULATED_CLASSES[cls]


def _calibrate(model: nn.Module, names: list[str], calibration: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each named compute layer's input on the calibration batch (float model)."""
    wanted = set(names)
    return {c.name: c.inp for c in _trace(model, calibration) if c.name in wanted}


def emulate(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision,
    calibration: torch.Tensor | None = None,
    *,
    fold_bn: bool = False,
    rounding: str = "nearest",
) -> nn.Module:
    """A new module that runs `model` under `plan`; `model` itself is not modified.

    `calibration` is a batch of inputs: needed when a data format is adaptive (`fixed<B,auto>`,
    `pow2<B>`, `binary<mean>`: the range comes from each layer's input on this batch in the float
    model) and when `fold_bn=True` (BatchNorm after a conv is folded into it first). Weight
    formats that are adaptive take their range from the current weights at every quantization.
    Works in train() mode with straight-through gradients, and on any device.
    """
    _check_rounding(rounding)
    if isinstance(plan, LayerPrecision):
        plan = PrecisionPlan(plan)
    if not isinstance(plan, PrecisionPlan):
        raise ValueError(f"emulate expects a PrecisionPlan or LayerPrecision, got {type(plan).__name__}")
    names = compute_layer_names(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no compute layer ({', '.join(t.__name__ for t in COMPUTE_TYPES)})")
    plan.validate(names)
    if fold_bn:
        if calibration is None:
            raise ValueError("fold_bn=True needs an example batch: pass calibration=...")
        new = fold_batchnorm(model, calibration)
    else:
        new = copy.deepcopy(model)
    precisions = {n: plan.for_layer(n) for n in names}
    needs_calibration = [n for n in names if precisions[n].data.adaptive]
    if needs_calibration and calibration is None:
        raise ValueError(
            f"adaptive data formats ({', '.join(sorted({str(precisions[n].data) for n in needs_calibration}))}) "
            f"need a calibration batch: pass calibration=... (layers: {', '.join(needs_calibration)})"
        )
    seen_inputs = _calibrate(new, needs_calibration, calibration) if needs_calibration else {}
    for name in names:
        precision = precisions[name]
        if precision.is_float32:
            continue
        layer = new.get_submodule(name)
        if precision.accumulator is not None and isinstance(layer, (nn.Conv1d, nn.Conv2d)):
            if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
                raise ValueError(
                    f"layer {name!r}: accumulator emulation needs numeric zero padding, got padding="
                    f"{layer.padding!r}, padding_mode={layer.padding_mode!r}"
                )
        data_fmt = precision.data.resolve(seen_inputs[name]) if name in seen_inputs else precision.data
        layer.__class__ = _emulated_class(type(layer))
        layer.qs_precision = precision
        layer.qs_data_format = data_fmt
        layer.qs_rounding = rounding
        layer.qs_stats = None
        layer.qs_cache = {}
    new.qs_plan = plan  # type: ignore[attr-defined]
    return new

