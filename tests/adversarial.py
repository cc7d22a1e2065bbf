"""Values and cases that every pair of kernel paths (native C, Triton, PyTorch) is compared on."""

from __future__ import annotations

import torch

FORMATS = ["fixed<8,4>", "fixed<4,-2>", "ufixed<6,3>", "fixed<16,140>", "fixed<32,16>", "fixed<20,6>", "fixed<9,3,overflow=wrap>",
           "ufixed<7,2,overflow=wrap>", "float<4,3>", "float<5,10>", "float<5,2>", "e4m3fn", "bf16", "float<3,2,special=none>",
           "float<4,2,subnormals=off>", "float<5,10,overflow=inf>", "float<8,0,subnormals=off>", "float<4,3,120>", "pow2<6,4>",
           "pow2<8,0>", "pow2<3,127>", "float32"]
MODES = ["nearest", "floor", "toward_zero", "stochastic"]


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[a.dtype]
    return a.dtype == b.dtype and torch.equal(a.view(ints), b.view(ints))


def adversarial(dtype: torch.dtype, n: int = 50_000) -> torch.Tensor:
    """Random bit patterns (every exponent, subnormals, inf, NaN) mixed with ordinary values,
    halfway points of small grids and exact powers of two."""
    g = torch.Generator().manual_seed(7)
    ints = {torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    info = torch.iinfo(ints)
    bits = torch.randint(info.min, info.max, (n,), generator=g, dtype=ints).view(dtype)
    ordinary = torch.randn(n, generator=g, dtype=dtype) * torch.exp2(torch.randint(-20, 20, (n,), generator=g)).to(dtype)
    halves = (torch.randint(-4000, 4000, (n,), generator=g) + 0.5).to(dtype) / 64
    powers = torch.exp2(torch.arange(-160, 140, dtype=dtype))
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-45, -1e-45, 448.0, 464.0, 65504.0, 65520.0], dtype=dtype)
    return torch.cat([bits, ordinary, halves, powers, -powers, special])


ACCUMULATORS = ["fixed<12,4>", "fixed<9,3,overflow=wrap>", "ufixed<10,4>", "fixed<8,-2>", "fixed<32,16>", "float<4,3>", "float<5,10>",
                "float<3,2,special=none>", "float<4,2,subnormals=off>", "float<5,10,overflow=inf>", "bf16", "pow2<6,4>", "float32"]
SHAPES = [(1, 7, 13, 5), (2, 33, 9, 21), (3, 2, 20, 40), (4, 50, 9, 1), (1, 1, 1, 1)]
