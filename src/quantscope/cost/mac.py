"""Area, delay and energy of one multiply-accumulate unit (Hill et al.), from gate counts fitted to
Horowitz's 45 nm operator table; Hill's own numbers are held-out checks, never inputs.

Structure, with p the significand width (M + 1 for float<E,M>, B for B-bit fixed point) and w a
format's width in bits:

    integer multiply  c_mul2 p^2 + c_mul1 p                        (partial products + tree, final adder)
    float multiply    c_fmul2 p^2 + c_mul1 p + c_norm p log2 p + c_exp E + c_fctl
    integer add       c_add w
    float add         c_shift p log2 p + c_add p + c_exp E + c_ctl  (align, add, normalize, control)
    MAC unit          multiply + the accumulator's adder + c_reg x (register bits: both operands
                      and the accumulator), the accumulator being the plan's, else twice the
                      operand width for fixed point and the operand format for floats

Every coefficient is a prior gate count in NAND2 equivalents (`GATE_PRIORS`, from standard-cell
areas) times one fitted cost per gate, times a per-coefficient factor that the fit may move at most
4x either way (a log-normal prior of sigma ln 2 pulls it towards 1): so no term can vanish, and the
control constants and registers bound what a narrow unit can save. Energy and area are fitted
separately, each to Horowitz's eight add/multiply points (int 8/32 bits, float 16/32 bits); the
registers appear in no Horowitz point, so their coefficient is the prior's. Delay has no fitted
parameter: it counts logic levels on the critical path (`logic_levels`). `fit()` recomputes
everything; the shipped result, with its residuals and the held-out errors on Hill's four AlexNet
numbers, is `data/hill_mac_fit.yaml` (regenerate with `python -m quantscope.cost.mac`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import yaml
from torch import nn

from ..errors import UnsupportedFormat
from ..files import write_atomic
from ..formats import Float32, Format, ScaledFormat, as_format
from ..plan import PrecisionPlan
from ..published import HILL_POINTS
from .layers import DATA_DIR, cost_layers, load_table

__all__ = ["FIT_FILE", "COEFFS", "GATE_PRIORS", "fit", "logic_levels", "MacModel", "MacPlanCost", "mac_plan_cost", "shipped"]

FIT_FILE = DATA_DIR / "hill_mac_fit.yaml"

#: Prior cost of each term in NAND2 gate equivalents (GE), from the NanGate 45 nm open cell
#: library's areas (NAND2 0.80 um^2, AND2 1.06, XOR2 1.60, MUX2 1.86, full adder 4.26, D flip-flop 4.52)
GATE_PRIORS: dict[str, float] = {
    "mul2": 6.6,    # per partial-product bit: an AND gate and a full adder of the reduction tree
    "mul1": 10.6,   # per significand bit: two bits of the final carry-propagate adder
    "fmul2": 6.6,   # the same array inside a float multiplier
    "add": 5.3,     # per adder bit: a full adder
    "norm": 2.3,    # per p log2 p: normalization and rounding multiplexers of a float multiplier
    "shift": 5.0,   # per p log2 p: alignment and normalization barrel shifters (two MUX2 levels)
    "exp": 12.0,    # per exponent bit: two exponent adders/comparators
    "fctl": 60.0,   # per float multiplier: sign, special values, rounding control
    "ctl": 120.0,   # per float adder: swap, sticky bit, leading-zero count control, special values
    "reg": 5.67,    # per register bit: a D flip-flop
}
COEFFS = tuple(GATE_PRIORS)
PRIOR_SIGMA = math.log(2.0)   # a factor of 2 is one standard deviation of the prior
PRIOR_LIMIT = math.log(4.0)   # no coefficient moves more than 4x from its prior
DATA_SIGMA = 0.1              # Horowitz's values are rounded to about 10%
REGISTER_LEVELS = 4.0         # clock-to-output plus setup time of the unit's registers, in logic levels


def _shape(fmt: Format) -> tuple[str, int, int]:
    """(kind, p, E) of a format for the MAC model: p the multiplier width (the significand for
    floats, the whole word for fixed point), E the exponent bits."""
    if fmt.scale_sharing != "none":
        raise UnsupportedFormat(f"{fmt} is block-scaled: its MAC is priced by _block_features, not as one operand shape")
    if fmt.datapath == "float":
        return "float", fmt.significand_bits, fmt.exponent_bits
    if fmt.datapath == "integer":
        return "fixed", fmt.bits, 0
    raise UnsupportedFormat(f"the MAC model covers fixed point and floats, not {fmt} ({fmt.datapath} datapath)")


def _features(op: str, p: int, e: int) -> np.ndarray:
    """Feature vector of one operator (order of COEFFS)."""
    plog = p * math.log2(p) if p > 1 else 0.0
    f = dict.fromkeys(COEFFS, 0.0)
    if op == "int_add":
        f["add"] = p
    elif op == "int_mult":
        f["mul2"], f["mul1"] = p * p, p
    elif op == "float_mult":
        f["fmul2"], f["mul1"], f["norm"], f["exp"], f["fctl"] = p * p, p, plog, e, 1.0
    elif op == "float_add":
        f["shift"], f["add"], f["exp"], f["ctl"] = plog, p, e, 1.0
    elif op == "register":
        f["reg"] = p
    else:
        raise ValueError(op)
    return np.array([f[c] for c in COEFFS])


_HOROWITZ_SHAPES = {  # bits -> (p, E) of Horowitz's operand formats
    ("int", 8): (8, 0), ("int", 32): (32, 0), ("float", 16): (11, 5), ("float", 32): (24, 8),
}


def _calibration(tech: dict[str, Any], metric: str) -> list[tuple[str, np.ndarray, float]]:
    """(label, features, published value) rows for energy_pj or area_um2."""
    rows = []
    for op, by_bits in tech[metric].items():
        for bits, value in by_bits.items():
            p, e = _HOROWITZ_SHAPES[(op.split("_")[0], int(bits))]
            rows.append((f"{op} {bits}b", _features(op, p, e), float(value)))
    return rows


def _adder(shape: tuple[str, int, int]) -> np.ndarray:
    kind, p, e = shape
    return _features("int_add", p, 0) if kind == "fixed" else _features("float_add", p, e)


def _multiplier(fmt: Format) -> np.ndarray:
    kind, p, e = _shape(fmt)
    return _features("int_mult" if kind == "fixed" else "float_mult", p, e)


def _accumulator_shape(fmt: Format, accumulator: Format | None) -> tuple[str, int, int]:
    """The adder's shape: the plan's accumulator, else a fixed-point sum twice the operand width or
    a float adder of the operand format."""
    if accumulator is not None:
        return _shape(accumulator)
    kind, p, e = _shape(fmt)
    return ("fixed", 2 * p, 0) if kind == "fixed" else (kind, p, e)


def _width(shape: tuple[str, int, int]) -> int:
    kind, p, e = shape
    return p + e if kind == "float" else p


def block_tree_width(fmt: ScaledFormat) -> int:
    """Bits of a block's adder tree: an element product as a fixed-point number (twice the
    element's span of binary places, from its smallest step to its largest value) plus log2 of
    the block length."""
    el = fmt.element
    span = math.floor(math.log2(el.max_value)) - math.floor(math.log2(el.min_positive)) + 1
    return 2 * span + math.ceil(math.log2(fmt.block or 1))


def _block_features(fmt: ScaledFormat, accumulator: Format | None, scale_step: bool = True) -> np.ndarray:
    """Features of a block-scaled MAC, per element (OCP MX v1.0's dot product; the structure of
    Rouhani et al. 2023, Section 3): the element multiplier, one adder of the block's tree
    (`block_tree_width`), the element operands' registers, and 1/G of the block's scale step (an
    8-bit exponent adder for E8M0 scales, a multiplier of the scales' significands otherwise), of
    the accumulator's adder and register (FP32 by default, as the MX specification accumulates)."""
    g = max(fmt.block or 1, 1)
    tree = _features("int_add", block_tree_width(fmt), 0)
    scale_p = fmt.scale_significand_bits
    scale = _features("int_add", 8, 0) + (_features("int_mult", scale_p, 0) if scale_p > 1 else 0.0)
    acc = _shape(accumulator if accumulator is not None else Float32())
    per_block = (scale if scale_step else 0.0) + _adder(acc) + _features("register", _width(acc), 0)
    return _multiplier(fmt.element) + tree + _features("register", 2 * fmt.element.bits, 0) + per_block / g


def _mac_features(fmt: Format, accumulator: Format | None) -> np.ndarray:
    """Features of a MAC unit: the operands' multiplier, the accumulator's adder, and registers for
    both operands and the accumulator; a block-scaled format's as `_block_features` says."""
    if fmt.scale_sharing != "none":
        if fmt.scale_sharing != "block":
            raise UnsupportedFormat(f"the MAC model prices blocks, not a per-channel or per-tensor scale ({fmt})")
        return _block_features(cast(ScaledFormat, fmt), accumulator)
    acc = _accumulator_shape(fmt, accumulator)
    return _multiplier(fmt) + _adder(acc) + _features("register", 2 * _width(_shape(fmt)) + _width(acc), 0)


def _log2(x: float) -> float:
    return math.log2(x) if x > 1 else 0.0


def _tree_levels(rows: int) -> int:
    """Full-adder levels that reduce `rows` partial products to two (Dadda's sequence 2, 3, 4, 6, 9, ...)."""
    levels, height = 0, 2
    while height < rows:
        height, levels = math.floor(1.5 * height), levels + 1
    return levels


def _multiplier_levels(p: int) -> float:
    """Partial products (1 level), the reduction tree (2 levels per full adder) and a 2p-bit
    parallel-prefix adder (2 log2 2p + 1)."""
    return 1 + 2 * _tree_levels(p) + 2 * _log2(2 * p) + 1


def _adder_levels(shape: tuple[str, int, int]) -> float:
    """A parallel-prefix integer adder (2 log2 w + 1); a float adder adds exponent compare,
    alignment shift, leading-zero count and normalization shift, and rounding."""
    kind, p, e = shape
    if kind == "fixed":
        return 2 * _log2(p) + 1
    return (_log2(e) + 2) + _log2(p) + (2 * _log2(p) + 1) + 2 * _log2(p) + (_log2(p) + 1)


def logic_levels(fmt: Format | str, accumulator: Format | str | None = None) -> float:
    """Logic levels on a MAC unit's critical path: register overhead, multiplier, accumulator's
    adder (a block-scaled unit: the element multiplier and one adder of its block tree, the tree
    and the accumulation across blocks being pipelined)."""
    fmt = as_format(fmt)
    if fmt.scale_sharing != "none":
        scaled = cast(ScaledFormat, fmt)
        return REGISTER_LEVELS + _multiplier_levels(_shape(scaled.element)[1]) + _adder_levels(("fixed", block_tree_width(scaled), 0))
    acc = _accumulator_shape(fmt, None if accumulator is None else as_format(accumulator))
    return REGISTER_LEVELS + _multiplier_levels(_shape(fmt)[1]) + _adder_levels(acc)


def _fit_map(rows: list[tuple[str, np.ndarray, float]]) -> tuple[float, np.ndarray]:
    """Cost per gate equivalent and per-coefficient factors (the maximum a posteriori estimate:
    log errors of the rows over DATA_SIGMA, log factors over PRIOR_SIGMA, factors within PRIOR_LIMIT)."""
    from scipy.optimize import least_squares

    prior = np.array([GATE_PRIORS[c] for c in COEFFS])
    a = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])

    def residuals(theta: np.ndarray) -> np.ndarray:
        c = np.exp(theta[0] + theta[1:]) * prior
        return np.concatenate([(np.log(a @ c) - np.log(t)) / DATA_SIGMA, theta[1:] / PRIOR_SIGMA])

    n = len(COEFFS)
    start = np.concatenate([[math.log(float(np.median(t / (a @ prior))))], np.zeros(n)])
    bounds = (np.concatenate([[-60.0], np.full(n, -PRIOR_LIMIT)]), np.concatenate([[30.0], np.full(n, PRIOR_LIMIT)]))
    theta = least_squares(residuals, start, bounds=bounds, method="trf").x
    return float(math.exp(theta[0])), np.exp(theta[1:])


