"""Sakr et al.'s analytical bounds on the mismatch between a fixed-point network and its float
original, from one forward/backward pass over an estimation set, with no simulation.

Every compute-layer input (activations A, the network input included) and every weight (W) is
quantized to fixed point with B bits; each layer's range comes from the estimation set as a power
of two s_l (a signed range [-s, s) or, for non-negative data, [0, 2s)), so the step of a B-bit
quantity of layer l is Delta_l(B) = s_l 2^-(B-1) (Sakr's convention, where s = 1). Biases stay
float. With Z the float network's outputs, Y its decision, v_i = Z_Y - Z_i and
g_ih = d(Z_i - Z_Y)/dh:

    E_A = E[ sum_{i != Y} sum_{h in A} (s_h g_ih)^2 / v_i^2 ],  E_W likewise over weights
    Theorem 1:  p_m <= 2^-2(B_A-1) E_A / 24 + 2^-2(B_W-1) E_W / 24
    Theorem 2:  p_m <= E[ sum_{i != Y} exp(-S_i) prod_h sinh(T_i d_ih) / (T_i d_ih) ],
                d_ih = Delta_h |g_ih| / 2,  S_i = 3 v_i^2 / sum_h d_ih^2,  T_i = S_i / v_i
    rule:       B_W - B_A = round(log2(sqrt(E_W / E_A)))

Theorem 2 is the Chernoff bound on the same event: with independent uniform noise, the output
difference's noise sum_h g_ih e_h has moment generating function prod_h sinh(t d_ih)/(t d_ih);
Markov's inequality at t = T_i (minimizing the quadratic bound of its log) gives the expression.
Theorem 2 is evaluated on log-spaced bins of the |s g| values (upper edges: still a bound).
Per-example gradients come from one backward pass per class over a batch (an example's
activations only affect its own outputs) and, for weights, from outer products of each layer's
output gradient and its input (`unfold` for convolutions).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..emulate import COMPUTE_TYPES, _eval_mode
from ..formats import FixedPoint
from ..plan import PrecisionPlan


@dataclass(frozen=True)
class LayerRange:
    """A layer's power-of-two range scale for its data and weights."""

    name: str
    data_scale: float
    data_signed: bool
    weight_scale: float


def _pow2_scale(max_abs: float, signed: bool) -> float:
    """Smallest power-of-two scale whose range ([-s, s) or [0, 2s)) holds max_abs itself."""
    if max_abs <= 0:
        return 1.0
    k = math.floor(math.log2(max_abs)) + 1  # 2^k > max_abs, so the top value never saturates
    return 2.0**k if signed else 2.0 ** (k - 1)


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
    """E_A, E_W and Theorem 2 estimates for requested (B_A, B_W) pairs, with the layer ranges."""

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
            plan = plan.with_layer(r.name, data=fixed_format(b_a, r.data_scale, r.data_signed), weights=fixed_format(b_w, r.weight_scale, True))
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


def _add(total: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    return h if total is None else total + h


def _compute_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, COMPUTE_TYPES)]
    for n, m in layers:
        if getattr(m, "groups", 1) != 1 or isinstance(m, nn.Conv1d):
            raise ValueError(f"bounds support Linear and ungrouped Conv2d layers; {n!r} is not one")
    return layers


def layer_ranges(model: nn.Module, x: torch.Tensor) -> list[LayerRange]:
    """Power-of-two range scales of every compute layer's input (from x) and weights."""
    seen: dict[str, tuple[float, float]] = {}
    hooks = []
    for name, m in _compute_layers(model):
        def hook(mod, args, name=name):
            a = args[0].detach()
            lo, hi = seen.get(name, (0.0, 0.0))
            seen[name] = (min(lo, float(a.min())), max(hi, float(a.max())))
        hooks.append(m.register_forward_pre_hook(hook))
    try:
        with torch.no_grad(), _eval_mode(model):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for name, m in _compute_layers(model):
        lo, hi = seen[name]
        signed = lo < 0
        out.append(LayerRange(name, _pow2_scale(max(abs(lo), abs(hi)), signed), signed, _pow2_scale(float(m.weight.detach().abs().max()), True)))
    return out


