"""Number formats as immutable values: fixed point, custom floats, powers of two, binary, float32.

A format knows its bit width, range, smallest positive value, uniform step (where it has one) and,
when small enough, every representable value. Formats whose grid depends on the data (`fixed<B,auto>`,
`pow2<B>` without `max_exp`, `binary<mean>`) are *adaptive*: `resolve(x)` returns the static format
chosen for a tensor. Every format emulated here fits inside a float32 tensor: each representable value
is a float32 value, which keeps emulation exact in float32 arithmetic.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from .errors import did_you_mean

__all__ = [
    "Format",
    "FixedPoint",
    "MiniFloat",
    "PowerOfTwo",
    "Binary",
    "Float32",
    "ScaledFormat",
    "SCALE_BITS",
    "E8M0_RULES",
    "parse_format",
    "as_format",
    "ALIASES",
]

MAX_ENUMERATED = 2**16
_F32_MAX_EXP = 127
_F32_MIN_NORMAL_EXP = -126
_F32_MIN_SUBNORMAL_EXP = -149
_F32_MANTISSA = 23


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _check_int(name: str, value: object, fmt: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{fmt}: {name} must be an integer, got {value!r}")
    return value


class Format(ABC):
    """A number format: a finite set of values a tensor is rounded onto."""

    #: the format family's name in format strings
    kind: ClassVar[str]

    @property
    @abstractmethod
    def bits(self) -> int:
        """Storage width in bits."""

    @property
    def bits_per_value(self) -> float:
        """Storage bits per value, shared scales included (`bits` for per-element formats)."""
        return float(self.bits)

    def storage_bits(self, count: int, row_length: int | None = None) -> int:
        """Bits that store `count` values laid out in rows of `row_length` along the axis a scaled
        format's blocks run (None: one row), shared scales included."""
        return self.bits * count

    @property
    def scale_sharing(self) -> str:
        """How values share a scale: "none" (each value stands alone), or a scaled format's
        "block", "channel" (one scale per row) or "tensor"."""
        return "none"

    @property
    def adaptive(self) -> bool:
        """True when the grid is chosen per tensor (see `resolve`)."""
        return False

    def resolve(self, x: torch.Tensor) -> Format:
        """The static format used for tensor `x` (self, unless the format is adaptive)."""
        return self

    @property
    @abstractmethod
    def max_value(self) -> float:
        """Largest finite representable value."""

    @property
    def min_value(self) -> float:
        """Smallest (most negative) finite representable value."""
        return -self.max_value

    @property
    @abstractmethod
    def min_positive(self) -> float:
        """Smallest representable value greater than zero."""

    @property
    def step(self) -> float | None:
        """Distance between neighbouring values where the grid is uniform, else None."""
        return None

    @property
    @abstractmethod
    def num_values(self) -> int:
        """How many distinct finite values the format holds (+0 and -0 count once)."""

    @property
    @abstractmethod
    def significand_bits(self) -> int:
        """Bits of significand one value carries (a product of two values needs their sum)."""

    @property
    def within_float32_products(self) -> bool:
        """True when the product of two values of static formats like this is an exact float32
        (static grid with values between 2**-63 and 2**63)."""
        return not self.adaptive and self.min_positive >= 2.0**-63 and self.max_value <= 2.0**63

    def sum_precision(self, rounding: str) -> int:
        """Significant bits a binary float needs so that adding two values of this accumulator
        format and rounding the sum onto it gives the rounding of the exact sum: 2p + 2 for a plain
        sum under nearest (Figueroa), p + 2 for a sum rounded to odd under any mode (Boldo and
        Melquiond), p the format's significand bits; formats whose sums are exact say less."""
        p = self.significand_bits
        return 2 * p + 2 if rounding == "nearest" else p + 2

    @property
    def accumulator_error(self) -> str | None:
        """Why this format cannot hold a running sum in the accumulator emulation, or None."""
        return None

    @property
    def is_identity(self) -> bool:
        """True when quantizing a float32 tensor onto this format changes nothing (float32)."""
        return False

    @property
    def exponent_bits(self) -> int:
        """Bits of exponent a value carries (0 for formats without one)."""
        return 0

    @property
    def exponent_bias(self) -> int | None:
        """The exponent bias of a float format (stored exponent minus bias is the power), else None."""
        return None

    @property
    def datapath(self) -> str:
        """The multiplier a value of this format needs in hardware: "integer", "float", "shift"
        (powers of two) or "sign" (binary)."""
        return "float"

    @property
    def grid_exponent(self) -> int | None:
        """e when every value is an integer multiple of 2**e on a uniform grid (fixed point), else
        None; products of such formats are exact multiples of the sum of their exponents."""
        return None

    @property
    def wraps(self) -> bool:
        """True when overflow wraps around (modular arithmetic) instead of saturating."""
        return False

    @property
    def training_clip(self) -> float | None:
        """The magnitude shadow weights are clipped to during quantization-aware training
        (BinaryConnect's rule for binary weights), or None."""
        return None

    def gradient_window(self, static: Format) -> tuple[float, float]:
        """Where `quantize_ste` passes gradients, given the static format the tensor resolved to:
        the representable range (outside it the output saturates and does not depend on x)."""
        return static.min_value, static.max_value

    def widened(self, bits: int) -> Format | None:
        """The same family with `bits` more significand bits (negative: fewer), or None where
        the family has no such neighbour (Hill's search steps one bit at a time)."""
        return None

    @abstractmethod
    def _enumerate(self) -> list[float]:
        """Every finite representable value (any order, duplicates allowed)."""

    def values(self) -> torch.Tensor:
        """Every finite representable value, sorted, as float64 (at most 2**16 of them)."""
        self._static_or_raise("values()")
        _require(
            self.num_values <= MAX_ENUMERATED,
            f"{self}: has {self.num_values} values; values() enumerates at most {MAX_ENUMERATED}",
        )
        return torch.tensor(sorted(set(self._enumerate())), dtype=torch.float64)

    def _static_or_raise(self, what: str) -> None:
        if self.adaptive:
            raise ValueError(
                f"{self}: {what} depends on the tensor for an adaptive format; "
                f"call fmt.resolve(x) first"
            )

    def __repr__(self) -> str:
        return f"parse_format({str(self)!r})"