def fit(technology: str = "horowitz45") -> dict[str, Any]:
    """Fit energy and area coefficients to a technology's operator table; returns the content of
    hill_mac_fit.yaml, with Hill's published MAC ratios as held-out checks."""
    tech = load_table(technology)
    out: dict[str, Any] = {
        "source": f"gate-count priors (NanGate 45 nm cells) fitted to {tech['source']}; Hill et al. Section 4.2 held out",
        "coefficients": {}, "per_gate": {}, "prior_factors": {}, "residuals": [], "held_out": [],
    }
    for metric in ("energy_pj", "area_um2"):
        rows = _calibration(tech, metric)
        per_gate, factors = _fit_map(rows)
        c = per_gate * factors * np.array([GATE_PRIORS[k] for k in COEFFS])
        out["per_gate"][metric] = per_gate
        out["prior_factors"][metric] = {k: round(float(v), 4) for k, v in zip(COEFFS, factors)}
        out["coefficients"][metric] = {k: float(v) for k, v in zip(COEFFS, c)}
        for label, row, value in rows:
            m = float(row @ c)
            out["residuals"].append({"metric": metric, "point": label, "published": value, "model": round(m, 4), "rel_error": round(m / value - 1, 4)})
    model = MacModel(out["coefficients"])
    for h in HILL_POINTS:
        for key, value in (("speedup", model.speedup(h["format"])), ("energy_saving", model.energy_saving(h["format"]))):
            out["held_out"].append({"metric": key, "point": f"Hill {h['format']}", "published": h[key], "model": round(value, 4),
                                    "rel_error": round(value / h[key] - 1, 4)})
    return out


