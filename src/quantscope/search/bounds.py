"""Sakr et al.'s analytical bounds on the mismatch between a fixed-point network and its float
original, from one forward/backward pass over an estimation set, with no simulation.

Every product op's activation operands (A: its data, and the second operand of a weight-free
product such as attention's scores) and every weight (W) are quantized to fixed point with B bits;
each op's range comes from the estimation set as a power of two s (a signed range [-s, s) or, for
non-negative data, [0, 2s)), so the step of a B-bit quantity is Delta(B) = s 2^-(B-1) (Sakr's
convention, where s = 1). Biases stay float. With Z the float network's outputs, Y its decision,
v_i = Z_Y - Z_i and g_ih = d(Z_i - Z_Y)/dh:

    E_A = E[ sum_{i != Y} sum_{h in A} (s_h g_ih)^2 / v_i^2 ],  E_W likewise over weights
    Theorem 1:  p_m <= 2^-2(B_A-1) E_A / 24 + 2^-2(B_W-1) E_W / 24
    Theorem 2:  p_m <= E[ sum_{i != Y} exp(-S_i) prod_h sinh(T_i d_ih) / (T_i d_ih) ],
                d_ih = Delta_h |g_ih| / 2,  S_i = 3 v_i^2 / sum_h d_ih^2,  T_i = S_i / v_i
    rule:       B_W - B_A = round(log2(sqrt(E_W / E_A)))

Theorem 2 is the Chernoff bound on the same event: with independent uniform noise, the output
difference's noise sum_h g_ih e_h has moment generating function prod_h sinh(t d_ih)/(t d_ih);
Markov's inequality at t = T_i (minimizing the quadratic bound of its log) gives the expression.
Theorem 2 is evaluated on log-spaced bins of the |s g| values (upper edges: still a bound).

Gradients are taken one example at a time through the emulator's op interception, so every op the
model executes counts (grouped and 1-D convolutions, attention, recurrent products, embeddings),
each op's operands are separate noise sources (an input read by three projections is quantized
three times), and a weight used at every step of a recurrent layer is one noise source whose
gradient sums over the steps. A linear op's weight gradient on one input row is the outer product
of its output gradient and that row, whose |g| histogram is computed from the two factors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..emulation import eval_mode, trace
from ..emulation.calls import Product
from ..emulation.mode import OpMode
from ..emulation.scopes import ModuleScopes, NameRegistry
from ..formats import FixedPoint
from ..plan import PrecisionPlan

__all__ = ["RANGE_CONVENTIONS", "LayerRange", "SakrBounds", "fixed_format", "layer_ranges", "linearized_mismatch", "log_sinhc", "noise_mismatch",
           "sakr_bounds", "sakr_sweep"]


@dataclass(frozen=True)
class LayerRange:
    """An op's power-of-two range scales: data, the second operand of a weight-free product
    (rhs), and weights (a scale is None where the op has no such operand)."""

    name: str
    data_scale: float | None
    data_signed: bool
    weight_scale: float | None
    rhs_scale: float | None = None
    rhs_signed: bool = True

    def scale(self, role: str) -> float:
        """The scale of an operand role ("data", "rhs", "weights")."""
        value = {"data": self.data_scale, "rhs": self.rhs_scale, "weights": self.weight_scale}[role]
        return 1.0 if value is None else value

    def signs(self) -> bool | tuple[bool, bool]:
        """The op's operand signedness as `data_plan` takes it: the data's, paired with the
        second operand's where a weight-free product's operands differ (attention's P and V)."""
        return self.data_signed if self.rhs_scale is None or self.rhs_signed == self.data_signed else (self.data_signed, self.rhs_signed)


def _pow2_scale(max_abs: float, signed: bool) -> float:
    """Smallest power-of-two scale whose range ([-s, s) or [0, 2s)) holds max_abs itself."""
    if max_abs <= 0:
        return 1.0
    k = math.floor(math.log2(max_abs)) + 1  # 2^k > max_abs, so the top value never saturates
    return 2.0**k if signed else 2.0 ** (k - 1)


#: range conventions: "max" gives each operand the power-of-two range holding its largest
#: magnitude; "paper" is Sakr et al.'s: [-1, 1) for weights and signed data, [0, 2) for
#: non-negative (clipped) activations, whatever the values (beyond it they saturate)
RANGE_CONVENTIONS = ("max", "paper")


def fixed_format(bits: int, scale: float, signed: bool) -> FixedPoint:
    """The B-bit fixed point whose step is scale * 2^-(B-1) (range [-s, s) or [0, 2s))."""
    frac = bits - 1 - int(round(math.log2(scale)))
    return FixedPoint(bits, frac, signed=signed)


def log_sinhc(x: torch.Tensor) -> torch.Tensor:
    """log(sinh(x)/x) for x >= 0, stable for small and large x."""
    small = x < 1e-3
    xs = torch.where(small, torch.ones_like(x), x)
    big = xs + torch.log1p(-torch.exp(-2 * xs)) - math.log(2) - torch.log(xs)
    return torch.where(small, x * x / 6, big)


@dataclass
class SakrBounds:
    """E_A, E_W and Theorem 2 estimates for requested (B_A, B_W) pairs, with the op ranges."""

    e_a: float
    e_w: float
    ranges: list[LayerRange]
    float_error: float
    examples: int
    theorem2: dict[tuple[int, int], float] = field(default_factory=dict)

    def theorem1(self, b_a: int, b_w: int) -> float:
        """Theorem 1 upper bound on the mismatch probability."""
        return (2.0 ** (-2 * (b_a - 1)) * self.e_a + 2.0 ** (-2 * (b_w - 1)) * self.e_w) / 24

    def rule_offset(self) -> int:
        """B_W - B_A from the precision rule."""
        return int(round(math.log2(math.sqrt(self.e_w / self.e_a)))) if self.e_a > 0 and self.e_w > 0 else 0

    def plan(self, b_a: int, b_w: int) -> PrecisionPlan:
        """The fixed-point plan whose quantization noise the bounds describe (biases float)."""
        plan = PrecisionPlan.uniform(bias="float32")
        for r in self.ranges:
            formats: dict[str, FixedPoint] = {}
            if r.data_scale is not None:
                formats["data"] = fixed_format(b_a, r.data_scale, r.data_signed)
            if r.rhs_scale is not None:
                formats["rhs"] = fixed_format(b_a, r.rhs_scale, r.rhs_signed)
            if r.weight_scale is not None:
                formats["weights"] = fixed_format(b_w, r.weight_scale, True)
            plan = plan.with_layer(r.name, **formats)
        return plan

    def error_bound(self, b_a: int, b_w: int, theorem: int = 2) -> float:
        """Upper bound on the fixed-point network's test error: float error + p_m bound."""
        p = self.theorem2[(b_a, b_w)] if theorem == 2 else self.theorem1(b_a, b_w)
        return min(1.0, self.float_error + p)


# Theorem 2 evaluates sinh(T d)/(T d) at the upper edge of fine log-spaced bins of |s g| (16 per
# octave, 2^-80 .. 2^40): the term grows with |g|, so the result stays an upper bound, looser by a
# factor of at most 2^(1/16) in each d, and its cost no longer grows with the number of precisions.
_BINS_PER_OCTAVE, _LOW, _HIGH = 16, -80, 40
_UPPER = 2.0 ** (torch.arange(_LOW * _BINS_PER_OCTAVE, _HIGH * _BINS_PER_OCTAVE, dtype=torch.float64) / _BINS_PER_OCTAVE + 1.0 / _BINS_PER_OCTAVE)


def _log_histogram(values: torch.Tensor) -> torch.Tensor:
    """Per-example counts of |values| (N, ...) in the log bins, zeros dropped: (N, bins)."""
    n, nb = values.shape[0], _UPPER.numel()
    a = values.reshape(n, -1).abs()
    nz = a > 0
    b = torch.floor(torch.log2(a.clamp_min(2.0**_LOW)) * _BINS_PER_OCTAVE).long() - _LOW * _BINS_PER_OCTAVE
    b = b.clamp(0, nb - 1) + torch.arange(n)[:, None] * nb
    return torch.bincount(b[nz], minlength=n * nb).double().view(n, nb)


def _product_histogram(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    """Histogram of all products x*y from histograms of x and y (per example).

    x in bin i and y in bin j give x*y below the upper edge of bin i + j + 1 + low offset, so the
    counts are placed there (conservative); computed as a convolution with the FFT.
    """
    nb = h1.shape[1]
    size = 2 * nb
    conv = torch.fft.irfft(torch.fft.rfft(h1, size) * torch.fft.rfft(h2, size), size).clamp_min(0).round()
    # product bin index = i + j + 1 + _LOW * _BINS_PER_OCTAVE in the shared bin numbering
    shift = 1 + _LOW * _BINS_PER_OCTAVE
    out = torch.zeros_like(h1)
    idx = torch.arange(size) + shift
    inside = (idx >= 0) & (idx < nb)
    out[:, idx[inside]] = conv[:, inside]
    out[:, 0] += conv[:, idx < 0].sum(1)  # products below the range go to the lowest bin (upper edge)
    out[:, nb - 1] += conv[:, idx >= nb].sum(1)
    return out


def _extent(seen: list[torch.Tensor] | None) -> tuple[float, float] | None:
    if not seen:
        return None
    flat = torch.cat([t.reshape(-1) for t in seen])
    return float(flat.min()), float(flat.max())


def layer_ranges(model: nn.Module, x: torch.Tensor, convention: str = "max") -> list[LayerRange]:
    """Power-of-two range scales of every product op's activation operands (from x) and weights,
    under a `RANGE_CONVENTIONS` convention (signedness always from the data)."""
    if convention not in RANGE_CONVENTIONS:
        raise ValueError(f"range convention must be one of {', '.join(RANGE_CONVENTIONS)}, got {convention!r}")
    ranges = _max_ranges(model, x)
    if convention == "paper":
        return [LayerRange(r.name, None if r.data_scale is None else 1.0, r.data_signed, None if r.weight_scale is None else 1.0,
                           None if r.rhs_scale is None else 1.0, r.rhs_signed) for r in ranges]
    return ranges


def _max_ranges(model: nn.Module, x: torch.Tensor) -> list[LayerRange]:
    tr = trace(model, x, calibrate=True)
    out = []
    for o in tr.products:
        cal = tr.calibration.get(o.name, {})
        data, rhs = _extent(cal.get("data")), _extent(cal.get("rhs"))
        weights = _extent(cal.get("weights"))
        if o.weight is not None:
            w = model.get_parameter(o.weight).detach()
            weights = (float(w.min()), float(w.max()))
        scale = {}
        for role, ext in (("data", data), ("rhs", rhs), ("weights", weights)):
            if ext is not None:
                scale[role] = (_pow2_scale(max(abs(ext[0]), abs(ext[1])), ext[0] < 0 or role == "weights"), ext[0] < 0)
        out.append(LayerRange(o.name, scale.get("data", (None,))[0], scale.get("data", (None, True))[1],
                              scale.get("weights", (None,))[0], scale.get("rhs", (None,))[0], scale.get("rhs", (None, True))[1]))
    return out


# ------------------------------------------------------------------------- gradient capture
@dataclass
class _Call:
    """One product call under capture: its graph nodes per operand role, and the output node."""

    name: str
    nodes: dict[str, torch.Tensor]
    output: torch.Tensor
    rank_one: bool


class _Capture:
    """A backend that gives every product operand and output its own graph node."""

    def __init__(self, scopes: ModuleScopes, noise: Callable[[str, str, torch.Tensor], torch.Tensor] | None = None) -> None:
        self.scopes = scopes
        self.calls: list[_Call] = []
        self.noise = noise

    def product(self, p: Product) -> torch.Tensor:
        name = self.scopes.name("product", p.kind, p.label, p.weight)
        operands, nodes = [], {}
        for role, t in zip(p.roles, p.operands):
            if role != "index" and t.is_floating_point():
                t = t.view_as(t) if t.requires_grad else t.detach().requires_grad_(True)
                if self.noise is not None:
                    t = t + self.noise(name, role, t)
                nodes[role] = t
            operands.append(t)
        out = p.compute(operands[0], operands[1], p.bias)
        if p.epilogue is not None:
            out = p.epilogue(out)
        out = out.view_as(out)
        data = nodes.get("data")
        rank_one = p.kind == "linear" and data is not None and data.numel() == data.shape[-1]  # one input row
        self.calls.append(_Call(name, nodes, out, rank_one))
        return out

    def elementwise(self, kind: str, compute: Callable[[], Any], label: str | None = None, inputs: tuple = ()) -> Any:
        return compute()

    def composite(self, original: Callable[[], Any], decomposed: Callable[[], Any]) -> Any:
        return decomposed()

    def unsupported(self, func: Any, macs: int | None, args: tuple, kwargs: dict) -> Any:
        raise ValueError(f"Sakr's bounds need every product op's gradients; {getattr(func, '__qualname__', func)} has no emulation")


def _capture(model: nn.Module, x: torch.Tensor, registry: NameRegistry, noise=None, grad: bool = True) -> tuple[torch.Tensor, list[_Call]]:
    scopes = ModuleScopes(model, registry)
    backend = _Capture(scopes, noise)
    with torch.set_grad_enabled(grad), scopes.active(), OpMode(backend):
        z = model(x)
    return z, backend.calls


@dataclass
class _Terms:
    """Per (example, class) terms of one chunk: margins, squared sums, |s g| histograms."""

    v: list[torch.Tensor] = field(default_factory=list)
    keep: list[torch.Tensor] = field(default_factory=list)
    sq_a: list[torch.Tensor] = field(default_factory=list)
    sq_w: list[torch.Tensor] = field(default_factory=list)
    hist_a: list[torch.Tensor] = field(default_factory=list)
    hist_w: list[torch.Tensor] = field(default_factory=list)


def _sources(calls: list[_Call]) -> list[tuple[_Call, str, torch.Tensor]]:
    """The tensors to differentiate: activation operands, weights (or, for a linear op called once
    on one row, the output, whose gradient gives the weight's as an outer product)."""
    calls_of: dict[str, int] = {}
    for c in calls:
        calls_of[c.name] = calls_of.get(c.name, 0) + 1
    out = []
    for c in calls:
        for role, node in c.nodes.items():
            if role != "weights":
                out.append((c, role, node))
            elif c.rank_one and calls_of[c.name] == 1:
                out.append((c, "output", c.output))
            else:
                out.append((c, role, node))
    return out


def _check_decisions(z: torch.Tensor) -> None:
    if z.dim() != 2:
        raise ValueError(f"Sakr's bounds need one decision per example (logits of shape (N, classes)); this model outputs "
                         f"{tuple(z.shape)} per batch (a language model decides once per position)")


def _class_grads(z: torch.Tensor, sources: list[tuple[_Call, str, torch.Tensor]], y: int) -> list[torch.Tensor]:
    """Per source: (classes, elements) gradients of Z_i - Z_y (zero rows for i = y)."""
    classes = z.shape[1]
    out = [torch.zeros(classes, t.numel(), dtype=torch.float64) for _, _, t in sources]
    tensors = [t for _, _, t in sources]
    for i in range(classes):
        if i == y:
            continue
        for k, g in enumerate(torch.autograd.grad(z[0, i] - z[0, y], tensors, retain_graph=True, allow_unused=True)):
            if g is not None:
                out[k][i] = g.detach().double().reshape(-1)
    return out


def _example(model: nn.Module, x1: torch.Tensor, scale: dict[str, LayerRange], registry: NameRegistry, histograms: bool,
             terms: _Terms) -> int:
    """Add one example's terms (all classes) to `terms`; returns the float decision."""
    z, calls = _capture(model, x1, registry)
    _check_decisions(z)
    y = int(z.argmax(1))
    sources = _sources(calls)
    grads = _class_grads(z, sources, y)
    classes = z.shape[1]
    sq_a = torch.zeros(classes, dtype=torch.float64)
    sq_w = torch.zeros(classes, dtype=torch.float64)
    bins = _UPPER.numel()
    hist_a = torch.zeros(classes, bins, dtype=torch.float64)
    hist_w = torch.zeros(classes, bins, dtype=torch.float64)
    weights: dict[str, torch.Tensor] = {}
    for (c, role, _), g in zip(sources, grads):
        if role == "output":  # rank one: the weight gradient is outer(output gradient, input row)
            dd = scale[c.name].scale("weights") * g
            aa = c.nodes["data"].detach().double().reshape(1, -1)
            sq_w += dd.square().sum(1) * aa.square().sum()
            if histograms:
                hist_w += _product_histogram(_log_histogram(dd), _log_histogram(aa).expand(classes, -1))
        elif role == "weights":  # one noise source per op: gradients sum over its calls
            sg = scale[c.name].scale(role) * g
            weights[c.name] = sg if c.name not in weights else weights[c.name] + sg
        else:
            sg = scale[c.name].scale(role) * g
            sq_a += sg.square().sum(1)
            if histograms:
                hist_a += _log_histogram(sg)
    for sg in weights.values():
        sq_w += sg.square().sum(1)
        if histograms:
            hist_w += _log_histogram(sg)
    terms.v.append((z[0, y] - z[0]).detach().double())
    terms.keep.append((torch.arange(classes) != y).double())
    terms.sq_a.append(sq_a)
    terms.sq_w.append(sq_w)
    terms.hist_a.append(hist_a)
    terms.hist_w.append(hist_w)
    return y


def _theorem2(terms: _Terms, pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Sum over the chunk's (example, class) terms of Theorem 2's summand, per pair."""
    v, keep = torch.cat(terms.v), torch.cat(terms.keep)
    sq_a, sq_w = torch.cat(terms.sq_a), torch.cat(terms.sq_w)
    hist_a, hist_w = torch.cat(terms.hist_a), torch.cat(terms.hist_w)
    out = torch.zeros(len(pairs), dtype=torch.float64)
    for j, (b_a, b_w) in enumerate(pairs):
        da, dw = 2.0 ** -(b_a - 1) / 2, 2.0 ** -(b_w - 1) / 2
        d2 = da * da * sq_a + dw * dw * sq_w  # sum_h d_ih^2 (exact)
        s = 3 * v * v / d2.clamp_min(1e-300)
        t = s / v.clamp_min(1e-30)
        log_prod = (hist_a * log_sinhc(t[:, None] * da * _UPPER[None])).sum(1)
        log_prod += (hist_w * log_sinhc(t[:, None] * dw * _UPPER[None])).sum(1)
        out[j] = (keep * torch.exp(torch.clamp(-s + log_prod, max=50.0))).sum()
    return out


def sakr_bounds(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    precisions: Sequence[tuple[int, int]] = (),
    ranges: list[LayerRange] | None = None,
    batch_size: int = 25,
) -> SakrBounds:
    """E_A, E_W (and Theorem 2 at each (B_A, B_W) in `precisions`) over the estimation set x;
    Theorem 2 is accumulated `batch_size` examples at a time."""
    ranges = ranges or layer_ranges(model, x)
    scale = {r.name: r for r in ranges}
    pairs = list(precisions)
    registry = NameRegistry()
    e_a = e_w = 0.0
    t2 = torch.zeros(len(pairs), dtype=torch.float64)
    errors = 0
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            terms = _Terms()
            for n in range(start, min(start + batch_size, len(x))):
                y = _example(model, x[n : n + 1].detach(), scale, registry, bool(pairs), terms)
                errors += int(labels is not None and y != int(labels[n]))
            v, keep = torch.cat(terms.v), torch.cat(terms.keep)
            inv_v2 = keep / v.clamp_min(1e-30) ** 2
            e_a += float((torch.cat(terms.sq_a) * inv_v2).sum())
            e_w += float((torch.cat(terms.sq_w) * inv_v2).sum())
            if pairs:
                t2 += _theorem2(terms, pairs)
    n = len(x)
    bounds = SakrBounds(e_a / n, e_w / n, ranges, errors / n if labels is not None else float("nan"), n)
    bounds.theorem2 = {p: float(t2[j]) / n for j, p in enumerate(pairs)}
    return bounds


def sakr_sweep(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    bits: Sequence[int],
    rule_examples: int = 500,
    batch_size: int = 100,
    convention: str = "max",
) -> tuple[SakrBounds, list[tuple[int, int]], int]:
    """Sakr's figures in one call: the rule's offset from E_A, E_W on the first `rule_examples`,
    then both theorems at (B, B) and (B, B + offset) for every B in `bits` (offsets that leave
    2..24 bits are skipped), with ranges under `convention` (`RANGE_CONVENTIONS`). Returns the
    bounds, the (B_A, B_W) pairs (equal pairs first) and the offset."""
    ranges = layer_ranges(model, x, convention)
    base = sakr_bounds(model, x[:rule_examples], None if labels is None else labels[:rule_examples], ranges=ranges)
    offset = base.rule_offset()
    pairs = [(b, b) for b in bits] + [(b, b + offset) for b in bits if offset and 2 <= b + offset <= 24]
    bounds = sakr_bounds(model, x, labels, precisions=pairs, ranges=ranges, batch_size=batch_size)
    return bounds, pairs, offset


def _steps(scale: dict[str, LayerRange], b_a: int, b_w: int) -> Callable[[str, str], float]:
    return lambda name, role: scale[name].scale(role) * 2.0 ** -((b_w if role == "weights" else b_a) - 1)


def _first_order_change(sources, grads, weight_noise: dict[str, torch.Tensor], step, gen) -> torch.Tensor:
    """sum_h g_ih n_h per class: fresh noise on activations, the trial's draw on each op's weight."""
    change = torch.zeros(grads[0].shape[0], dtype=torch.float64)
    for (c, role, node), g in zip(sources, grads):
        if role == "weights" and c.name in weight_noise:
            noise = weight_noise[c.name]
        else:
            noise = (torch.rand(node.numel(), generator=gen, dtype=torch.float64) - 0.5) * step(c.name, role)
            if role == "weights":
                weight_noise[c.name] = noise
        change += g @ noise
    return change


def linearized_mismatch(
    model: nn.Module,
    x: torch.Tensor,
    b_a: int,
    b_w: int,
    ranges: list[LayerRange] | None = None,
    trials: int = 20,
    generator: torch.Generator | None = None,
) -> float:
    """Monte Carlo mismatch probability of the model both theorems bound: the float outputs plus
    their first-order response sum_h g_ih n_h to independent uniform noise n_h in
    [-Delta_h/2, Delta_h/2] on every activation operand and weight (Delta from `ranges` at B_A,
    B_W; one weight draw per trial, shared by all examples and calls of an op).

    Theorems 1 and 2 must upper-bound this at every precision (up to Monte Carlo error); where the
    real fixed-point network mismatches more than the bounds, the difference comes from its
    response to noise not being linear."""
    scale = {r.name: r for r in (ranges or layer_ranges(model, x))}
    step = _steps(scale, b_a, b_w)
    gen = generator or torch.Generator().manual_seed(0)
    registry = NameRegistry()
    weight_noise: list[dict[str, torch.Tensor]] = [{} for _ in range(trials)]
    flips = 0
    with eval_mode(model):
        for n in range(len(x)):
            z, calls = _capture(model, x[n : n + 1].detach(), registry)
            _check_decisions(z)
            y = int(z.argmax(1))
            sources = [(c, role, node) for c in calls for role, node in c.nodes.items()]
            grads = _class_grads(z, sources, y)
            margins = (z[0, y] - z[0]).detach().double()
            margins[y] = math.inf
            for trial in range(trials):
                change = _first_order_change(sources, grads, weight_noise[trial], step, gen)
                flips += int(bool((change > margins).any()))
    return flips / (len(x) * trials)


def noise_mismatch(
    model: nn.Module,
    x: torch.Tensor,
    b_a: int,
    b_w: int,
    ranges: list[LayerRange] | None = None,
    draws: int = 5,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> float:
    """Mean mismatch of the real (nonlinear) network when every product op's weights and
    activation operands get independent uniform noise in [-Delta/2, Delta/2] instead of being
    rounded: the theorems' noise model without their linearization. Weights get one draw per
    network instance (per op), activations fresh noise per call; averaged over `draws` instances.

    Comparing it with `linearized_mismatch` (same noise, first order) and with the rounded network
    separates the two ways a bound can fail: nonlinearity, and rounding errors that are not
    independent uniform noise (deterministic rounding of 2-bit weights sends most of them to zero)."""
    scale = {r.name: r for r in (ranges or layer_ranges(model, x))}
    step = _steps(scale, b_a, b_w)
    gen = generator or torch.Generator().manual_seed(0)
    registry = NameRegistry()
    with torch.no_grad(), eval_mode(model):
        reference = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).argmax(1)
    total = 0.0
    for _ in range(draws):
        weights: dict[str, torch.Tensor] = {}

        def noise(name: str, role: str, t: torch.Tensor, weights: dict[str, torch.Tensor] = weights) -> torch.Tensor:
            if role == "weights":
                if name not in weights:
                    weights[name] = (torch.rand(t.shape, generator=gen) - 0.5) * step(name, role)
                return weights[name]
            return (torch.rand(t.shape, generator=gen) - 0.5) * step(name, role)

        with eval_mode(model):
            outs = [_capture(model, x[i : i + batch_size], registry, noise, grad=False)[0] for i in range(0, len(x), batch_size)]
        total += float((torch.cat(outs).argmax(1) != reference).double().mean())
    return total / draws
