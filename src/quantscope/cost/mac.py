"""Area, delay and energy of one multiply-accumulate unit (Hill et al.), fitted to published data.

Analytical form, with p the significand width (M + 1 for float<E,M>, B for B-bit fixed point):

    integer multiply  c_mul2 p^2 + c_mul1 p                        (partial-product array)
    fixed MAC         integer multiply(B) + c_add 2B               (accumulator twice the operands,
                                                                    or c_add A for an A-bit accumulator)
    float multiply    c_fmul2 p^2 + c_mul1 p + c_norm p log2 p + c_exp E   (array, round, exponent)
    float add         c_shift p log2 p + c_add p + c_exp E + c_ctl (align, add, normalize, control)
    float MAC         float multiply + float add (accumulating in the same format, or in the
                      plan's accumulator format when it sets one)
    delay             1 + k (log2 width - 5), width = p + E for float, 2B for fixed point
                      (relative to float32, whose width is 32)

All coefficients are non-negative (so every quantity grows with every bit width) and fitted in
log space: energy (pJ) to Horowitz's 45 nm integer and float add/multiply energies and Hill et
al.'s energy savings of float<6,7> (3.4x) and float<6,8> (3.0x) over float32; area (um^2) and the
delay slope k together to Horowitz's areas and Hill's speedups at fixed area (7.2x, 5.7x). Fixed
point uses the same delay slope (no published delay point). `fit()` recomputes everything; the shipped result, with its residuals, is
`data/hill_mac_fit.yaml` (regenerate with `python -m quantscope.cost.mac`).
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

__all__ = ["FIT_FILE", "COEFFS", "fit", "MacModel", "MacPlanCost", "mac_plan_cost"]

FIT_FILE = DATA_DIR / "hill_mac_fit.yaml"
COEFFS = ("mul2", "mul1", "fmul2", "add", "norm", "shift", "exp", "ctl")



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
    """Feature vector of one unit (order of COEFFS)."""
    plog = p * math.log2(p) if p > 1 else 0.0
    f = dict.fromkeys(COEFFS, 0.0)
    if op == "int_add":
        f["add"] = p
    elif op == "int_mult":
        f["mul2"], f["mul1"] = p * p, p
    elif op == "fixed_mac":
        f["mul2"], f["mul1"], f["add"] = p * p, p, 2 * p
    elif op == "float_mult":
        f["fmul2"], f["mul1"], f["norm"], f["exp"] = p * p, p, plog, e
    elif op == "float_add":
        f["shift"], f["add"], f["exp"], f["ctl"] = plog, p, e, 1.0
    elif op == "float_mac":
        g, h = _features("float_mult", p, e), _features("float_add", p, e)
        return g + h
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


def _adder(accumulator: Format) -> np.ndarray:
    kind, p, e = _shape(accumulator)
    return _features("int_add", p, 0) if kind == "fixed" else _features("float_add", p, e)


def _multiplier(fmt: Format) -> np.ndarray:
    kind, p, e = _shape(fmt)
    return _features("int_mult" if kind == "fixed" else "float_mult", p, e)


def block_tree_width(fmt: ScaledFormat) -> int:
    """Bits of a block's adder tree: an element product as a fixed-point number (twice the
    element's span of binary places, from its smallest step to its largest value) plus log2 of
    the block length."""
    el = fmt.element
    span = math.floor(math.log2(el.max_value)) - math.floor(math.log2(el.min_positive)) + 1
    return 2 * span + math.ceil(math.log2(fmt.block or 1))


def _block_features(fmt: ScaledFormat, accumulator: Format | None) -> np.ndarray:
    """Features of a block-scaled MAC, per element (OCP MX v1.0's dot product; the structure of
    Rouhani et al. 2023, Section 3): the element multiplier, one adder of the block's tree
    (`block_tree_width`), and 1/G of the block's scale step (an 8-bit exponent adder for E8M0
    scales, a multiplier of the scales' significands otherwise) and of the accumulator's adder
    (FP32 by default, as the MX specification accumulates)."""
    tree = _features("int_add", block_tree_width(fmt), 0)
    scale_p = fmt.scale_significand_bits
    scale = _features("int_add", 8, 0) + (_features("int_mult", scale_p, 0) if scale_p > 1 else 0.0)
    per_block = scale + _adder(accumulator if accumulator is not None else Float32())
    return _multiplier(fmt.element) + tree + per_block / max(fmt.block or 1, 1)


def _mac_features(fmt: Format, accumulator: Format | None) -> np.ndarray:
    """Features of a MAC unit: the operands' multiplier and the accumulator's adder (by default
    a fixed-point adder twice the operand width, or a float adder of the operand format); a
    block-scaled format's as `_block_features` says."""
    if fmt.scale_sharing != "none":
        if fmt.scale_sharing != "block":
            raise UnsupportedFormat(f"the MAC model prices blocks, not a per-channel or per-tensor scale ({fmt})")
        return _block_features(cast(ScaledFormat, fmt), accumulator)
    kind, p, _ = _shape(fmt)
    if accumulator is not None:
        add = _adder(accumulator)
    else:  # a fixed-point sum twice the operand width, or a float adder of the operand format
        add = _features("int_add", 2 * p, 0) if kind == "fixed" else _adder(fmt)
    return _multiplier(fmt) + add


