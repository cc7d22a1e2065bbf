"""Round tensors onto number formats, bit-exactly and fast, with a straight-through autograd variant.

Kernels are memory-bound, so each allocates only its output and works in place; per-element
temporaries live in cached scratch buffers (see `release_scratch`). Arithmetic is exact: scaling by
powers of two and rounding to integers never round twice, so results equal the nearest
representable value (ties to even) as defined by `Format.values()`.

Special values: NaN stays NaN in every format, including those without NaN codes (a NaN is a bug
to surface, not a number to hide). +-inf saturate to +-max, except in floats with
`overflow="inf"`, where they stay infinite, and in wrapping fixed point, where they become NaN
(infinity has no two's complement residue).
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Union

import torch

from . import native
from .errors import did_you_mean
from .formats import Binary, FixedPoint, Float32, Format, MiniFloat, PowerOfTwo, ScaledFormat, as_format

__all__ = ["quantize", "quantize_ste", "to_dtype", "ROUNDING_MODES", "Rounding", "release_scratch", "scratch", "Grid", "grid_of",
           "round_onto_grid", "shares_storage", "check_rounding", "RandomSource", "Axis", "Blocks", "quantize_blocks"]

Rounding = Literal["nearest", "stochastic", "floor", "toward_zero"]
ROUNDING_MODES: tuple[str, ...] = ("nearest", "stochastic", "floor", "toward_zero")
#: where stochastic rounding's uniforms come from: a generator (None: the global one), or a
#: tensor of uniforms in [0, 1) shaped like the values (consumed: it is overwritten)
RandomSource = Union[torch.Generator, torch.Tensor, None]


# --------------------------------------------------------------------------------------- scratch
_local = threading.local()


def scratch(like: torch.Tensor, dtype: torch.dtype, slot: int) -> torch.Tensor:
    """This thread's reusable uninitialized buffer number `slot`, shaped like `like`: fresh pages
    cost ~5 in-place passes. Slots 0-3 are the kernels' temporaries, live during one call."""
    cache: dict[tuple[torch.device, torch.dtype, int], torch.Tensor] = _local.__dict__.setdefault("buffers", {})
    key = (like.device, dtype, slot)
    buf = cache.get(key)
    n = like.numel()
    if buf is None or buf.numel() < n:
        buf = torch.empty(n, dtype=dtype, device=like.device)
        cache[key] = buf
    return buf[:n].view(like.shape)


def release_scratch() -> None:
    """Free this thread's cached scratch buffers (they grow to the largest tensor quantized)."""
    _local.__dict__.pop("buffers", None)


# ------------------------------------------------------------------------------ rounding helpers
def check_rounding(rounding: str) -> None:
    """Raise a ValueError naming the allowed modes unless `rounding` is one of them."""
    if rounding not in ROUNDING_MODES:
        raise ValueError(
            f"unknown rounding mode {rounding!r}{did_you_mean(rounding, ROUNDING_MODES)}; "
            f"allowed: {', '.join(ROUNDING_MODES)}"
        )


_BITS = {
    # float dtype -> (same-width int dtype, stored mantissa bits, exponent bias, exponent mask)
    torch.float32: (torch.int32, 23, 127, 0x7F800000),
    torch.float64: (torch.int64, 52, 1023, 0x7FF0000000000000),
}


_RANDOM_CHUNK = 1 << 20


def _random_bits_(bits: torch.Tensor, generator: torch.Generator | None) -> None:
    """Fill an int tensor with uniform non-negative integers, in parallel on CPU.

    PyTorch's CPU generator (MT19937) is serial, so large tensors are cut into fixed chunks of
    2**20 elements, each filled by its own generator seeded from one draw of `generator`. The
    result depends only on the generator's state, never on the number of threads.
    """
    flat = bits.view(-1)
    if flat.device.type != "cpu" or flat.numel() <= _RANDOM_CHUNK:
        flat.random_(generator=generator)
        return
    base = int(torch.randint(0, 2**62, (1,), generator=generator))
    chunks = flat.split(_RANDOM_CHUNK)

    def fill(i: int) -> Callable[[], None]:
        return lambda: chunks[i].random_(generator=torch.Generator().manual_seed(base + i))

    native.run_parallel([fill(i) for i in range(len(chunks))])