# ----------------------------------------------------------------------------------------- fixed
@dataclass(frozen=True, repr=False)
class FixedPoint(Format):
    """Two's complement (or unsigned) fixed point: integers k times 2**-frac, k on `bits` bits.

    `frac` may be negative or exceed `bits`; `frac="auto"` picks it per tensor so the largest
    magnitude fits without saturating (Ristretto's dynamic fixed point). `overflow` is
    "saturate" (clip to the range) or "wrap" (modular two's complement arithmetic).
    """

    bits_: int
    frac: int | Literal["auto"]
    signed: bool = True
    overflow: Literal["saturate", "wrap"] = "saturate"
    kind: ClassVar[str] = "fixed"

    def __init__(
        self,
        bits: int,
        frac: int | Literal["auto"],
        signed: bool = True,
        overflow: Literal["saturate", "wrap"] = "saturate",
    ) -> None:
        object.__setattr__(self, "bits_", bits)
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "signed", signed)
        object.__setattr__(self, "overflow", overflow)
        self._validate()

    def _validate(self) -> None:
        name = f"{'fixed' if self.signed else 'ufixed'}<{self.bits_},{self.frac}>"
        bits = _check_int("bits", self.bits_, name)
        _require(1 <= bits <= 64, f"{name}: bits must be between 1 and 64, got {bits}")
        _require(
            self.overflow in ("saturate", "wrap"),
            f"{name}: overflow must be 'saturate' or 'wrap', got {self.overflow!r}",
        )
        _require(isinstance(self.signed, bool), f"{name}: signed must be True or False")
        _require(
            self.overflow == "saturate" or bits <= 53,
            f"{name}: wrapping fixed point needs at most 53 bits (its codes are emulated exactly in float64), got {bits}",
        )
        if self.frac == "auto":
            return
        frac = _check_int("frac", self.frac, name)
        _require(-10_000 <= frac <= 10_000, f"{name}: frac must be between -10000 and 10000, got {frac}")
        # The grid must lie inside float32: the step 2**-frac no finer than float32's smallest
        # subnormal, every magnitude below 2**128 and, signed, the minimum -2**top a float32.
        _require(
            frac <= -_F32_MIN_SUBNORMAL_EXP,
            f"{name}: frac {frac} makes the step 2**-{frac} smaller than float32's smallest "
            f"value 2**-149; use frac <= 149",
        )
        top = self._int_bits() - frac
        limit = _F32_MAX_EXP if self.signed else _F32_MAX_EXP + 1
        _require(
            top <= limit,
            f"{name}: values reach {'-' if self.signed else ''}2**{top}, beyond float32's range; "
            f"use frac >= {self._int_bits() - limit}",
        )

    def _int_bits(self) -> int:
        """Bits of integer magnitude: the largest |k| is below 2**this."""
        return self.bits_ - 1 if self.signed else self.bits_

    @property
    def bits(self) -> int:
        return self.bits_

    @property
    def adaptive(self) -> bool:
        return self.frac == "auto"

    def _static_frac(self, what: str) -> int:
        self._static_or_raise(what)
        assert isinstance(self.frac, int)
        return self.frac

    @property
    def k_min(self) -> int:
        """Smallest integer code."""
        return -(2 ** (self.bits_ - 1)) if self.signed else 0

    @property
    def k_max(self) -> int:
        """Largest integer code."""
        return 2 ** self._int_bits() - 1

    @property
    def max_value(self) -> float:
        """Largest value (for bits > 53 rounded toward zero to a float64)."""
        frac = self._static_frac("max_value")
        drop = max(self._int_bits() - 53, 0)
        return math.ldexp(self.k_max >> drop << drop, -frac)

    @property
    def min_value(self) -> float:
        return math.ldexp(self.k_min, -self._static_frac("min_value"))

    @property
    def min_positive(self) -> float:
        return math.ldexp(1.0, -self._static_frac("min_positive"))

    @property
    def step(self) -> float:
        return self.min_positive

    @property
    def num_values(self) -> int:
        return 2**self.bits_

    @property
    def significand_bits(self) -> int:
        return self._int_bits()

    def sum_precision(self, rounding: str) -> int:
        return self.bits_ + 1  # the sum of two values on one grid is exact with one more bit

    @property
    def accumulator_error(self) -> str | None:
        if self._int_bits() > 51:
            return ("at most 51 magnitude bits can be emulated exactly (float64, with room for the rounding of the sum "
                    "with a bias)")
        return None

    @property
    def datapath(self) -> str:
        return "integer"

    @property
    def grid_exponent(self) -> int | None:
        return None if self.frac == "auto" else -self.frac

    @property
    def wraps(self) -> bool:
        return self.overflow == "wrap"

    def widened(self, bits: int) -> FixedPoint | None:
        try:
            return FixedPoint(self.bits_ + bits, self.frac if self.frac == "auto" else int(self.frac) + bits, self.signed, self.overflow)
        except ValueError:
            return None

    def _enumerate(self) -> list[float]:
        frac = self._static_frac("values()")
        return [math.ldexp(k, -frac) for k in range(self.k_min, self.k_max + 1)]

    def resolve(self, x: torch.Tensor) -> FixedPoint:
        """Largest frac with max|x| * 2**frac <= k_max, so nothing saturates (auto only)."""
        if not self.adaptive:
            return self
        top = _finite_absmax(x)
        frac_hi = -_F32_MIN_SUBNORMAL_EXP
        frac_lo = self._int_bits() - (_F32_MAX_EXP if self.signed else _F32_MAX_EXP + 1)
        if top == 0.0:
            frac = min(max(self._int_bits(), frac_lo), frac_hi)
        else:
            frac = math.floor(math.log2(self.k_max / top))
            # log2 may be off by one ulp near integers: settle with exact comparisons.
            while math.ldexp(top, frac + 1) <= self.k_max:
                frac += 1
            while math.ldexp(top, frac) > self.k_max:
                frac -= 1
            frac = min(max(frac, frac_lo), frac_hi)
        return FixedPoint(self.bits_, frac, self.signed, self.overflow)

    def __str__(self) -> str:
        name = "fixed" if self.signed else "ufixed"
        extra = ",overflow=wrap" if self.overflow == "wrap" else ""
        return f"{name}<{self.bits_},{self.frac}{extra}>"

    @classmethod
    def parse(cls, family: str, args: _Args) -> FixedPoint:
        """fixed<B,F|auto[,overflow=saturate|wrap]> (signed) or ufixed<...> (unsigned)."""
        args.expect(2, 2, f"{family}<B,F> or {family}<B,auto>")
        bits = args.integer(0, "bits", 1, 64)
        frac: int | Literal["auto"] = "auto" if args.positional[1] == "auto" else args.integer(1, "frac", -10_000, 10_000)
        overflow = args.choice("overflow", {"saturate": "saturate", "wrap": "wrap"}, "saturate")
        args.done(["overflow"])
        return cls(bits, frac, signed=family == "fixed", overflow=overflow)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ minifloat