def _relative_delay(k: float, width: float) -> float:
    return 1.0 + k * (math.log2(width) - 5.0)


def _width(fmt: Format) -> float:
    if fmt.scale_sharing != "none":  # the element datapath sets the cycle; the tree is pipelined
        fmt = cast(ScaledFormat, fmt).element
    kind, p, e = _shape(fmt)
    return p + e if kind == "float" else 2 * p


def _fit_log(rows: list[tuple[str, np.ndarray, float]], extra, n_extra: int) -> np.ndarray:
    """Positive parameters (coefficients, then `n_extra` more) minimizing squared log errors of
    the rows plus the residuals `extra(params)` returns."""
    from scipy.optimize import least_squares

    a = np.array([r[1] for r in rows])
    t = np.array([r[2] for r in rows])

    def residuals(theta: np.ndarray) -> np.ndarray:
        c = np.exp(np.clip(theta, -60, 30))
        return np.concatenate([np.log(a @ c[: a.shape[1]]) - np.log(t), extra(c)])

    start = np.concatenate([np.log(np.maximum(np.linalg.lstsq(a, t, rcond=None)[0], 1e-3)), np.full(n_extra, -2.0)])
    return np.exp(np.clip(least_squares(residuals, start, method="trf").x, -60, 30))


def fit(technology: str = "horowitz45") -> dict[str, Any]:
    """Fit energy, area and delay coefficients; returns the content of hill_mac_fit.yaml."""
    tech = load_table(technology)
    fp32 = _features("float_mac", 24, 8)
    hill = [(as_format(h["format"]), h) for h in HILL_POINTS]
    feats = {str(f): _features("float_mac", f.significand_bits, f.exponent_bits) for f, _ in hill}

    def energy_extra(c: np.ndarray) -> np.ndarray:
        return np.array([math.log((fp32 @ c) / (feats[str(f)] @ c)) - math.log(h["energy_saving"]) for f, h in hill])

    def area_delay_extra(c: np.ndarray) -> np.ndarray:
        area, k = c[:-1], c[-1]
        out = []
        for f, h in hill:
            speed = (fp32 @ area) / (feats[str(f)] @ area) / _relative_delay(k, _width(f))
            out.append(math.log(max(speed, 1e-9)) - math.log(h["speedup"]))
        return np.array(out)

    energy = _fit_log(_calibration(tech, "energy_pj"), energy_extra, 0)
    area_k = _fit_log(_calibration(tech, "area_um2"), area_delay_extra, 1)
    out: dict[str, Any] = {
        "source": f"fit of quantscope.cost.mac to {tech['source']} and Hill et al. Section 4.2",
        "coefficients": {"energy_pj": {k: float(v) for k, v in zip(COEFFS, energy)},
                         "area_um2": {k: float(v) for k, v in zip(COEFFS, area_k[:-1])}},
        "delay": {"k": float(area_k[-1])},
        "residuals": [],
    }
    model = MacModel(out["coefficients"], out["delay"])
    for metric in ("energy_pj", "area_um2"):
        c = np.array([out["coefficients"][metric][k] for k in COEFFS])
        for label, row, value in _calibration(tech, metric):
            m = float(row @ c)
            out["residuals"].append({"metric": metric, "point": label, "published": value, "model": round(m, 4), "rel_error": round(m / value - 1, 4)})
    for f, h in hill:
        for key, value in (("speedup", model.speedup(f)), ("energy_saving", model.energy_saving(f))):
            out["residuals"].append({"metric": key, "point": f"Hill {h['format']}", "published": h[key], "model": round(value, 4),
                                     "rel_error": round(value / h[key] - 1, 4)})
    return out