def _uniform_(like: torch.Tensor, random: RandomSource, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform numbers in [0, 1) shaped like `like`, in `dtype` (default like's): multiples of
    2**-23 (float32) or 2**-52 (float64) drawn into scratch, or the given tensor of uniforms."""
    dtype = like.dtype if dtype is None else dtype
    if isinstance(random, torch.Tensor):
        return random.to(dtype)
    int_dtype, mant, bias, _ = _BITS[dtype]
    bits = scratch(like, int_dtype, slot=2)
    _random_bits_(bits, random)  # uniform over [0, 2**31) or [0, 2**63)
    bits.bitwise_and_((1 << mant) - 1).bitwise_or_(bias << mant)  # a float in [1, 2)
    return bits.view(dtype).sub_(1.0)


def _stochastic_(t: torch.Tensor, generator: RandomSource) -> None:
    """Round t in place to floor(t) or floor(t) + 1, the latter with probability t - floor(t).

    The comparison behind ceil(d - u) is exact, so the rounding is unbiased to within 2**-23 of a
    step, and exactly unbiased when |t| >= 1 (there t - floor(t) is an exact multiple of 2**-23).
    """
    u = _uniform_(t, generator)
    low = torch.floor(t, out=scratch(t, t.dtype, slot=1))
    t.sub_(low)  # the fraction d in [0, 1)
    torch.sub(t, u, out=u).ceil_()  # 1 where u < d, else 0
    torch.add(low, u, out=t)
    torch.copysign(t, low, out=t)  # floor keeps t's sign: a zero result gets it too (-1 + 1 = +0 otherwise)


def _round_(t: torch.Tensor, rounding: str, generator: RandomSource) -> None:
    """Round a tensor of scaled values to integers in place."""
    if rounding == "nearest":
        t.round_()  # ties to even
    elif rounding == "floor":
        t.floor_()
    elif rounding == "toward_zero":
        t.trunc_()
    else:
        _stochastic_(t, generator)


# ------------------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class Grid:
    """The values a static format has in a tensor of some dtype, and how rounding reaches them.

    kind "fixed": integers times 2**-frac clamped to [lo, hi]; "wrap": the same codes on `bits`
    bits reduced modulo 2**bits (k_min..k_max); "float": a binary float grid with `man` mantissa
    bits and normals from 2**emin, clamped to [lo, hi], with IEEE overflow to infinity when
    `inf_overflow`. The PyTorch kernels below and the native ones (`native`) both take a Grid.
    """

    kind: Literal["fixed", "wrap", "float"]
    lo: float
    hi: float
    frac: int = 0
    man: int = 0
    emin: int = 0
    subnormals: bool = True
    inf_overflow: bool = False
    bits: int = 0
    k_min: int = 0
    k_max: int = 0

    def work_dtype(self, dtype: torch.dtype, rounding: str) -> torch.dtype:
        """float32 when rounding a `dtype` tensor on this grid is exact in float32, else float64.

        Scaling by the step must be exact in float32 (normal powers of two) and, for floor and
        stochastic rounding, must not underflow (a tiny negative must not become -0)."""
        if dtype != torch.float32 or self.kind == "wrap":
            return torch.float64
        directed_ok = rounding in ("nearest", "toward_zero")
        if self.kind == "fixed":
            fast32 = -126 <= self.frac <= 126 and (self.frac >= 0 or directed_ok)
        else:
            below_quantum = self.emin - self.man if self.subnormals else self.emin
            fast32 = self.emin - self.man >= -126 and self.emin <= 127 and (below_quantum <= 0 or directed_ok)
        return torch.float32 if fast32 else torch.float64

    @property
    def _lean(self) -> bool:
        """A float grid the native kernels round with their shortest code: symmetric, saturating,
        with subnormals and at least one mantissa bit."""
        return self.man >= 1 and self.subnormals and self.lo == -self.hi and not self.inf_overflow

    def as_tuple(self) -> tuple[int, int, int, int, float, float, int, int, float, float]:
        """The grid as the native kernels take it (see _native.c, `parse_grid`)."""
        code = {"fixed": 1, "wrap": 2}.get(self.kind, 3 if self.inf_overflow else (0 if self._lean else 4))
        return (code, self.man, self.emin, int(self.subnormals), self.lo, self.hi, self.frac, self.bits,
                float(self.k_min), float(self.k_max))


def _dtype_significand(dtype: torch.dtype) -> int:
    return _BITS[dtype][1] + 1


def _truncate(k: int, dtype: torch.dtype) -> int:
    """k rounded toward zero to the significand width of `dtype` (24 or 53 bits)."""
    drop = max(abs(k).bit_length() - _BITS[dtype][1] - 1, 0)
    return k >> drop << drop if k >= 0 else -(-k >> drop << drop)


def _subset_grid(fmt: FixedPoint, dtype: torch.dtype) -> Grid:
    """A fixed-point grid wider than the dtype's significand: the grid values the dtype can hold,
    i.e. the grid itself near zero and the dtype's own values from 2**(p - F) up (p the dtype's
    significand bits): a float grid with p - 1 mantissa bits, normals from 2**(p - 1 - F),
    saturating at the largest value not above max."""
    man = _BITS[dtype][1]
    f = int(fmt.frac)
    lo = fmt.min_value if fmt.signed else -0.0
    return Grid("float", lo, math.ldexp(_truncate(fmt.k_max, dtype), -f), man=man, emin=man - f)


def _fixed_grid(fmt: FixedPoint, dtype: torch.dtype) -> Grid:
    f = int(fmt.frac)
    if fmt.overflow == "wrap":
        if fmt.significand_bits > _dtype_significand(dtype):
            raise ValueError(f"{fmt}: wrapping codes of {fmt.bits} bits cannot be held in a {dtype} tensor "
                             f"({_dtype_significand(dtype)} significant bits); quantize a float64 tensor or use at most "
                             f"{_dtype_significand(dtype)} bits")
        return Grid("wrap", fmt.min_value, fmt.max_value, frac=f, bits=fmt.bits, k_min=fmt.k_min, k_max=fmt.k_max)
    if fmt.significand_bits > _dtype_significand(dtype):
        return _subset_grid(fmt, dtype)
    lo = fmt.min_value if fmt.signed else -0.0  # -0.0: negative inputs of unsigned formats give -0
    return Grid("fixed", lo, fmt.max_value, frac=f)


def _minifloat_grid(fmt: MiniFloat, dtype: torch.dtype) -> Grid:
    return Grid("float", -fmt.max_value, fmt.max_value, man=fmt.man, emin=fmt.emin, subnormals=fmt.subnormals,
                inf_overflow=fmt.overflow == "inf")


def _pow2_grid(fmt: PowerOfTwo, dtype: torch.dtype) -> Grid:
    return Grid("float", -fmt.max_value, fmt.max_value, man=0, emin=fmt.emin)


def _float32_grid(fmt: Float32, dtype: torch.dtype) -> Grid:
    return Grid("float", -fmt.max_value, fmt.max_value, man=23, emin=-126, inf_overflow=True)


#: the grid of each format family that has one (binary formats are a sign and a scale instead)
_GRIDS: dict[type, Callable[[Any, torch.dtype], Grid | None]] = {
    FixedPoint: _fixed_grid, MiniFloat: _minifloat_grid, PowerOfTwo: _pow2_grid, Float32: _float32_grid,
}


def grid_of(fmt: Format, dtype: torch.dtype) -> Grid | None:
    """The grid rounding onto static `fmt` uses in a `dtype` tensor (float32 or float64); None
    for binary formats (a sign and a scale, not a grid)."""
    build = _GRIDS.get(type(fmt))
    return None if build is None else build(fmt, dtype)


# ------------------------------------------------------------------------ PyTorch kernels
def _clamp(x: torch.Tensor, lo: float, hi: float, dtype: torch.dtype, out: torch.Tensor | None) -> torch.Tensor:
    """clamp(x) in `dtype`, written into `out` when it has that dtype (out may be x itself)."""
    src = x.to(dtype)
    if out is not None and out.dtype == dtype:
        return torch.clamp(src, lo, hi, out=out)
    return torch.clamp(src, lo, hi)


def _negatives(x: torch.Tensor, rounding: str, dtype: torch.dtype) -> torch.Tensor | None:
    """Where the (clamped, reduced) value is below zero, for floor in float64, taken before it is
    scaled."""
    return x < 0 if rounding == "floor" and dtype == torch.float64 else None


def _floor_sign_fix_(scaled: torch.Tensor, negative: torch.Tensor | None) -> None:
    """Floor of a negative value is at most -1: a tiny negative whose scaling underflowed to -0
    must still floor to -1 (an input of -0.0 stays -0.0)."""
    if negative is not None:
        scaled.masked_fill_(negative & (scaled == 0), -1.0)


def _round_fixed(x: torch.Tensor, grid: Grid, rounding: str, gen: RandomSource, out: torch.Tensor | None) -> torch.Tensor:
    """Clamp, scale by 2**frac, round to an integer, scale back."""
    f = grid.frac
    dtype = grid.work_dtype(x.dtype, rounding)
    out = _clamp(x, grid.lo, grid.hi, dtype, out)
    negative = _negatives(out, rounding, dtype)
    if f:
        out.mul_(math.ldexp(1.0, f))
    _round_(out, rounding, gen)
    _floor_sign_fix_(out, negative)
    if f:
        out.mul_(math.ldexp(1.0, -f))
    return out


def _fmod_pow2(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """x - P trunc(x / P) for P = 2**exponent, exactly: the residue with x's sign, |r| < P.

    Every step is exact (a power-of-two scaling, an integer part, a difference of two multiples
    of ulp(x) that fits in 53 bits), unlike torch.fmod, whose vectorized kernel loses huge
    quotients."""
    period = math.ldexp(1.0, exponent)
    r = x - torch.trunc(x / period) * period
    # x / P overflows only where |x| > 2**1023 P, and then x is a multiple of P: residue 0
    return torch.where(torch.isfinite(x) & ~torch.isfinite(r), torch.zeros_like(r), r)


def _round_wrap(x: torch.Tensor, grid: Grid, rounding: str, gen: RandomSource, out: torch.Tensor | None) -> torch.Tensor:
    """Modular two's complement: the integer code reduced modulo 2**B, exactly in float64.

    x is first reduced modulo 2**(B - F) (fmod is exact), which leaves the code's residue
    unchanged and keeps huge finite inputs finite after scaling. Zero results keep x's sign."""
    f = grid.frac
    x64 = x.to(torch.float64)
    out = _fmod_pow2(x64, grid.bits - f)
    negative = _negatives(out, rounding, torch.float64)
    out.mul_(math.ldexp(1.0, f))  # |.| < 2**B: no overflow
    _round_(out, rounding, gen)
    _floor_sign_fix_(out, negative)
    modulus = math.ldexp(1.0, grid.bits)
    out = _fmod_pow2(out, grid.bits)  # in (-2**B, 2**B), sign of the input
    out.sub_(modulus * (out >= float(grid.k_max) + 1.0))  # k_max + 1 and k_min are powers of two: exact
    out.add_(modulus * (out < float(grid.k_min)))
    out.mul_(math.ldexp(1.0, -f))
    return torch.where(out == 0, torch.copysign(torch.zeros_like(out), x64), out)


def _round_float(x: torch.Tensor, grid: Grid, rounding: str, gen: RandomSource, out: torch.Tensor | None) -> torch.Tensor:
    """Round onto a binary float grid: `man` mantissa bits, normals from 2**emin up to hi (and
    down to lo).

    Each element's quantum is 2**(e - man), with e = max(exponent of x, emin); below 2**emin the
    quantum is 2**(emin - man) with subnormals, 2**emin without. x / quantum is exact, so one
    integer rounding gives the correctly rounded result. Saturation clamps x to the range first.
    """
    dtype = grid.work_dtype(x.dtype, rounding)
    directed_inf = None
    if grid.inf_overflow and rounding != "nearest":  # masks from x before out (maybe x) changes
        negative_overflow = x < -grid.hi if rounding == "floor" else None
        directed_inf = (torch.isinf(x), negative_overflow, x.to(dtype, copy=True))
    out = _clamp(x, -math.inf if grid.inf_overflow else grid.lo, math.inf if grid.inf_overflow else grid.hi, dtype, out)
    negative = _negatives(out, rounding, dtype)
    qf = _quantum(out, grid.man, grid.emin, grid.subnormals)
    out.div_(qf)
    _round_(out, rounding, gen)
    _floor_sign_fix_(out, negative)
    out.mul_(qf)
    if grid.inf_overflow:
        _overflow_to_inf_(out, grid.hi, directed_inf)
    elif grid.lo != -grid.hi:
        out.clamp_(grid.lo, grid.hi)  # rounding up at the top of an asymmetric range stays inside it
    return out


def _quantum(out: torch.Tensor, man: int, emin: int, subnormals: bool) -> torch.Tensor:
    """Each element's quantum 2**(e - man), e = clamp(exponent, emin, largest finite), built as a
    bit pattern in scratch (2**emin below the normals without subnormals)."""
    int_dtype, mant_bits, bias, exp_mask = _BITS[out.dtype]
    q = scratch(out, int_dtype, slot=0)
    torch.bitwise_and(out.view(int_dtype), exp_mask, out=q)  # exponent field of |x|, in place
    below = None if subnormals or man == 0 else q < ((emin + bias) << mant_bits)
    q.clamp_(min=(emin + bias) << mant_bits, max=(2 * bias) << mant_bits)  # inf and NaN get a finite quantum too
    q.sub_(man << mant_bits)
    if below is not None:
        q.masked_fill_(below, (emin + bias) << mant_bits)
    return q.view(out.dtype)


def _overflow_to_inf_(out: torch.Tensor, max_value: float, directed: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor] | None) -> None:
    """IEEE 754 overflow: nearest rounds past max to inf; directed modes as the standard says.

    `directed` is None for nearest, else (x is inf, x < -max for floor or None, x) taken
    before rounding.
    """
    if directed is None:
        # Any rounded value above max is >= 2**(emax+1); scaling that up to the dtype's overflow
        # threshold gives inf, while values <= max scale exactly and come back unchanged.
        bias = _BITS[out.dtype][2]  # overflow threshold 2**(bias+1); largest power 2**bias
        shift = bias + 1 - math.frexp(max_value)[1]
        steps = [bias] * (shift // bias) + [shift % bias]
        for k in steps:
            out.mul_(math.ldexp(1.0, k))
        for k in steps:
            out.div_(math.ldexp(1.0, k))
        return
    keep_inf, negative_overflow, x = directed
    out.clamp_(-max_value, max_value)
    if negative_overflow is not None:  # floor rounds toward -inf: negative overflow is -inf
        out.masked_fill_(negative_overflow, -math.inf)
    out.copy_(torch.where(keep_inf, x, out))


_GRID_KERNELS: dict[str, Callable[[torch.Tensor, Grid, str, RandomSource, torch.Tensor | None], torch.Tensor]] = {
    "fixed": _round_fixed, "wrap": _round_wrap, "float": _round_float,
}


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True where a and b are views of one storage (writing one may change the other)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _native_eligible(x: torch.Tensor, out: torch.Tensor | None) -> bool:
    return x.device.type == "cpu" and (out is None or out.is_contiguous()) and native.enabled()


def _round_on_gpu(x: torch.Tensor, grid: Grid, rounding: str, random: RandomSource, out: torch.Tensor | None,
                  kernels: ModuleType) -> torch.Tensor:
    """round_onto_grid with the Triton kernel, on contiguous tensors."""
    native.record("quantize", "triton")
    work = grid.work_dtype(x.dtype, rounding)
    uniform = _uniform_(x, random, work).contiguous() if rounding == "stochastic" else None
    source = x.contiguous()
    target = out if out is not None and out.is_contiguous() else torch.empty_like(source)
    kernels.quantize(source, target, grid.as_tuple(), rounding, work, uniform)
    if out is not None and target is not out:
        return out.copy_(target)
    return target


def round_onto_grid(x: torch.Tensor, grid: Grid, rounding: str, random: RandomSource = None,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """Round float32/float64 `x` onto `grid`; the result in x's dtype (in `out` when given, which
    may be x). The native kernel runs where it can (CPU tensors, a contiguous `out`; a strided x
    is read row by row where its last dimension is contiguous, else copied contiguous first and
    rounded in place), the Triton kernel on CUDA tensors where Triton is installed, else the
    PyTorch one."""
    if x.device.type == "cuda" and (kernels := native.gpu_kernels()) is not None:
        return _round_on_gpu(x, grid, rounding, random, out, kernels)
    if _native_eligible(x, out):
        native.record("quantize", "native")
        work = grid.work_dtype(x.dtype, rounding)
        uniform = _uniform_(x, random, work) if rounding == "stochastic" else None
        offsets = None
        if not x.is_contiguous():
            offsets = native.row_offsets(x)
            if offsets is None or (out is not None and shares_storage(x, out)):  # one copy, then in place
                out = (torch.empty(x.shape, dtype=x.dtype) if out is None else out).copy_(x)
                x, offsets = out, None
        target = torch.empty(x.shape, dtype=x.dtype) if out is None else out
        native.quantize(x, target, grid.as_tuple(), rounding, work, uniform, offsets)
        return target
    native.record("quantize", "torch")
    result = _GRID_KERNELS[grid.kind](x, grid, rounding, random, out)
    if out is None:
        return result.to(x.dtype)
    if result is not out:
        out.copy_(result)
    return out


# ----------------------------------------------------------------------------------- binary
def _quantize_binary(x: torch.Tensor, fmt: Binary, rounding: str, gen: RandomSource, out: torch.Tensor | None) -> torch.Tensor:
    if rounding in ("floor", "toward_zero"):
        raise ValueError(f"{fmt}: rounding {rounding!r} is undefined for binary; use 'nearest' or 'stochastic'")
    s = fmt.magnitude
    dtype = x.dtype if x.dtype in _BITS else torch.float32
    if rounding == "nearest" or s == 0.0:
        x = x.to(dtype)
        nan = torch.isnan(x)
        out = torch.sign(x, out=out) if out is not None and out.dtype == dtype else torch.sign(x)
        out.add_(0.5).sign_()  # -1, +-0 (zero; NaN gives 0 too) or +1 -> -1 or +1
        out.masked_fill_(nan, math.nan)
        return out.mul_(s) if s != 1.0 else out
    # stochastic: P(+s) = (x + s) / 2s on [-s, s] (BinaryConnect's stochastic binarization)
    out = _clamp(x, -s, s, dtype, out)
    out.add_(s).div_(2 * s)
    _stochastic_(out, gen)
    return out.mul_(2 * s).sub_(s)


# ---------------------------------------------------------------------------------- scaled formats
@dataclass(frozen=True)
class Blocks:
    """A tensor in a scaled format: element values per block and the scale of each block.

    `elements` is (rows, blocks, block) float64 (the axis last, padded with zeros to whole
    blocks), `scales` (rows, blocks) float64 (each block's scale, the per-tensor scale included;
    NaN for a block holding NaN or infinity), `block_scales` the stored scales without the
    per-tensor one, `tensor_scale` that one (1.0 without it), `format` the scaled format.
    `values()` undoes the layout.
    """

    elements: torch.Tensor
    scales: torch.Tensor
    block_scales: torch.Tensor
    tensor_scale: float
    shape: tuple[int, ...]
    axis: tuple[int, ...]
    format: ScaledFormat

    def values(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """elements x scale in the original shape, delivered in `dtype`."""
        return self.restore(self.elements * self.scales[..., None]).to(dtype)

    def element_codes(self) -> torch.Tensor:
        """The element values in the original shape (float64)."""
        return self.restore(self.elements)

    def scale_map(self) -> torch.Tensor:
        """Each value's stored block scale (without the per-tensor scale; NaN for a block holding
        NaN or infinity) in the original shape."""
        stored = torch.where(torch.isnan(self.scales), self.scales, self.block_scales)
        return self.restore(stored[..., None].expand(self.elements.shape))

    def restore(self, t: torch.Tensor) -> torch.Tensor:
        """A (rows, blocks, block) tensor laid out as the original tensor (padding dropped)."""
        return _unblock(t, self.shape, self.axis)


Axis = int | tuple[int, ...]


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Normalized block dims: one axis, or several read as one (in order)."""
    dims = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(d % max(ndim, 1) for d in dims)


def _unblock(t: torch.Tensor, shape: tuple[int, ...], axis: Axis) -> torch.Tensor:
    """A (rows, blocks, block) tensor laid out as a tensor of `shape` blocked along `axis`."""
    dims = _axes(axis, len(shape))
    moved = [n for d, n in enumerate(shape) if d not in dims] + [shape[d] for d in dims]
    rows = t.shape[0]
    flat = t.reshape(rows, -1)[:, : math.prod(moved) // max(rows, 1)]
    last = tuple(range(len(moved) - len(dims), len(moved)))
    return flat.reshape(moved).movedim(last, dims) if shape else flat.reshape(())


def _as_blocks(x: torch.Tensor, fmt: ScaledFormat, axis: Axis, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(rows, blocks, block) tensor of x in `dtype` with the `axis` dims last (read as one axis),
    zero-padded to whole blocks (a view of x where its layout allows)."""
    dims = _axes(axis, x.dim())
    moved = x.detach().to(dtype)
    if x.dim():
        moved = moved.movedim(dims, tuple(range(x.dim() - len(dims), x.dim())))
        moved = moved.reshape(*moved.shape[: x.dim() - len(dims)], -1)
    n = moved.shape[-1] if moved.dim() else 1
    if fmt.block == 0:
        return moved.reshape(1, 1, -1)
    size = n if fmt.block is None else fmt.block
    rows = moved.reshape(-1, n)
    pad = (-n) % size
    if pad:
        rows = torch.nn.functional.pad(rows, (0, pad))
    return rows.reshape(rows.shape[0], -1, size)


def _e8m0_exponents(amax: torch.Tensor, fmt: ScaledFormat) -> torch.Tensor:
    """Each block's shared exponent under the format's rule, clamped to E8M0's -127..127 (OCP MX
    v1.0 section 6.3 for floor; torchao's CEIL, EVEN and RCEIL for the others)."""
    m, e = torch.frexp(amax)  # amax = m 2**e, m in [0.5, 1); 0 gives m = 0
    floor_log2 = e - 1
    emax = fmt.element_emax
    if fmt.rule == "floor":
        k = floor_log2 - emax
    elif fmt.rule == "ceil":
        k = floor_log2 + (m != 0.5).to(e.dtype) - emax
    elif fmt.rule == "even":  # round the mantissa half up to the element's bits first: 1.97 -> 2 at 3 bits
        mbits = fmt.element.significand_bits - 1
        k = floor_log2 + (2 * m >= 2 - math.ldexp(1.0, -(mbits + 1))).to(e.dtype) - emax
    else:  # rceil: the smallest k with qmax 2**k >= amax, exactly
        k = floor_log2 - emax - 1
        for _ in range(3):
            k = torch.where(torch.ldexp(torch.full_like(amax, fmt.qmax), k.to(amax.dtype)) < amax, k + 1, k)
    return torch.where(amax == 0, torch.full_like(k, -127), k).clamp(-127, 127)


def _float_scales(amax32: torch.Tensor, fmt: ScaledFormat, tensor_amax: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(block scales, per-tensor scale) of float scales, in float32 arithmetic as NVIDIA's recipe
    and torchao compute them: amax / qmax, over the per-tensor scale amax / (448 qmax) when the
    format has one, rounded onto E4M3 (saturating, from the smallest subnormal or, with
    scale_min=normal, the smallest normal value) or kept in FP32."""
    qmax = torch.tensor(fmt.qmax, dtype=torch.float32)
    tensor_scale = torch.ones((), dtype=torch.float32)
    raw = amax32 / qmax
    if fmt.tensor_scale:
        tensor_scale = tensor_amax.to(torch.float32) / (448.0 * qmax)
        raw = raw / tensor_scale
    if fmt.scale == "e4m3":
        raw = quantize(raw.clamp(min=2.0**-9 if fmt.scale_min == "subnormal" else 2.0**-6), "e4m3fn")
    return torch.where(amax32 == 0, torch.ones_like(raw), raw), float(tensor_scale)


@dataclass(frozen=True)
class _Scales:
    """Each block's scale: `block` as stored (float64; a power of two for E8M0), `tensor` the
    per-tensor scale (1.0 without one), `block32` the float32 stored scales of float scales (the
    reciprocal kernels' operand), `bad` the blocks holding NaN or infinity, `reciprocal` whether
    elements are formed as float32 x * (1 / scale) (the format's scaling=reciprocal, float scales)."""

    block: torch.Tensor
    tensor: float
    block32: torch.Tensor | None
    bad: torch.Tensor
    reciprocal: bool

    @functools.cached_property
    def _whole(self) -> torch.Tensor:
        return self.block * self.tensor

    @functools.cached_property
    def combined(self) -> torch.Tensor:
        """Each block's whole scale (block x tensor), NaN for a bad block."""
        return torch.where(self.bad, torch.full_like(self.block, math.nan), self._whole)

    @functools.cached_property
    def _reciprocal32(self) -> torch.Tensor:
        """float32 1 / scale as torchao's and NVIDIA's kernels form it."""
        assert self.block32 is not None
        if self.tensor != 1.0:
            return (1.0 / torch.tensor(self.tensor, dtype=torch.float32)) / self.block32
        return 1.0 / self.block32

    def divide(self, part: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """Blocks `rows` of the values divided by their scale, in float64: exactly (x / scale
        rounded once, far below the element grid; exact for E8M0) or as the reciprocal kernels do."""
        if self.reciprocal:
            return (part.to(torch.float32) * self._reciprocal32[rows, ..., None]).double()
        return part.to(torch.float64, copy=True).div_(self._whole[rows, ..., None])  # a copy: `part` may view the caller's input


def _scales_of(blocks: torch.Tensor, fmt: ScaledFormat) -> _Scales:
    """The scales of (rows, blocks, block) values under the format's scale rule."""
    amax = torch.maximum(blocks.amax(-1), blocks.amin(-1).neg()).double()  # NaN and inf survive: the block is bad
    bad = ~torch.isfinite(amax)
    if fmt.scale == "e8m0":
        k = _e8m0_exponents(torch.where(bad, 0.0, amax), fmt)
        return _Scales(torch.ldexp(torch.ones_like(amax), k.to(amax.dtype)), 1.0, None, bad, False)
    finite = torch.where(bad, 0.0, amax)
    block32, tensor = _float_scales(finite.to(torch.float32), fmt, finite.max() if finite.numel() else finite.new_zeros(()))
    return _Scales(block32.double(), tensor, block32, bad, fmt.scaling == "reciprocal")


def _elements(scaled: torch.Tensor, fmt: ScaledFormat, rounding: str, generator: torch.Generator | None) -> torch.Tensor:
    """Values divided by their block's scale rounded onto the element format, in place."""
    if fmt.family == "int":  # symmetric integers: [-qmax, qmax], not two's complement's extra negative code
        scaled.clamp_(-fmt.qmax, fmt.qmax)
    return quantize(scaled, fmt.element, rounding, generator, out=scaled)


def quantize_blocks(x: torch.Tensor, fmt: Format | str, axis: Axis = -1, rounding: Rounding | str = "nearest",
                    generator: torch.Generator | None = None) -> Blocks:
    """x in scaled format `fmt` along `axis` (one dim, or a tuple of dims read as one in order: a
    convolution weight's (1, 2, 3) for one scale per output channel): each block's scale
    (docs/formats.md, "Scaled formats") and its elements, x / scale rounded onto the element
    format (saturating)."""
    fmt = as_format(fmt)
    if not isinstance(fmt, ScaledFormat):
        raise ValueError(f"quantize_blocks takes a scaled format (mxfp4, nvfp4, int4<group=128>, ...), got {fmt}")
    check_rounding(rounding)
    axis = _axes(axis, x.dim())
    blocks = _as_blocks(x, fmt, axis)
    sc = _scales_of(blocks, fmt)
    elements = _elements(sc.divide(blocks), fmt, rounding, generator)
    return Blocks(elements, sc.combined, sc.block, sc.tensor, tuple(x.shape), axis, fmt)


#: rows of blocks a float64 chunk of the fast path holds (about 2**17 values: cache-sized)
_CHUNK_VALUES = 2**17


def _quantize_scaled(x: torch.Tensor, fmt: ScaledFormat, axis: Axis, rounding: str, generator: torch.Generator | None) -> torch.Tensor:
    """quantize_blocks(x, ...).values(x.dtype) without its float64 copies: E8M0 scales with
    nearest or toward-zero rounding work in x's dtype (dividing by a power of two is exact down to
    the element grid), the others in cache-sized float64 chunks; stochastic rounding takes the
    whole-tensor path so that its draws do not depend on chunking."""
    if rounding == "stochastic":
        return quantize_blocks(x, fmt, axis, rounding, generator).values(x.dtype)
    blocks = _as_blocks(x, fmt, axis, x.dtype)
    sc = _scales_of(blocks, fmt)
    scale = sc.combined[..., None]
    if sc.block32 is None and rounding in ("nearest", "toward_zero"):
        out = blocks * torch.reciprocal(scale).to(x.dtype)
        _elements(out, fmt, rounding, generator).mul_(scale.to(x.dtype))
    else:
        out = torch.empty_like(blocks)
        step = max(_CHUNK_VALUES // max(blocks.shape[1] * blocks.shape[2], 1), 1)
        for i in range(0, blocks.shape[0], step):
            rows = slice(i, i + step)
            out[rows] = _elements(sc.divide(blocks[rows], rows), fmt, rounding, generator).mul_(scale[rows])
    return _unblock(out, tuple(x.shape), axis)


# ------------------------------------------------------------------------------------ dispatch
def quantize(
    x: torch.Tensor,
    fmt: Format | str,
    rounding: Rounding | str = "nearest",
    generator: torch.Generator | None = None,
    out: torch.Tensor | None = None,
    axis: Axis = -1,
) -> torch.Tensor:
    """Round every element of `x` onto `fmt`; returns a new tensor of the same shape, or `out`.

    float32 and float64 inputs keep their dtype; other inputs are computed and returned as
    float32. For `Float32` a float32 input is returned as is (no copy). `rounding` is "nearest"
    (ties to even), "stochastic" (unbiased, to one of the two neighbours; seed it with
    `generator`), "floor" or "toward_zero". `out` (which may be `x` itself, for rounding in place)
    receives the result without a new allocation. No gradient flows: see `quantize_ste`. A
    fixed-point grid wider than the tensor's significand rounds onto the grid values the dtype
    can hold; wrapping formats that wide are refused (docs/formats.md, "Policies"). Scaled formats
    (mxfp4, nvfp4, int4<group=128>, ...) share a scale per block of values along `axis`
    (`quantize_blocks` gives the elements and scales).
    """
    fmt = as_format(fmt)
    check_rounding(rounding)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"quantize expects a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _BITS:
        x = x.to(torch.float32)
    if out is not None and (out.shape != x.shape or out.dtype != x.dtype):
        raise ValueError(f"out must have the input's shape {tuple(x.shape)} and dtype {x.dtype}, "
                         f"got {tuple(out.shape)} and {out.dtype}")
    if isinstance(fmt, ScaledFormat):
        with torch.no_grad():
            result = _quantize_scaled(x, fmt, axis, rounding, generator)
        return result if out is None else out.copy_(result)
    fmt = fmt.resolve(x)
    with torch.no_grad():
        grid = grid_of(fmt, x.dtype)
        if fmt.is_identity and x.dtype == torch.float32:
            result = x
        elif grid is None:
            result = _quantize_binary(x, fmt, rounding, generator, out)  # type: ignore[arg-type]
        else:
            return round_onto_grid(x, grid, rounding, generator, out)
        if out is None:
            return result.to(x.dtype)
        if result is not out:
            out.copy_(result)
    return out


def to_dtype(x: torch.Tensor, fmt: Format, dtype: torch.dtype) -> torch.Tensor:
    """Values of the static format `fmt` held exactly in a wider tensor `x`, delivered in `dtype`:
    unchanged where `dtype` holds every value of `fmt`, else rounded (nearest) onto the values of
    the grid that `dtype` can hold, saturating at the largest not above the format's max."""
    if x.dtype == dtype or fmt.significand_bits <= _dtype_significand(dtype) or not isinstance(fmt, FixedPoint):
        return x.to(dtype)  # only fixed point grows past the significand (the kernel's own dispatch)
    with torch.no_grad():
        wide = _round_float(x.to(torch.float64), _subset_grid(fmt, dtype), "nearest", None, None)
    return wide.to(dtype)


class _QuantizeSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fmt: Format, rounding: str, generator: torch.Generator | None, axis: Axis) -> torch.Tensor:
        static = fmt.resolve(x)
        lo, hi = fmt.gradient_window(static)
        if math.isfinite(lo) or math.isfinite(hi):
            ctx.save_for_backward((x >= lo) & (x <= hi))
        else:
            ctx.save_for_backward(None)
        return quantize(x, static, rounding, generator, axis=axis)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (inside,) = ctx.saved_tensors
        if inside is None:
            return grad, None, None, None, None
        return grad * inside, None, None, None, None


def quantize_ste(
    x: torch.Tensor,
    fmt: Format | str,
    rounding: Rounding | str = "nearest",
    generator: torch.Generator | None = None,
    axis: Axis = -1,
) -> torch.Tensor:
    """`quantize` with a straight-through gradient: 1 where min_value <= x <= max_value, else 0.

    Inside the range rounding is treated as the identity (the straight-through estimator of
    Bengio et al., used by BinaryConnect and QAT); outside it the output is saturated and does
    not depend on x, so the gradient is blocked, which also stops weights drifting far out.
    Binary with a per-tensor scale (`binary<mean>`) uses BinaryConnect's window [-1, 1]; float32
    passes every gradient (see `Format.gradient_window`). Scaled formats (blocks along `axis`)
    pass every gradient: each block's scale follows its largest magnitude, so only the few
    values an E8M0 floor scale saturates are clipped, and those keep their gradient too.
    """
    fmt = as_format(fmt)
    check_rounding(rounding)
    out: torch.Tensor = _QuantizeSTE.apply(x, fmt, rounding, generator, axis)
    return out