@dataclass(frozen=True, repr=False)
class MiniFloat(Format):
    """Custom binary float: sign, `exp` exponent bits, `man` stored mantissa bits, `bias`.

    `special` says what the top exponent code means: "ieee" reserves it for inf and NaN,
    "fn" (the OCP FP8 E4M3FN variant) keeps it finite except the all-ones mantissa, which is NaN,
    "none" makes every code finite. `subnormals=False` leaves nothing between 0 and the smallest
    normal. On overflow values saturate to +-max; `overflow="inf"` (only for "ieee") rounds to
    +-inf instead, as IEEE 754 conversions do.
    """

    exp: int
    man: int
    bias: int
    subnormals: bool = True
    special: Literal["ieee", "fn", "none"] = "ieee"
    overflow: Literal["saturate", "inf"] = "saturate"
    kind: ClassVar[str] = "float"

    def __init__(
        self,
        exp: int,
        man: int,
        bias: int | None = None,
        subnormals: bool = True,
        special: Literal["ieee", "fn", "none"] = "ieee",
        overflow: Literal["saturate", "inf"] = "saturate",
    ) -> None:
        exp = _check_int("exponent bits", exp, "float")
        man = _check_int("mantissa bits", man, "float")
        name = f"float<{exp},{man}>"
        _require(exp >= 1, f"{name}: exponent bits must be at least 1, got {exp}")
        _require(exp <= 30, f"{name}: {exp} exponent bits are far beyond float32's range, which holds at most 8")
        _require(man >= 0, f"{name}: mantissa bits must be at least 0, got {man}")
        _require(
            man <= _F32_MANTISSA,
            f"{name}: {man} mantissa bits exceed float32's {_F32_MANTISSA}; quantscope emulates "
            f"formats inside float32 tensors, so use at most 23 (float<8,23> is float32)",
        )
        if bias is None:
            bias = 2 ** (exp - 1) - 1
        bias = _check_int("bias", bias, name)
        _require(abs(bias) <= 1000, f"{name}: bias must be between -1000 and 1000 (float32 needs -127..382), got {bias}")
        object.__setattr__(self, "exp", exp)
        object.__setattr__(self, "man", man)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "subnormals", subnormals)
        object.__setattr__(self, "special", special)
        object.__setattr__(self, "overflow", overflow)
        self._validate()

    def _validate(self) -> None:
        name = f"float<{self.exp},{self.man}>"
        _require(
            self.special in ("ieee", "fn", "none"),
            f"{name}: special must be 'ieee', 'fn' or 'none', got {self.special!r}",
        )
        _require(
            self.overflow in ("saturate", "inf"),
            f"{name}: overflow must be 'saturate' or 'inf', got {self.overflow!r}",
        )
        _require(
            self.overflow == "saturate" or self.special == "ieee",
            f"{name}: overflow='inf' needs special='ieee' (the only variant with infinities), "
            f"got special={self.special!r}",
        )
        _require(isinstance(self.subnormals, bool), f"{name}: subnormals must be True or False")
        _require(
            self.emax_field >= 1,
            f"{name}: with special={self.special!r} and {self.exp} exponent bit(s) there are no "
            f"normal numbers; use more exponent bits",
        )
        _require(
            self.emax <= _F32_MAX_EXP,
            f"{name}: largest exponent 2**{self.emax} is beyond float32's 2**127 (bias {self.bias}"
            f" with {self.exp} exponent bits); quantscope emulates formats inside float32 "
            f"tensors: use at most 8 exponent bits or a bias >= {self.emax_field - _F32_MAX_EXP}",
        )
        _require(
            self.emin >= _F32_MIN_NORMAL_EXP,
            f"{name}: bias {self.bias} puts the smallest normal at 2**{self.emin}, below float32's "
            f"2**-126; use bias <= 127",
        )
        _require(
            not self.subnormals or self.emin - self.man >= _F32_MIN_SUBNORMAL_EXP,
            f"{name}: smallest subnormal 2**{self.emin - self.man} is below float32's 2**-149; "
            f"use a smaller bias or subnormals=False",
        )

    @property
    def bits(self) -> int:
        return 1 + self.exp + self.man

    @property
    def default_bias(self) -> int:
        """IEEE-style bias 2**(exp-1) - 1."""
        return 2 ** (self.exp - 1) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number."""
        return 1 - self.bias

    @property
    def emax_field(self) -> int:
        """Largest exponent code holding finite numbers."""
        top = 2**self.exp - 1
        reserved = self.special == "ieee" or (self.special == "fn" and self.man == 0)
        return top - 1 if reserved else top

    @property
    def emax(self) -> int:
        """Exponent of the largest finite number."""
        return self.emax_field - self.bias

    @property
    def _top_mantissa(self) -> int:
        """Largest mantissa code at the top finite exponent code."""
        full = 2**self.man - 1
        at_top = self.emax_field == 2**self.exp - 1
        return full - 1 if self.special == "fn" and at_top else full

    @property
    def max_value(self) -> float:
        return math.ldexp(1.0 + self._top_mantissa / 2**self.man, self.emax)

    @property
    def min_normal(self) -> float:
        """Smallest positive normal number."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_positive(self) -> float:
        if self.subnormals and self.man > 0:
            return math.ldexp(1.0, self.emin - self.man)
        return self.min_normal

    @property
    def has_inf(self) -> bool:
        """True when the format has infinities."""
        return self.special == "ieee"

    @property
    def has_nan(self) -> bool:
        """True when the format has NaN codes."""
        return self.special != "none"

    @property
    def significand_bits(self) -> int:
        return self.man + 1

    @property
    def exponent_bits(self) -> int:
        return self.exp

    @property
    def exponent_bias(self) -> int:
        return self.bias

    def widened(self, bits: int) -> MiniFloat | None:
        try:
            return MiniFloat(self.exp, self.man + bits, self.bias, self.subnormals, self.special, self.overflow)
        except ValueError:
            return None

    @property
    def num_values(self) -> int:
        sub = (2**self.man - 1) if self.subnormals else 0
        normal = (self.emax_field - 1) * 2**self.man + self._top_mantissa + 1
        return 2 * (sub + normal) + 1

    def _enumerate(self) -> list[float]:
        out = [0.0]
        if self.subnormals:
            out += [math.ldexp(m, self.emin - self.man) for m in range(1, 2**self.man)]
        for field in range(1, self.emax_field + 1):
            top = self._top_mantissa if field == self.emax_field else 2**self.man - 1
            out += [math.ldexp(2**self.man + m, field - self.bias - self.man) for m in range(top + 1)]
        return out + [-v for v in out]

    def __str__(self) -> str:
        args = [str(self.exp), str(self.man)]
        if self.bias != self.default_bias:
            args.append(str(self.bias))
        if self.special != "ieee":
            args.append(f"special={self.special}")
        if not self.subnormals:
            args.append("subnormals=off")
        if self.overflow != "saturate":
            args.append(f"overflow={self.overflow}")
        return f"float<{','.join(args)}>"

    @classmethod
    def parse(cls, family: str, args: _Args) -> MiniFloat:
        """float<E,M[,bias][,bias=..][,special=ieee|fn|none][,subnormals=on|off][,overflow=saturate|inf]>."""
        args.expect(2, 3, "float<E,M> or float<E,M,bias>")
        exp = args.integer(0, "exponent bits", -(10**12), 10**12)  # the constructor says what is allowed
        man = args.integer(1, "mantissa bits", -(10**12), 10**12)
        bias = args.integer(2, "bias", -1000, 1000) if len(args.positional) == 3 else None
        if "bias" in args.options:
            if bias is not None:
                raise ValueError(f"format {args.text!r}: the bias is given twice ({bias} and bias={args.options['bias']})")
            bias = args.option_integer("bias", -1000, 1000)
        special = args.choice("special", {"ieee": "ieee", "fn": "fn", "none": "none"}, "ieee")
        subnormals = args.choice("subnormals", _BOOL, True)
        overflow = args.choice("overflow", {"saturate": "saturate", "inf": "inf"}, "saturate")
        args.done(["bias", "special", "subnormals", "overflow"])
        return cls(exp, man, bias, subnormals=bool(subnormals), special=special, overflow=overflow)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ power of 2
