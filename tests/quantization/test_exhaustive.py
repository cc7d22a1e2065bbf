"""quantize() equals a lookup in values() for every small format, on every kind of tricky input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from reference import reference_quantize

from quantscope import FixedPoint, MiniFloat, PowerOfTwo, quantize

MODES = ["nearest", "floor", "toward_zero"]


def _fixed_formats():
    for bits, signed, overflow in itertools.product(range(1, 9), (True, False), ("saturate", "wrap")):
        for frac in sorted({-2, 0, 1, bits - 1, bits, bits + 2}):
            yield FixedPoint(bits, frac, signed=signed, overflow=overflow)


def _float_formats():
    for exp, man, special, sub in itertools.product(range(1, 5), range(0, 4), ("ieee", "fn", "none"), (True, False)):
        for overflow in ("saturate", "inf") if special == "ieee" else ("saturate",):
            try:
                yield MiniFloat(exp, man, subnormals=sub, special=special, overflow=overflow)
            except ValueError:
                continue  # e.g. float<1,M> with special=ieee has no normal numbers


def _pow2_formats():
    for bits, max_exp in itertools.product(range(2, 7), (-5, 0, 3)):
        yield PowerOfTwo(bits, max_exp)


def probe_inputs(values: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Values, midpoints and their float32 neighbours, boundaries, overflow, subnormals, random."""
    v = values.astype(np.float64)
    top, tiny = float(np.abs(v).max()), float(np.abs(v[v != 0]).min())
    mids = (v[:-1] + v[1:]) / 2
    f32 = np.float32
    pts = [v, mids]
    pts += [np.nextafter(mids.astype(f32), f32(np.inf)), np.nextafter(mids.astype(f32), f32(-np.inf))]
    last_gap = float(v[-1] - v[-2]) if len(v) > 1 else top
    edges = [top, top + last_gap / 2, top + last_gap, 1.5 * top, 2 * top, 4 * top, 1e30, np.inf,
             tiny / 2, tiny / 4, tiny * 0.75, 1e-45, 1e-38, 0.0]
    edges = np.array(edges, dtype=np.float64)
    pts += [edges, -edges, np.nextafter(edges.astype(f32), f32(np.inf)), np.nextafter(edges.astype(f32), f32(0))]
    pts += [rng.standard_normal(400) * top, np.exp(rng.uniform(np.log(tiny / 8), np.log(top * 8), 400)) * rng.choice([-1, 1], 400)]
    x = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in pts]).astype(np.float32)
    x = np.concatenate([x, np.array([-0.0, np.nan], dtype=np.float32)])
    return torch.from_numpy(x)


def assert_matches_reference(fmt, rounding: str, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = probe_inputs(fmt.values().numpy(), rng)
    got = quantize(x, fmt, rounding).double().numpy()
    want = reference_quantize(x.double().numpy(), fmt, rounding)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    bad = (nan_got != nan_want) | (~nan_want & (got != want))
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        raise AssertionError(
            f"{fmt} {rounding}: {bad.sum()} mismatches, e.g. x={x.numpy()[i]} got={got[i]} want={want[i]}"
        )


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", list(_fixed_formats()), ids=str)
def test_fixed_point_matches_enumeration(fmt, rounding):
    assert_matches_reference(fmt, rounding)


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", list(_float_formats()), ids=str)
def test_minifloat_matches_enumeration(fmt, rounding):
    assert_matches_reference(fmt, rounding)


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("fmt", list(_pow2_formats()), ids=str)
def test_pow2_matches_enumeration(fmt, rounding):
    assert_matches_reference(fmt, rounding)


def test_float_formats_cover_every_setting():
    fmts = list(_float_formats())
    assert {f.special for f in fmts} == {"ieee", "fn", "none"}
    assert {f.subnormals for f in fmts} == {True, False}
    assert len(fmts) > 80


@pytest.mark.parametrize("fmt", ["fixed<12,5>", "float<5,10>", "float<3,2,special=none>", "pow2<5,2>"])
def test_float64_inputs_round_the_same_and_stay_float64(fmt):
    x = torch.randn(5000) * 8
    assert quantize(x.double(), fmt).dtype == torch.float64
    assert torch.equal(quantize(x.double(), fmt), quantize(x, fmt).double())


def test_adaptive_fixed_point_fits_the_largest_magnitude():
    x = torch.tensor([0.3, -5.2, 1.0])
    r = FixedPoint(8, "auto").resolve(x)
    assert r == FixedPoint(8, 4)  # 5.2 * 2**4 = 83.2 <= 127 < 5.2 * 2**5
    assert torch.equal(quantize(x, "fixed<8,auto>"), quantize(x, r))
    assert FixedPoint(8, "auto").resolve(torch.tensor([127.0])).frac == 0
    assert FixedPoint(8, "auto").resolve(torch.tensor([127.5])).frac == -1
    assert FixedPoint(8, "auto").resolve(torch.tensor([float("nan"), 0.5])).frac == 7


def test_adaptive_pow2_window_tops_at_nearest_power():
    assert PowerOfTwo(6).resolve(torch.tensor([1.4, -0.1])).max_exp == 0
    assert PowerOfTwo(6).resolve(torch.tensor([1.5])).max_exp == 1  # tie goes up
    assert PowerOfTwo(6).resolve(torch.tensor([-3.0])).max_exp == 2
    assert PowerOfTwo(6).resolve(torch.tensor([2.0**-140])).max_exp == PowerOfTwo.min_max_exp(6)