@dataclass(frozen=True)
class MacModel:
    """A fitted MAC model: `energy`, `area`, `delay` of one MAC unit, and derived ratios."""

    coefficients: dict[str, dict[str, float]]

    @classmethod
    def load(cls, path: str | Path = FIT_FILE) -> MacModel:
        """The shipped fit (or a user's file of the same shape)."""
        return cls(yaml.safe_load(Path(path).read_text())["coefficients"])

    def _dot(self, metric: str, features: np.ndarray) -> float:
        return float(features @ np.array([self.coefficients[metric][k] for k in COEFFS]))

    def _value(self, metric: str, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        return self._dot(metric, _mac_features(as_format(fmt), None if accumulator is None else as_format(accumulator)))

    def energy(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Energy of one MAC in pJ (45 nm scale); the adder is the accumulator's when given."""
        return self._value("energy_pj", fmt, accumulator)

    def area(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Area of one MAC unit in um^2 (45 nm scale); the adder is the accumulator's when given."""
        return self._value("area_um2", fmt, accumulator)

    def scale_overhead(self, fmt: Format | str, base: Format | str | None = None) -> tuple[float, float]:
        """(energy, area) factors that `fmt`'s block scale step adds to a MAC of `base` (default:
        `fmt`'s own block MAC without its step; a wider unscaled operand's MAC where that sets the unit)."""
        f = as_format(fmt)
        if f.scale_sharing != "block":
            raise UnsupportedFormat(f"{f} has no block scale step")
        scaled = cast(ScaledFormat, f)
        without = _block_features(scaled, None, scale_step=False)
        step = _block_features(scaled, None) - without
        unit = without if base is None else _mac_features(as_format(base), None)
        energy, area = (1.0 + self._dot(m, step) / self._dot(m, unit) for m in ("energy_pj", "area_um2"))
        return energy, area

    def delay(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Critical-path delay relative to a float32 MAC (`logic_levels` over float32's)."""
        return logic_levels(fmt, accumulator) / logic_levels(Float32())

    def speedup(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Throughput at fixed area over float32: (A32/A) x (D32/D)."""
        return (self.area(Float32()) / self.area(fmt, accumulator)) * (1.0 / self.delay(fmt, accumulator))

    def energy_saving(self, fmt: Format | str) -> float:
        """Energy of a float32 MAC over this format's."""
        return self.energy(Float32()) / self.energy(fmt)


@functools.lru_cache(maxsize=1)
def shipped() -> MacModel:
    """The shipped fit, read once."""
    return MacModel.load()


@dataclass(frozen=True)
class MacPlanCost:
    """A network's MAC-weighted speedup at fixed area and energy saving over float32 (Hill)."""

    speedup: float
    energy_saving: float


def mac_plan_cost(model: nn.Module, plan: PrecisionPlan, example_input: torch.Tensor, mac: MacModel | None = None) -> MacPlanCost:
    """Hill's MAC ratios for a whole network: each op's MACs run on a unit whose multiplier takes
    the wider of its two operand formats (weights or rhs, and data) and whose adder is the op's
    accumulator format (when the plan sets one), so time ~ sum MACs x area x delay and energy ~
    sum MACs x energy, both against float32 units. Raises ValueError where that wider format is
    one the model does not cover (power-of-two, binary)."""
    mac = mac or shipped()
    rows = []
    for c in cost_layers(model, plan, example_input):
        if c.info.macs:
            second = c.precision.weights if c.info.has_weight else c.precision.rhs_format
            rows.append((c.info.macs, max((second, c.precision.data), key=lambda f: f.bits), c.precision.accumulator))
    f32 = Float32()
    total = sum(n for n, _, _ in rows)
    time = sum(n * mac.area(f, a) * mac.delay(f, a) for n, f, a in rows)
    energy = sum(n * mac.energy(f, a) for n, f, a in rows)
    return MacPlanCost(total * mac.area(f32) * mac.delay(f32) / time, total * mac.energy(f32) / energy)


def main() -> None:
    """Refit and write data/hill_mac_fit.yaml, printing the residuals."""
    result = fit()
    write_atomic(FIT_FILE, "# Generated by `python -m quantscope.cost.mac`; see quantscope/cost/mac.py.\n" + yaml.safe_dump(result, sort_keys=False))
    for kind in ("residuals", "held_out"):
        print(f"{kind}:")
        for r in result[kind]:
            print(f"  {r['metric']:14s} {r['point']:22s} published {r['published']:9.3f} model {r['model']:9.3f} ({100 * r['rel_error']:+.1f}%)")


if __name__ == "__main__":
    main()