@dataclass(frozen=True, repr=False)
class PowerOfTwo(Format):
    """Zero and +-2**e for 2**(bits-1) - 1 consecutive exponents e ending at `max_exp`.

    One sign bit and (bits-1) bits of exponent code, one code of which means zero. Without
    `max_exp` the window is placed per tensor: its top is the power of two nearest the tensor's
    largest magnitude. Rounding treats the format as a float with no mantissa bits.
    """

    bits_: int
    max_exp: int | None = None
    kind: ClassVar[str] = "pow2"

    def __init__(self, bits: int, max_exp: int | None = None) -> None:
        object.__setattr__(self, "bits_", bits)
        object.__setattr__(self, "max_exp", max_exp)
        name = f"pow2<{bits}>"
        bits = _check_int("bits", bits, name)
        _require(2 <= bits <= 8, f"{name}: bits must be between 2 and 8, got {bits}")
        if max_exp is not None:
            max_exp = _check_int("max_exp", max_exp, name)
            _require(
                max_exp <= _F32_MAX_EXP,
                f"{name}: max_exp {max_exp} is beyond float32's largest exponent 127",
            )
            _require(
                self.emin >= _F32_MIN_NORMAL_EXP,
                f"{name}: max_exp {max_exp} puts the smallest power at 2**{self.emin}, below "
                f"float32's smallest normal 2**-126; use max_exp >= {self.min_max_exp(bits)}",
            )

    @staticmethod
    def min_max_exp(bits: int) -> int:
        """Smallest max_exp whose whole window stays in float32's normal range."""
        return _F32_MIN_NORMAL_EXP + 2 ** (bits - 1) - 2

    @property
    def bits(self) -> int:
        return self.bits_

    @property
    def num_exponents(self) -> int:
        """How many powers of two (per sign) the format holds."""
        return 2 ** (self.bits_ - 1) - 1

    @property
    def adaptive(self) -> bool:
        return self.max_exp is None

    @property
    def emin(self) -> int:
        """Exponent of the smallest nonzero magnitude."""
        self._static_or_raise("emin")
        assert self.max_exp is not None
        return self.max_exp - self.num_exponents + 1

    @property
    def max_value(self) -> float:
        self._static_or_raise("max_value")
        assert self.max_exp is not None
        return math.ldexp(1.0, self.max_exp)

    @property
    def min_positive(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def num_values(self) -> int:
        return 2 * self.num_exponents + 1

    @property
    def significand_bits(self) -> int:
        return 1

    @property
    def datapath(self) -> str:
        return "shift"

    def _enumerate(self) -> list[float]:
        assert self.max_exp is not None
        mags = [math.ldexp(1.0, e) for e in range(self.emin, self.max_exp + 1)]
        return [0.0] + mags + [-m for m in mags]

    def resolve(self, x: torch.Tensor) -> PowerOfTwo:
        """Window topped by the power of two nearest max|x| (ties up), kept inside float32."""
        if not self.adaptive:
            return self
        top = _finite_absmax(x)
        if top == 0.0:
            max_exp = 0
        else:
            mant, e = math.frexp(top)  # top = mant * 2**e, mant in [0.5, 1)
            max_exp = e if mant >= 0.75 else e - 1
        max_exp = min(max(max_exp, self.min_max_exp(self.bits_)), _F32_MAX_EXP)
        return PowerOfTwo(self.bits_, max_exp)

    def __str__(self) -> str:
        if self.max_exp is None:
            return f"pow2<{self.bits_}>"
        return f"pow2<{self.bits_},{self.max_exp}>"

    @classmethod
    def parse(cls, family: str, args: _Args) -> PowerOfTwo:
        """pow2<B> (window placed per tensor) or pow2<B,max_exp>."""
        args.expect(1, 2, "pow2<B> or pow2<B,max_exp>")
        args.done([])
        bits = args.integer(0, "bits", 2, 8)
        return cls(bits, args.integer(1, "max_exp", -10_000, 10_000) if len(args.positional) == 2 else None)


# ---------------------------------------------------------------------------------------- binary
@dataclass(frozen=True, repr=False)
class Binary(Format):
    """+-scale: sign(x) with 0 mapped to +1, times 1, a fixed scale, or mean|x| per tensor."""

    scale: float | Literal["mean"] | None = None
    kind: ClassVar[str] = "binary"

    def __post_init__(self) -> None:
        s = self.scale
        if s is None or s == "mean":
            return
        _require(
            isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s >= 0,
            f"binary<{s}>: scale must be None, 'mean' or a finite number >= 0, got {s!r}",
        )
        nearest = float(torch.tensor(float(s), dtype=torch.float32))
        _require(
            nearest == float(s),
            f"binary<{s}>: scale {s!r} is not a float32 value (its codes would not be values of the format); "
            f"use binary<{nearest!r}>, the nearest float32",
        )
        object.__setattr__(self, "scale", float(s))

    @property
    def bits(self) -> int:
        return 1

    @property
    def adaptive(self) -> bool:
        return self.scale == "mean"

    @property
    def magnitude(self) -> float:
        """The value of a +1 code."""
        self._static_or_raise("magnitude")
        return 1.0 if self.scale is None else float(self.scale)

    @property
    def max_value(self) -> float:
        return self.magnitude

    @property
    def min_positive(self) -> float:
        return self.magnitude

    @property
    def step(self) -> float:
        return 2 * self.magnitude

    @property
    def num_values(self) -> int:
        return 2 if self.scale != 0.0 else 1

    @property
    def significand_bits(self) -> int:
        return 1

    @property
    def accumulator_error(self) -> str | None:
        return "a binary accumulator cannot hold a sum"

    @property
    def datapath(self) -> str:
        return "sign"

    @property
    def training_clip(self) -> float:
        return 1.0 if self.adaptive else self.magnitude

    def gradient_window(self, static: Format) -> tuple[float, float]:
        """BinaryConnect's [-1, 1] for a per-tensor scale, else the format's [-s, s]."""
        return (-1.0, 1.0) if self.adaptive else (-self.magnitude, self.magnitude)

    def _enumerate(self) -> list[float]:
        return [-self.magnitude, self.magnitude]

    def resolve(self, x: torch.Tensor) -> Binary:
        """Binary scaled by the mean absolute value of the finite elements of x."""
        if not self.adaptive:
            return self
        x = x.detach()
        finite = x if bool(torch.isfinite(x).all()) else x[torch.isfinite(x)]
        mean = float(torch.linalg.vector_norm(finite.double(), 1)) / max(finite.numel(), 1)
        return Binary(float(torch.tensor(mean, dtype=torch.float32)))

    def __str__(self) -> str:
        if self.scale is None:
            return "binary"
        return f"binary<{self.scale if self.scale == 'mean' else repr(float(self.scale))}>"

    @classmethod
    def parse(cls, family: str, args: _Args) -> Binary:
        """binary (+-1), binary<mean> (+-mean|x| per tensor) or binary<scale>."""
        args.expect(0, 1, "binary, binary<mean> or binary<scale>")
        args.done([])
        if not args.positional:
            return cls()
        if args.positional[0] == "mean":
            return cls("mean")
        try:
            scale = float(args.positional[0])
        except ValueError:
            raise ValueError(f"format {args.text!r}: binary takes 'mean' or a number, got {args.positional[0]!r}") from None
        return cls(scale)


# ---------------------------------------------------------------------------------------- scaled
#: element formats of the OCP MX and NVFP4 families, by their spec names
_ELEMENTS: dict[str, str] = {"e4m3": "float<4,3,special=fn>", "e5m2": "float<5,2>", "e3m2": "float<3,2,special=none>",
                             "e2m3": "float<2,3,special=none>", "e2m1": "float<2,1,special=none>"}
#: scale formats and their storage bits
SCALE_BITS: dict[str, int] = {"e8m0": 8, "e4m3": 8, "fp32": 32}
#: significant bits of a stored scale (E8M0 is a bare power of two)
_SCALE_SIGNIFICAND_BITS = {"e8m0": 1, "e4m3": 4, "fp32": 24}
#: rules for power-of-two (E8M0) scales: how the shared exponent follows from the block's largest magnitude
E8M0_RULES: tuple[str, ...] = ("floor", "ceil", "even", "rceil")
_MX_ELEMENTS = {"mxfp8": ("e4m3", "e5m2"), "mxfp6": ("e3m2", "e2m3"), "mxfp4": ("e2m1",), "mxint8": ("int8",)}


@dataclass(frozen=True, repr=False)
class ScaledFormat(Format):
    """Values sharing a scale: blocks of `block` consecutive values along a tensor axis (None: the
    whole axis, one scale per channel or row; 0: the whole tensor) each hold `element` codes times
    the block's scale, stored in `scale` format (E8M0: a power of two, E4M3 or FP32: a float).

    Families (docs/formats.md, "Scaled formats"): OCP MX (`mxfp8<e4m3|e5m2>`, `mxfp6<e3m2|e2m3>`,
    `mxfp4`, `mxint8`: blocks of 32, E8M0 scales with the spec's `rule=floor`, or ceil, even, rceil),
    NVIDIA's `nvfp4` (E2M1 in blocks of 16, E4M3 scales under a per-tensor FP32 scale), symmetric
    integers with a scale per group, channel or tensor (`int4<group=128>`, `int8<channel>`), and
    block floating point (`bfp<8,block=16>`: 8-bit two's complement elements, a shared exponent).
    `scaling` says how an element is formed from a float scale: "exact" (x / scale rounded once) or
    "reciprocal" (float32 x * (1 / scale), then rounded: torchao's and NVIDIA's kernels).
    `scale_min` is the smallest E4M3 scale: "subnormal" (2^-9, every E4M3 value) or "normal" (2^-6,
    torchao's clamp).
    """

    family: Literal["mx", "nvfp4", "int", "bfp"]
    element: Format
    block: int | None
    scale: Literal["e8m0", "e4m3", "fp32"]
    rule: str = "floor"
    tensor_scale: bool = False
    scaling: Literal["exact", "reciprocal"] = "exact"
    element_name: str = ""
    scale_min: Literal["subnormal", "normal"] = "subnormal"
    kind: ClassVar[str] = "scaled"

    def __post_init__(self) -> None:
        _require(self.scale in SCALE_BITS, f"scale format must be one of {', '.join(SCALE_BITS)}, got {self.scale!r}")
        _require(self.block is None or (isinstance(self.block, int) and 0 <= self.block <= 65536),
                 f"{self.family}: block must be a number of values (1..65536), 'channel' or 'tensor', got {self.block!r}")
        _require(self.rule in (E8M0_RULES if self.scale == "e8m0" else ("absmax",)),
                 f"{self.family}: rule {self.rule!r} does not go with {self.scale} scales; use "
                 + (", ".join(E8M0_RULES) if self.scale == "e8m0" else "absmax"))
        _require(self.scaling in ("exact", "reciprocal"), f"{self.family}: scaling must be 'exact' or 'reciprocal', got {self.scaling!r}")
        _require(self.scale_min in ("subnormal", "normal") and (self.scale == "e4m3" or self.scale_min == "subnormal"),
                 f"{self.family}: scale_min (subnormal or normal) applies to e4m3 scales, got {self.scale_min!r} with {self.scale}")
        _require(not self.element.adaptive and self.element.datapath in ("float", "integer"),
                 f"{self.family}: elements must be a static custom float or fixed point, got {self.element}")

    @property
    def bits(self) -> int:
        """Bits of one element (`bits_per_value` adds the scale's share)."""
        return self.element.bits

    @property
    def bits_per_value(self) -> float:
        """Element bits plus the block's scale spread over its values (4.25 for MXFP4); a scale per
        channel or tensor adds what the tensor's shape says, counted by the cost models."""
        return self.element.bits + (SCALE_BITS[self.scale] / self.block if self.block else 0.0)

    def storage_bits(self, count: int, row_length: int | None = None) -> int:
        """Element bits plus one scale per block (a block never spans two rows; a per-channel
        scale is one per row, a per-tensor one is one), plus NVFP4's FP32 tensor scale."""
        if count == 0:
            return 0
        length = max(row_length or count, 1)
        rows = -(-count // length)
        scales = 1 if self.block == 0 else rows if self.block is None else rows * -(-length // self.block)
        return self.element.bits * count + SCALE_BITS[self.scale] * scales + (32 if self.tensor_scale else 0)

    @property
    def scale_sharing(self) -> str:
        return "tensor" if self.block == 0 else "channel" if self.block is None else "block"

    @property
    def scale_significand_bits(self) -> int:
        """Significant bits of the stored scale: 1 for E8M0 (a power of two), 4 for E4M3, 24 for FP32."""
        return _SCALE_SIGNIFICAND_BITS[self.scale]

    @property
    def element_emax(self) -> int:
        """Exponent of the element format's largest value (OCP MX's emax_elem)."""
        return math.frexp(self.element.max_value)[1] - 1

    @property
    def qmax(self) -> float:
        """The largest element value: a block's scale maps its largest magnitude near it."""
        return self.element.max_value

    @property
    def max_value(self) -> float:
        return self.element.max_value * (2.0**127 if self.scale == "e8m0" else 448.0 if self.scale == "e4m3" else 3.4028234663852886e38)

    @property
    def min_positive(self) -> float:
        return self.element.min_positive * (2.0**-127 if self.scale == "e8m0" else 2.0**-9 if self.scale == "e4m3" else 2.0**-149)

    @property
    def num_values(self) -> int:
        return self.element.num_values

    @property
    def significand_bits(self) -> int:
        return self.element.significand_bits

    @property
    def within_float32_products(self) -> bool:
        return False

    @property
    def accumulator_error(self) -> str | None:
        return "a block-scaled format cannot hold a running sum"

    @property
    def datapath(self) -> str:
        return self.element.datapath

    @property
    def exponent_bits(self) -> int:
        return self.element.exponent_bits

    def gradient_window(self, static: Format) -> tuple[float, float]:
        """Every value's gradient passes (quantize_ste): a block's scale follows its largest magnitude."""
        return -math.inf, math.inf

    def block_values(self, scale: float) -> torch.Tensor:
        """Every value a block with this `scale` can hold."""
        return self.element.values() * scale

    def _enumerate(self) -> list[float]:
        raise ValueError(f"{self}: the values depend on each block's scale; use block_values(scale)")

    def values(self) -> torch.Tensor:
        raise ValueError(f"{self}: the values depend on each block's scale; use block_values(scale)")

    def __str__(self) -> str:
        opts = []
        if self.family == "mx":
            name = next(n for n, els in _MX_ELEMENTS.items() if self.element_name in els)
            head = f"{name}<{self.element_name}" if name in ("mxfp8", "mxfp6") else f"{name}<"
            opts = [f"block={self.block}"] if self.block != 32 else []
            opts += [f"rule={self.rule}"] if self.rule != "floor" else []
            return _with_options(head, opts)
        if self.family == "nvfp4":
            opts = [f"block={self.block}"] if self.block != 16 else []
            opts += ["tensor_scale=off"] if not self.tensor_scale else []
            opts += [f"scaling={self.scaling}"] if self.scaling != "exact" else []
            opts += [f"scale_min={self.scale_min}"] if self.scale_min != "subnormal" else []
            return _with_options("nvfp4<", opts)
        if self.family == "bfp":
            opts = [f"block={self.block}"] + ([f"rule={self.rule}"] if self.rule != "floor" else [])
            return _with_options(f"bfp<{self.element.bits}", opts)
        where = "channel" if self.block is None else "tensor" if self.block == 0 else f"group={self.block}"
        opts = [f"scale={self.scale}"] if self.scale != "fp32" else []
        opts += [f"rule={self.rule}"] if self.scale == "e8m0" and self.rule != "floor" else []
        opts += [f"scaling={self.scaling}"] if self.scaling != "exact" else []
        opts += [f"scale_min={self.scale_min}"] if self.scale_min != "subnormal" else []
        return _with_options(f"int{self.element.bits}<{where}", opts)

    @classmethod
    def parse(cls, family: str, args: _Args) -> ScaledFormat:
        """mxfp8<e4m3|e5m2>, mxfp6<e3m2|e2m3>, mxfp4, mxint8, nvfp4, bfp<B>, int<B><channel|tensor|group=G>, with options."""
        if family in _MX_ELEMENTS:
            return _parse_mx(family, args)
        if family == "nvfp4":
            args.expect(0, 0, "nvfp4 or nvfp4<options>")
            block = args.option_integer("block", 1, 65536) if "block" in args.options else 16
            tensor_scale = bool(args.choice("tensor_scale", _BOOL, True))
            scaling = args.choice("scaling", _SCALINGS, "exact")
            scale_min = args.choice("scale_min", _SCALE_MINS, "subnormal")
            args.done(["block", "tensor_scale", "scaling", "scale_min"])
            return cls("nvfp4", parse_format(_ELEMENTS["e2m1"]), block, "e4m3", "absmax", tensor_scale, scaling, "e2m1", scale_min)  # type: ignore[arg-type]
        if family == "bfp":
            args.expect(1, 1, "bfp<B,block=G>")
            bits = args.integer(0, "bits", 2, 24)
            block = args.option_integer("block", 1, 65536) if "block" in args.options else 16
            rule = str(args.choice("rule", {r: r for r in E8M0_RULES}, "floor"))
            args.done(["block", "rule"])
            return cls("bfp", FixedPoint(bits, bits - 2), block, "e8m0", rule, element_name=f"fixed<{bits},{bits - 2}>")
        return _parse_int(family, args)


_SCALE_MINS = {"subnormal": "subnormal", "normal": "normal"}
_SCALINGS = {"exact": "exact", "reciprocal": "reciprocal"}


def _with_options(head: str, opts: list[str]) -> str:
    """`name<positional` closed with its options, or the bare name."""
    name, _, positional = head.partition("<")
    inner = ",".join([p for p in [positional] if p] + opts)
    return f"{name}<{inner}>" if inner else name


def _parse_mx(family: str, args: _Args) -> ScaledFormat:
    choices = _MX_ELEMENTS[family]
    args.expect(0 if len(choices) == 1 else 1, 1 if len(choices) > 1 else 0,
                f"{family}<{'|'.join(choices)}>" if len(choices) > 1 else family)
    name = args.positional[0] if args.positional else choices[0]
    if name not in choices:
        raise ValueError(f"format {args.text!r}: {family} elements are {' or '.join(choices)}, got {name!r}")
    block = args.option_integer("block", 1, 65536) if "block" in args.options else 32
    rule = str(args.choice("rule", {r: r for r in E8M0_RULES}, "floor"))
    args.done(["block", "rule"])
    element = FixedPoint(8, 6) if name == "int8" else parse_format(_ELEMENTS[name])
    return ScaledFormat("mx", element, block, "e8m0", rule, element_name=name)


def _parse_int(family: str, args: _Args) -> ScaledFormat:
    bits = int(family[3:])
    args.expect(0, 1, f"{family}<channel>, {family}<tensor> or {family}<group=G>")
    where = args.positional[0] if args.positional else None
    if where not in (None, "channel", "tensor") or (where is None) == ("group" not in args.options):
        raise ValueError(f"format {args.text!r}: say one of {family}<channel>, {family}<tensor> or {family}<group=G> (a scaled "
                         f"integer), or {family} with key=value options only (fixed<{bits},0>)")
    block = None if where == "channel" else 0 if where == "tensor" else args.option_integer("group", 1, 65536)
    scale = args.choice("scale", {k: k for k in SCALE_BITS}, "fp32")
    rule = str(args.choice("rule", {r: r for r in E8M0_RULES}, "floor")) if scale == "e8m0" else "absmax"
    scaling = args.choice("scaling", _SCALINGS, "exact")
    scale_min = args.choice("scale_min", _SCALE_MINS, "subnormal") if scale == "e4m3" else "subnormal"
    args.done(["group", "scale", "rule", "scaling", "scale_min"])
    return ScaledFormat("int", FixedPoint(bits, 0), block, scale, rule, False, scaling, f"int{bits}", scale_min)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- float32
@dataclass(frozen=True, repr=False)
class Float32(Format):
    """IEEE float32: quantizing a float32 tensor is the identity."""

    kind: ClassVar[str] = "float32"

    @property
    def bits(self) -> int:
        return 32

    @property
    def max_value(self) -> float:
        return float(torch.finfo(torch.float32).max)

    @property
    def min_positive(self) -> float:
        return math.ldexp(1.0, _F32_MIN_SUBNORMAL_EXP)

    @property
    def num_values(self) -> int:
        return 2 * (2**31 - 2**23) - 1

    @property
    def significand_bits(self) -> int:
        return 24

    @property
    def exponent_bits(self) -> int:
        return 8

    @property
    def within_float32_products(self) -> bool:
        return False

    @property
    def is_identity(self) -> bool:
        return True

    def gradient_window(self, static: Format) -> tuple[float, float]:
        """float32 is the identity: every gradient passes."""
        return -math.inf, math.inf

    def _enumerate(self) -> list[float]:  # pragma: no cover - guarded by num_values
        raise AssertionError("float32 is never enumerated")

    def __str__(self) -> str:
        return "float32"

    @classmethod
    def parse(cls, family: str, args: _Args) -> Float32:
        """float32 (no arguments)."""
        args.expect(0, 0, "no arguments")
        args.done([])
        return cls()


def _finite_absmax(x: torch.Tensor) -> float:
    """Largest finite |x| (0.0 for an empty or all-non-finite tensor)."""
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x.detach())
    top = max(abs(float(lo)), abs(float(hi)))
    if math.isfinite(top):
        return top
    finite = x.detach()[torch.isfinite(x.detach())]
    return float(finite.abs().max()) if finite.numel() else 0.0


# --------------------------------------------------------------------------------------- parsing
ALIASES: dict[str, str] = {
    "fp32": "float32",
    "fp16": "float<5,10>",
    "half": "float<5,10>",
    "bf16": "float<8,7>",
    "bfloat16": "float<8,7>",
    "e5m2": "float<5,2>",
    "e4m3fn": "float<4,3,special=fn>",
    "int4": "fixed<4,0>",
    "int8": "fixed<8,0>",
    "int16": "fixed<16,0>",
    "int32": "fixed<32,0>",
    "uint4": "ufixed<4,0>",
    "uint8": "ufixed<8,0>",
    "uint16": "ufixed<16,0>",
}
_FORMAT_RE = re.compile(r"^([a-z0-9_]+)(?:<(.*)>)?$")
_BOOL = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
_MAX_TEXT = 200


@dataclass
class _Args:
    """A format string's arguments: positional ones, then key=value options (each at most once)."""

    text: str
    positional: list[str]
    options: dict[str, str]

    @classmethod
    def split(cls, text: str, args: str | None) -> _Args:
        positional: list[str] = []
        options: dict[str, str] = {}
        for part in args.split(",") if args is not None else []:
            if not part:
                raise ValueError(f"format {text!r}: empty argument; expected {_grammar()}")
            if "=" in part:
                key, value = part.split("=", 1)
                if key in options:
                    raise ValueError(f"format {text!r}: option {key!r} is given twice ({options[key]!r} and {value!r})")
                options[key] = value
            elif options:
                raise ValueError(f"format {text!r}: positional argument {part!r} after key=value options")
            else:
                positional.append(part)
        return cls(text, positional, options)

    def expect(self, lo: int, hi: int, usage: str) -> None:
        if not lo <= len(self.positional) <= hi:
            raise ValueError(f"format {self.text!r}: expected {usage}, got {len(self.positional)} argument(s)")

    def _int(self, what: str, value: str, lo: int, hi: int) -> int:
        if not re.fullmatch(r"[+-]?\d{1,12}", value):
            raise ValueError(f"format {self.text!r}: {what} must be an integer, got {value[:20]!r}")
        n = int(value)
        if not lo <= n <= hi:
            raise ValueError(f"format {self.text!r}: {what} must be between {lo} and {hi}, got {n}")
        return n

    def integer(self, index: int, what: str, lo: int, hi: int) -> int:
        """Positional argument `index` as an integer in [lo, hi] (checked before any use)."""
        return self._int(what, self.positional[index], lo, hi)

    def option_integer(self, key: str, lo: int, hi: int) -> int:
        return self._int(key, self.options.pop(key), lo, hi)

    def choice(self, key: str, allowed: Mapping[str, object], default: object) -> object:
        if key not in self.options:
            return default
        value = self.options.pop(key)
        if value not in allowed:
            raise ValueError(f"format {self.text!r}: {key}={value!r} is not allowed; use one of {', '.join(allowed)}")
        return allowed[value]

    def done(self, known: list[str]) -> None:
        """No options may be left over."""
        if self.options:
            bad = next(iter(self.options))
            raise ValueError(
                f"format {self.text!r}: unknown option {bad!r}{did_you_mean(bad, known)}"
                + (f"; options are {', '.join(known)}" if known else "; this format takes no options")
            )


def _families() -> dict[str, type[Format]]:
    scaled = {name: ScaledFormat for name in (*_MX_ELEMENTS, "nvfp4", "bfp", *(f"int{b}" for b in (2, 3, 4, 5, 6, 7, 8, 16)))}
    return {"fixed": FixedPoint, "ufixed": FixedPoint, "float": MiniFloat, "pow2": PowerOfTwo, "binary": Binary, "float32": Float32,
            **scaled}


def _grammar() -> str:
    return ("float32 | fixed<B,F|auto> | ufixed<B,F|auto> | float<E,M[,bias]> | pow2<B[,max_exp]> | "
            "binary | binary<mean|scale> | mxfp8<e4m3|e5m2> | mxfp6<e3m2|e2m3> | mxfp4 | mxint8 | nvfp4 | bfp<B> | "
            "intB<channel|tensor|group=G>, or an alias: " + ", ".join(sorted(ALIASES)))


def _expand_alias(text: str, family: str, args: str | None) -> tuple[str, str | None]:
    """An alias (int8, e4m3fn, ...) as its family and arguments; options after an alias
    (`int8<overflow=wrap>`) are added to the alias's own."""
    target = _FORMAT_RE.match(ALIASES[family])
    assert target is not None
    extra = _Args.split(text, args)
    if extra.positional:
        raise ValueError(f"format {text!r}: the alias {family!r} ({ALIASES[family]}) takes only key=value options")
    own = target.group(2)
    merged = ",".join(p for p in (own, args) if p)
    return target.group(1), merged or None


def parse_format(text: str) -> Format:
    """Parse a format string (docs/formats.md); `str(parse_format(s))` gives the canonical form."""
    if isinstance(text, Format):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a format must be a string or a Format, got {type(text).__name__}")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"format string of {len(text)} characters is too long (at most {_MAX_TEXT}): {text[:40]!r}...")
    norm = re.sub(r"\s+", "", text).lower()
    match = _FORMAT_RE.match(norm)
    if not match:
        raise ValueError(f"cannot parse format {text!r}; expected {_grammar()}")
    family, args = match.group(1), match.group(2)
    scaled_int = re.fullmatch(r"int\d+", family) is not None and any(not p.startswith("overflow=") for p in (args or "").split(",") if p)
    if family in ALIASES and not scaled_int:
        family, args = _expand_alias(text, family, args)
    families = _families()
    if family not in families:
        known = list(families) + list(ALIASES)
        raise ValueError(f"unknown format name {family!r} in {text!r}{did_you_mean(family, known, cutoff=0.5)}; expected {_grammar()}")
    return families[family].parse(family, _Args.split(text, args))  # type: ignore[attr-defined]


def as_format(fmt: Format | str) -> Format:
    """A Format from a Format or a format string."""
    return fmt if isinstance(fmt, Format) else parse_format(fmt)
