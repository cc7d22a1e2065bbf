"""Stochastic rounding statistics, special values, straight-through gradients and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from quantscope import ROUNDING_MODES, Binary, parse_format, quantize, quantize_ste

STOCHASTIC_FORMATS = ["fixed<8,4>", "float<4,3>", "float<5,10>", "pow2<6,2>", "binary", "fixed<6,2,overflow=wrap>", "bf16"]


def _neighbours(fmt, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return quantize(x, fmt, "floor"), -quantize(-x, fmt, "floor")


@pytest.mark.parametrize("fmt", STOCHASTIC_FORMATS)
def test_stochastic_is_unbiased_and_uses_only_the_two_neighbours(fmt):
    fmt = parse_format(fmt)
    base = torch.tensor([0.3, -0.3, 1.23, -2.71, 0.01, 3.0, 5.55, -7.9])
    if str(fmt) == "binary":
        base = torch.tensor([0.3, -0.3, 0.9, -0.99, 0.0, 0.5])
    draws = 20000
    x = base.repeat(draws, 1)
    g = torch.Generator().manual_seed(123)
    y = quantize(x, fmt, "stochastic", generator=g).double()
    if str(fmt) == "binary":
        lo, hi = torch.full_like(base, -1.0), torch.full_like(base, 1.0)
    else:
        lo, hi = _neighbours(fmt, base)
    lo, hi = lo.double(), hi.double()
    assert bool(((y == lo) | (y == hi)).all()), "only the two neighbours may appear"
    # the mean of p-weighted neighbours equals x; allow 5 standard errors of a Bernoulli mean
    gap = hi - lo
    clipped = base.double().clamp(lo.min().item(), hi.max().item())
    p = torch.where(gap > 0, (clipped - lo) / gap.clamp_min(1e-300), torch.zeros_like(gap))
    sigma = gap * torch.sqrt(p * (1 - p) / draws)
    target = base.double().clamp(fmt.min_value, fmt.max_value) if str(fmt) != "binary" else base.double()
    err = (y.mean(0) - target).abs()
    assert bool((err <= 5 * sigma + 1e-12).all()), f"{fmt}: mean error {err} vs 5 sigma {5 * sigma}"


def test_stochastic_rounding_is_seedable_and_varies_between_draws():
    x = torch.rand(10000) * 4
    a = quantize(x, "fixed<8,4>", "stochastic", generator=torch.Generator().manual_seed(7))
    b = quantize(x, "fixed<8,4>", "stochastic", generator=torch.Generator().manual_seed(7))
    c = quantize(x, "fixed<8,4>", "stochastic", generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_stochastic_random_bits_are_uniform():
    # the 23-bit uniforms come from int32 random_(): check their distribution on a fine grid
    x = torch.full((400_000,), 0.5)
    y = quantize(x * 2**-20, "fixed<8,0>", "stochastic", generator=torch.Generator().manual_seed(1))
    # P(round up) = 2**-20 / 1 for every element: expect about 0.38 ups
    assert int((y != 0).sum()) < 10
    frac = torch.linspace(0.0, 1.0, 17)[:-1]
    x = frac.repeat(50_000, 1)
    y = quantize(x, "fixed<8,0>", "stochastic", generator=torch.Generator().manual_seed(2))
    rate = y.mean(0)
    assert torch.allclose(rate, frac, atol=5 * math.sqrt(0.25 / 50_000))


@pytest.mark.parametrize("fmt", ["fixed<8,4>", "float<4,3>", "float<4,3,special=none>", "e4m3fn", "pow2<4,1>", "binary", "binary<mean>", "fixed<8,auto>", "pow2<5>"])
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
def test_nan_stays_nan_and_inf_saturates(fmt, rounding):
    x = torch.tensor([float("nan"), float("inf"), float("-inf"), 1.0, -1.0])
    y = quantize(x, fmt, rounding)
    assert math.isnan(y[0])
    static = parse_format(fmt).resolve(x)
    assert y[1] == static.max_value and y[2] == static.min_value


def test_inf_overflow_keeps_infinities_and_wrap_turns_them_to_nan():
    x = torch.tensor([float("inf"), -float("inf"), 70000.0, -65519.0, 65520.0])
    assert quantize(x, "float<5,10,overflow=inf>").tolist() == [math.inf, -math.inf, math.inf, -65504.0, math.inf]
    # IEEE directed rounding: toward zero never overflows a finite value; floor sends -big to -inf
    assert quantize(x, "float<5,10,overflow=inf>", "toward_zero").tolist() == [math.inf, -math.inf, 65504.0, -65504.0, 65504.0]
    assert quantize(x, "float<5,10,overflow=inf>", "floor").tolist() == [math.inf, -math.inf, 65504.0, -math.inf, 65504.0]
    w = quantize(torch.tensor([float("inf"), 9.0, -9.0]), "fixed<4,0,overflow=wrap>")
    assert math.isnan(w[0]) and w[1:].tolist() == [-7.0, 7.0]


def test_binary_maps_zero_to_plus_one_and_scales_by_mean():
    x = torch.tensor([0.0, -0.0, 2.0, -4.0])
    assert quantize(x, "binary").tolist() == [1.0, 1.0, 1.0, -1.0]
    assert quantize(x, "binary<mean>").tolist() == [1.5, 1.5, 1.5, -1.5]
    assert Binary("mean").resolve(x) == Binary(1.5)
    with pytest.raises(ValueError, match="binary"):
        quantize(x, "binary", "floor")


def test_float32_format_returns_float32_input_unchanged():
    x = torch.randn(100)
    assert quantize(x, "float32") is x
    d = torch.tensor([1 + 2**-30, 3.0], dtype=torch.float64)
    assert quantize(d, "float32").tolist() == [1.0, 3.0]


def test_non_float_inputs_are_computed_in_float32():
    x = torch.tensor([1, 2, 200], dtype=torch.int32)
    y = quantize(x, "fixed<8,0>")
    assert y.dtype == torch.float32 and y.tolist() == [1.0, 2.0, 127.0]
    h = quantize(torch.tensor([1.0009765625], dtype=torch.float16), "float<4,3>")
    assert h.dtype == torch.float32 and h.item() == 1.0


def test_input_is_not_modified():
    x = torch.randn(1000)
    keep = x.clone()
    for fmt in ["fixed<8,4>", "float<4,3>", "pow2<6>", "binary<mean>"]:
        for mode in ["nearest", "stochastic"]:
            quantize(x, fmt, mode)
    assert torch.equal(x, keep)


def test_ste_passes_gradient_inside_range_and_blocks_outside():
    x = torch.tensor([-9.0, -7.99, 0.3, 7.9375, 8.0, 100.0], requires_grad=True)
    y = quantize_ste(x, "fixed<8,4>")  # range [-8, 7.9375]
    y.sum().backward()
    assert y.tolist() == quantize(x.detach(), "fixed<8,4>").tolist()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    x = torch.tensor([-2.0, 0.5, 2.0], requires_grad=True)
    quantize_ste(x, "binary").sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0]
    x = torch.tensor([1e30, -3.0], requires_grad=True)
    quantize_ste(x, "float32").sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "text,match",
    [
        ("fixed<0,4>", r"bits must be between 1 and 64, got 0"),
        ("float<0,3>", r"exponent bits must be at least 1, got 0"),
        ("float<9,30>", r"30 mantissa bits exceed float32's 23"),
        ("float<9,7>", r"2\*\*255 is beyond float32's 2\*\*127.*at most 8 exponent bits"),
        ("float<1,2>", r"no normal numbers"),
        ("fixed<8,200>", r"smaller than float32's smallest value"),
        ("flaot<5,10>", r"unknown format name 'flaot'.*did you mean 'float'"),
        ("fixd<8,4>", r"did you mean 'fixed'"),
        ("fp61", r"did you mean 'fp16'"),
        ("fixed<8>", r"expected fixed<B,F>"),
        ("fixed<8,x>", r"frac must be an integer, got 'x'"),
        ("float<4,3,special=fm>", r"special='fm' is not allowed; use one of ieee, fn, none"),
        ("float<4,3,specal=fn>", r"unknown option 'specal' \(did you mean 'special'\?\)"),
        ("float<4,3,special=fn,overflow=inf>", r"overflow='inf' needs special='ieee'"),
        ("pow2<9>", r"bits must be between 2 and 8, got 9"),
        ("binary<-1>", r"scale must be"),
        ("fixed<8,4", r"cannot parse format"),
    ],
)
def test_bad_formats_name_the_value_and_what_is_allowed(text, match):
    with pytest.raises(ValueError, match=match):
        parse_format(text)


def test_unknown_rounding_mode_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown rounding mode 'nearst' \(did you mean 'nearest'\?\); allowed: nearest, stochastic, floor, toward_zero"):
        quantize(torch.zeros(3), "fixed<8,4>", "nearst")  # type: ignore[arg-type]
    assert ROUNDING_MODES == ("nearest", "stochastic", "floor", "toward_zero")


@pytest.mark.parametrize("fmt", ["fixed<8,4>", "fixed<6,2,overflow=wrap>", "float<4,3>", "float<5,10,overflow=inf>", "bf16", "pow2<6>", "binary<mean>"])
@pytest.mark.parametrize("rounding", ["nearest", "floor", "stochastic"])
def test_out_and_in_place_give_the_same_result(fmt, rounding):
    if fmt.startswith("binary") and rounding == "floor":
        pytest.skip("binary has no floor rounding (tested in test_binary_maps_zero_to_plus_one...)")
    x = torch.randn(3000) * 10
    x[:3] = torch.tensor([float("inf"), -float("inf"), float("nan")])
    want = quantize(x, fmt, rounding, generator=torch.Generator().manual_seed(3))
    out = torch.empty_like(x)
    assert quantize(x, fmt, rounding, generator=torch.Generator().manual_seed(3), out=out) is out
    same = torch.equal(out, want) or bool(((out == want) | (out.isnan() & want.isnan())).all())
    assert same
    y = x.clone()
    assert quantize(y, fmt, rounding, generator=torch.Generator().manual_seed(3), out=y) is y
    assert bool(((y == want) | (y.isnan() & want.isnan())).all())
    with pytest.raises(ValueError, match="out must have"):
        quantize(x, fmt, out=torch.empty(3))