@dataclass(frozen=True)
class MacModel:
    """A fitted MAC model: `energy`, `area`, `delay` of one MAC unit, and derived ratios."""

    coefficients: dict[str, dict[str, float]]
    delay_coefficients: dict[str, float]

    @classmethod
    def load(cls, path: str | Path = FIT_FILE) -> MacModel:
        """The shipped fit (or a user's file of the same shape)."""
        data = yaml.safe_load(Path(path).read_text())
        return cls(data["coefficients"], data["delay"])

    def _value(self, metric: str, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        c = np.array([self.coefficients[metric][k] for k in COEFFS])
        return float(_mac_features(as_format(fmt), None if accumulator is None else as_format(accumulator)) @ c)

    def energy(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Energy of one MAC in pJ (45 nm scale); the adder is the accumulator's when given."""
        return self._value("energy_pj", fmt, accumulator)

    def area(self, fmt: Format | str, accumulator: Format | str | None = None) -> float:
        """Area of one MAC unit in um^2 (45 nm scale); the adder is the accumulator's when given."""
        return self._value("area_um2", fmt, accumulator)

    def delay(self, fmt: Format | str) -> float:
        """Critical-path delay relative to a float32 MAC."""
        return _relative_delay(self.delay_coefficients["k"], _width(as_format(fmt)))

    def speedup(self, fmt: Format | str) -> float:
        """Throughput at fixed area over float32: (A32/A) x (D32/D)."""
        return (self.area(Float32()) / self.area(fmt)) * (self.delay(Float32()) / self.delay(fmt))

    def energy_saving(self, fmt: Format | str) -> float:
        """Energy of a float32 MAC over this format's."""
        return self.energy(Float32()) / self.energy(fmt)


@functools.lru_cache(maxsize=1)
def _shipped() -> MacModel:
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
    mac = mac or _shipped()
    rows = []
    for c in cost_layers(model, plan, example_input):
        if c.info.macs:
            second = c.precision.weights if c.info.has_weight else c.precision.rhs_format
            rows.append((c.info.macs, max((second, c.precision.data), key=lambda f: f.bits), c.precision.accumulator))
    f32 = Float32()
    total = sum(n for n, _, _ in rows)
    time = sum(n * mac.area(f, a) * mac.delay(f) for n, f, a in rows)
    energy = sum(n * mac.energy(f, a) for n, f, a in rows)
    return MacPlanCost(total * mac.area(f32) * mac.delay(f32) / time, total * mac.energy(f32) / energy)


def main() -> None:
    """Refit and write data/hill_mac_fit.yaml, printing the residuals."""
    result = fit()
    write_atomic(FIT_FILE, "# Generated by `python -m quantscope.cost.mac`; see quantscope/cost/mac.py.\n" + yaml.safe_dump(result, sort_keys=False))
    for r in result["residuals"]:
        print(f"{r['metric']:14s} {r['point']:22s} published {r['published']:9.3f} model {r['model']:9.3f} ({100 * r['rel_error']:+.1f}%)")


if __name__ == "__main__":
    main()