def _weight_grads(m: nn.Module, a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Per-example weight gradients (N, O, K) from the layer input a and output gradient delta."""
    n = a.shape[0]
    if isinstance(m, nn.Linear):
        return delta.reshape(n, -1, delta.shape[-1]).transpose(1, 2) @ a.reshape(n, -1, a.shape[-1])
    cols = F.unfold(a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)  # (N, K, L)
    return delta.reshape(n, delta.shape[1], -1) @ cols.transpose(1, 2)


def sakr_bounds(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    precisions: Sequence[tuple[int, int]] = (),
    ranges: list[LayerRange] | None = None,
    batch_size: int = 25,
) -> SakrBounds:
    """E_A, E_W (and Theorem 2 at each (B_A, B_W) in `precisions`) over the estimation set x."""
    layers = _compute_layers(model)
    ranges = ranges or layer_ranges(model, x)
    scale = {r.name: r for r in ranges}
    pairs = list(precisions)
    e_a = e_w = 0.0
    t2 = torch.zeros(len(pairs), dtype=torch.float64)
    errors = 0
    with _eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].detach()
            captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            hooks = []
            for name, m in layers:
                def hook(mod, args, out, name=name):
                    captured[name] = (args[0], out)
                hooks.append(m.register_forward_hook(hook))
            try:
                xb = xb.clone().requires_grad_(True)
                z = model(xb)
            finally:
                for h in hooks:
                    h.remove()
            y_hat = z.argmax(1)
            if labels is not None:
                errors += int((y_hat != labels[start : start + len(xb)]).sum())
            inputs = [captured[n][0] for n, _ in layers]
            outputs = [captured[n][1] for n, _ in layers]
            z_hat = z.gather(1, y_hat[:, None])[:, 0]
            for i in range(z.shape[1]):
                keep = (y_hat != i).double()
                v = (z_hat - z[:, i]).detach().double()
                target = (z[:, i] - z_hat).sum()
                grads = torch.autograd.grad(target, inputs + outputs, retain_graph=True)
                g_in, g_out = grads[: len(layers)], grads[len(layers):]
                sq_a = torch.zeros(len(xb), dtype=torch.float64)
                sq_w = torch.zeros(len(xb), dtype=torch.float64)
                hist_a = hist_w = None
                for (n, m), a, g, d in zip(layers, inputs, g_in, g_out):
                    ga = scale[n].data_scale * g.detach().flatten(1).double()
                    sq_a += ga.square().sum(1)
                    if pairs:
                        hist_a = _add(hist_a, _log_histogram(ga))
                    sw = scale[n].weight_scale
                    if isinstance(m, nn.Linear) and a.dim() == 2:
                        # rank one per example: w-gradient = outer(delta, a)
                        dd, aa = sw * d.detach().double(), a.detach().double()
                        sq_w += dd.square().sum(1) * aa.square().sum(1)
                        if pairs:
                            hist_w = _add(hist_w, _product_histogram(_log_histogram(dd), _log_histogram(aa)))
                    else:
                        gw = sw * _weight_grads(m, a.detach(), d.detach()).double().flatten(1)
                        sq_w += gw.square().sum(1)
                        if pairs:
                            hist_w = _add(hist_w, _log_histogram(gw))
                inv_v2 = keep / v.clamp_min(1e-30) ** 2
                e_a += float((sq_a * inv_v2).sum())
                e_w += float((sq_w * inv_v2).sum())
                if pairs:
                    for j, (b_a, b_w) in enumerate(pairs):
                        da, dw = 2.0 ** -(b_a - 1) / 2, 2.0 ** -(b_w - 1) / 2
                        d2 = da * da * sq_a + dw * dw * sq_w  # sum_h d_ih^2 (exact)
                        s = 3 * v * v / d2.clamp_min(1e-300)
                        t = s / v.clamp_min(1e-30)
                        log_prod = (hist_a * log_sinhc(t[:, None] * da * _UPPER[None])).sum(1)
                        log_prod += (hist_w * log_sinhc(t[:, None] * dw * _UPPER[None])).sum(1)
                        t2[j] += float((keep * torch.exp(torch.clamp(-s + log_prod, max=50.0))).sum())
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
) -> tuple[SakrBounds, list[tuple[int, int]], int]:
    """Sakr's figures in one call: the rule's offset from E_A, E_W on the first `rule_examples`,
    then both theorems at (B, B) and (B, B + offset) for every B in `bits` (offsets that leave
    2..24 bits are skipped). Returns the bounds, the (B_A, B_W) pairs (equal pairs first) and the
    offset."""
    base = sakr_bounds(model, x[:rule_examples], None if labels is None else labels[:rule_examples])
    offset = base.rule_offset()
    pairs = [(b, b) for b in bits] + [(b, b + offset) for b in bits if offset and 2 <= b + offset <= 24]
    bounds = sakr_bounds(model, x, labels, precisions=pairs, ranges=layer_ranges(model, x), batch_size=batch_size)
    return bounds, pairs, offset


def linearized_mismatch(
    model: nn.Module,
    x: torch.Tensor,
    b_a: int,
    b_w: int,
    ranges: list[LayerRange] | None = None,
    trials: int = 20,
    generator: torch.Generator | None = None,
    batch_size: int = 100,
) -> float:
    """Monte Carlo mismatch probability of the model both theorems bound: the float outputs plus
    their first-order response sum_h g_ih n_h to independent uniform noise n_h in
    [-Delta_h/2, Delta_h/2] on every activation and weight (Delta from `ranges` at B_A, B_W).

    Theorems 1 and 2 must upper-bound this at every precision (up to Monte Carlo error); where the
    real fixed-point network mismatches more than the bounds, the difference comes from its
    response to noise not being linear."""
    layers = _compute_layers(model)
    scale = {r.name: r for r in (ranges or layer_ranges(model, x))}
    gen = generator or torch.Generator().manual_seed(0)
    flips = 0
    with _eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].detach().clone().requires_grad_(True)
            captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            hooks = [m.register_forward_hook(lambda mod, args, out, name=name: captured.__setitem__(name, (args[0], out)))
                     for name, m in layers]
            try:
                z = model(xb)
            finally:
                for h in hooks:
                    h.remove()
            y_hat = z.argmax(1)
            z_hat = z.gather(1, y_hat[:, None])[:, 0]
            inputs = [captured[n][0] for n, _ in layers]
            outputs = [captured[n][1] for n, _ in layers]
            margins, grads = [], []
            for i in range(z.shape[1]):
                margins.append(torch.where(y_hat == i, torch.inf, (z_hat - z[:, i]).detach()).double())
                g = torch.autograd.grad((z[:, i] - z_hat).sum(), inputs + outputs, retain_graph=True)
                grads.append([t.detach().double() for t in g])
            for _ in range(trials):
                noise_a, noise_w = [], []
                for n, m in layers:
                    da = scale[n].data_scale * 2.0 ** -(b_a - 1)
                    dw = scale[n].weight_scale * 2.0 ** -(b_w - 1)
                    a = captured[n][0]
                    noise_a.append((torch.rand(a.shape, generator=gen, dtype=torch.float64) - 0.5) * da)
                    noise_w.append((torch.rand(m.weight.shape, generator=gen, dtype=torch.float64) - 0.5) * dw)
                flipped = torch.zeros(len(xb), dtype=torch.bool)
                for margin, g in zip(margins, grads):
                    change = torch.zeros(len(xb), dtype=torch.float64)
                    for k, ((n, m), a) in enumerate(zip(layers, inputs)):
                        change += (g[k] * noise_a[k]).flatten(1).sum(1)
                        a64 = a.detach().double()
                        if isinstance(m, nn.Linear):
                            response = F.linear(a64, noise_w[k])
                        else:
                            response = F.conv2d(a64, noise_w[k], None, m.stride, m.padding, m.dilation)
                        change += (g[len(layers) + k] * response).flatten(1).sum(1)
                    flipped |= change > margin
                flips += int(flipped.sum())
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
    """Mean mismatch of the real (nonlinear) network when every weight and every compute-layer
    input gets independent uniform noise in [-Delta/2, Delta/2] instead of being rounded: the
    theorems' noise model without their linearization. Weights get one draw per network instance,
    activations fresh noise per example; averaged over `draws` instances.

    Comparing it with `linearized_mismatch` (same noise, first order) and with the rounded network
    separates the two ways a bound can fail: nonlinearity, and rounding errors that are not
    independent uniform noise (deterministic rounding of 2-bit weights sends most of them to zero)."""
    layers = dict(_compute_layers(model))
    scale = {r.name: r for r in (ranges or layer_ranges(model, x))}
    gen = generator or torch.Generator().manual_seed(0)
    with torch.no_grad(), _eval_mode(model):
        reference = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).argmax(1)
    total = 0.0
    for _ in range(draws):
        noisy = copy.deepcopy(model)
        hooks = []
        for name, m in noisy.named_modules():
            if name not in layers:
                continue
            d_a = scale[name].data_scale * 2.0 ** -(b_a - 1)
            d_w = scale[name].weight_scale * 2.0 ** -(b_w - 1)
            with torch.no_grad():
                m.weight += (torch.rand(m.weight.shape, generator=gen) - 0.5) * d_w
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, d_a=d_a: (args[0] + (torch.rand(args[0].shape, generator=gen) - 0.5) * d_a,)))
        with torch.no_grad(), _eval_mode(noisy):
            out = torch.cat([noisy(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).argmax(1)
        total += float((out != reference).double().mean())
    return total / draws
