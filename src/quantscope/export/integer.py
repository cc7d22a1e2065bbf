"""An integer-only reference executor for exported plans: NumPy integer arithmetic, no PyTorch.

A tensor is integer codes with a power-of-two exponent (value = codes x 2**exp), and an exact
positive integer divisor that average pooling carries until the next requantization divides it
out with one rounding. Every product op quantizes its input onto its data format, multiplies
integer codes (fixed point), shifts them (power-of-two weights) or negates them (binary weights),
sums exactly in int64, or with every product and partial sum rounded and saturated or wrapped
onto the accumulator's bits, adds the bias and, where the plan says, requantizes its output.
Rounding is nearest with ties to even, floor or toward zero, by integer division.

The one conversion from floats is at the network input (the model's input is a float tensor):
each value is scaled by a power of two, exactly, and rounded. Everything after that is integers.
Without an accumulator format, quantscope's emulation sums in float32, which equals these exact
sums while every partial sum stays below 2**24 product steps; where a bound says it may not,
`IntegerModel.warnings` says which op.

Matrix products use NumPy's int64 product (`gemm="int64"`, the default). NumPy has no integer
BLAS, so `gemm="float64-exact"` offers its float64 product where a bound proves every operand and
partial sum is an integer below 2**53 in magnitude (then every float64 operation is exact and the
result is the same integers, about 6x faster); where the bound fails it falls back to int64.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IntTensor", "IntegerModel", "round_div", "requantize", "load"]

_LIMIT = 1 << 62
_FLOAT64_EXACT = 1 << 53
#: images run at once (the unfolded windows of a whole batch can take gigabytes)
_CHUNK = 100
GEMMS: tuple[str, ...] = ("int64", "float64-exact")
#: elements of one block of running sums in the step-by-step accumulation (kept in cache)
_BLOCK = 1 << 15


@dataclass(frozen=True)
class IntTensor:
    """Integer codes x 2**exp / divisor (an integer, or an integer array broadcasting to codes)."""

    codes: np.ndarray
    exp: int
    divisor: Any = 1

    def values(self) -> np.ndarray:
        """The exact values where float64 holds them (codes below 2**53, divisor a power of two)."""
        return np.ldexp(self.codes.astype(np.float64), self.exp) / self.divisor


def round_div(num: np.ndarray, den: int, mode: str) -> np.ndarray:
    """num / den (den > 0) rounded to an integer: nearest with ties to even, floor or toward zero."""
    if isinstance(den, int) and den & (den - 1) == 0 and num.dtype != object:
        return _round_shift(num, den.bit_length() - 1, mode)
    q, r = np.divmod(num, den)
    if mode == "floor":
        return q
    if mode == "toward_zero":
        return q + ((r != 0) & (num < 0))
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & (q % 2 != 0)))


def _round_shift(num: np.ndarray, s: int, mode: str) -> np.ndarray:
    """num / 2**s rounded, with shifts and masks (the division above, for a power of two)."""
    if s == 0:
        return num
    q = num >> s
    if mode == "floor":
        return q
    r = num & ((1 << s) - 1)
    if mode == "toward_zero":
        return q + ((r != 0) & (num < 0))
    half = 1 << (s - 1)
    return q + ((r > half) | ((r == half) & ((q & 1) == 1)))


def _limit(codes: np.ndarray, fmt: dict[str, Any]) -> np.ndarray:
    """Saturate or wrap codes onto the format's `bits` (signed or not)."""
    bits = fmt["bits"]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt["signed"] else (0, (1 << bits) - 1)
    if fmt["overflow"] == "wrap":
        if codes.dtype == object:
            return (codes - lo) % (1 << bits) + lo
        return ((codes - lo) & ((1 << bits) - 1)) + lo  # two's complement: the residue modulo 2**bits
    return np.clip(codes, lo, hi)


def requantize(t: IntTensor, fmt: dict[str, Any], mode: str) -> IntTensor:
    """t rounded onto fixed point `fmt` (bits, frac, signed, overflow): codes at exponent -frac."""
    shift = t.exp + fmt["frac"]
    up, den = max(shift, 0), t.divisor << max(-shift, 0)
    num = t.codes
    if int(np.abs(num).max(initial=0)).bit_length() + up >= 62 or int(np.max(den)).bit_length() >= 62:
        num = num.astype(object)  # Python integers, exact at any size (huge shifts are rare)
        den = den if isinstance(den, int) else den.astype(object)
    codes = round_div(num * (1 << up) if up else num, den, mode)
    return IntTensor(_limit(codes, fmt).astype(np.int64), -fmt["frac"])


def _quantize_input(x: np.ndarray, fmt: dict[str, Any], mode: str) -> IntTensor:
    """The network's float input onto fixed point: an exact power-of-two scaling, a clamp, one
    rounding (the same steps as quantscope's kernel)."""
    bits = fmt["bits"]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt["signed"] else (0, (1 << bits) - 1)
    scaled = np.clip(np.ldexp(x.astype(np.float64), fmt["frac"]), lo, hi)
    rounded = {"nearest": np.rint, "floor": np.floor, "toward_zero": np.trunc}[mode](scaled)
    return IntTensor(rounded.astype(np.int64), -fmt["frac"])


def _align(a: IntTensor, b: IntTensor) -> tuple[np.ndarray, np.ndarray, int, Any]:
    """Both tensors' codes on a common exponent and divisor (exactly)."""
    exp = min(a.exp, b.exp)
    div = np.lcm(a.divisor, b.divisor)
    div = int(div) if np.ndim(div) == 0 else div
    return (a.codes << (a.exp - exp)) * (div // a.divisor), (b.codes << (b.exp - exp)) * (div // b.divisor), exp, div


def _windows(codes: np.ndarray, kernel: list[int], stride: list[int], dilation: list[int]) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, kh, kw): every window (a view)."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    view = np.lib.stride_tricks.sliding_window_view(codes, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def _pad2d(codes: np.ndarray, padding: list[int], value: int = 0) -> np.ndarray:
    p = ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1]))
    return np.pad(codes, p, constant_values=value) if any(padding) else codes


@dataclass(frozen=True)
class _Product:
    """A product op's operands as matrices: the input's rows (M, K) and the weight (O, K)."""

    rows: np.ndarray
    weight: np.ndarray
    exp: int


class IntegerModel:
    """An exported plan, run with integers (see the module docstring)."""

    def __init__(self, manifest: dict[str, Any], arrays: dict[str, np.ndarray], gemm: str = "int64") -> None:
        if manifest.get("format") != "quantscope-integer":
            raise ValueError("not a quantscope integer export (manifest format is not 'quantscope-integer')")
        if gemm not in GEMMS:
            raise ValueError(f"unknown gemm {gemm!r}; allowed: {', '.join(GEMMS)}")
        self.manifest = manifest
        self.arrays = arrays
        self.mode = manifest["rounding"]
        self.gemm = gemm
        self.warnings: list[str] = []

    # ----------------------------------------------------------------------------- running
    def run(self, x: np.ndarray) -> IntTensor:
        """The network's output for the float input batch `x`, as integers (a chunk of images at
        a time: examples do not interact)."""
        parts = [self._run(x[i:i + _CHUNK]) for i in range(0, len(x), _CHUNK)]
        first = parts[0]
        if isinstance(first.divisor, int):
            return IntTensor(np.concatenate([p.codes for p in parts]), first.exp, first.divisor)
        return IntTensor(np.concatenate([p.codes for p in parts]), first.exp, np.concatenate([p.divisor for p in parts]))

    def _run(self, x: np.ndarray) -> IntTensor:
        env: dict[str, Any] = {}
        for node in self.manifest["nodes"]:
            args = [env[i] for i in node["inputs"]]
            env[node["name"]] = x if node["op"] == "input" else getattr(self, "_" + node["op"])(node, *args)
        return env["output"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The network's output values (float64, exact) for the float input batch `x`."""
        return self.run(x).values()

    def _output(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        return t

    # ------------------------------------------------------------------------------- products
    def _operand(self, node: dict[str, Any], t: Any) -> IntTensor:
        data = node["data"]
        if isinstance(t, np.ndarray):
            return _quantize_input(t, data, self.mode)
        return requantize(t, data, self.mode)

    def _weight(self, node: dict[str, Any]) -> np.ndarray:
        return self.codes(node["weight"])

    def codes(self, entry: dict[str, Any]) -> np.ndarray:
        """A parameter's integer codes: multiplied (fixed), shifted (power of two) or signed (binary)."""
        key = entry["array"]
        if entry["datapath"] == "shift":
            sign, shift = self.arrays[key + ".sign"].astype(np.int64), self.arrays[key + ".shift"].astype(np.int64)
            return sign << shift
        if entry["datapath"] == "sign":
            return self.arrays[key + ".sign"].astype(np.int64)
        return self.arrays[key].astype(np.int64)

    def _conv2d(self, node: dict[str, Any], t: Any) -> IntTensor:
        x = self._operand(node, t)
        a = node["attrs"]
        w = self._weight(node)
        o, cg, kh, kw = w.shape
        win = _windows(_pad2d(x.codes, a["padding"]), [kh, kw], a["stride"], a["dilation"])
        n, c, oh, ow = win.shape[:4]
        g = a["groups"]
        outs = []
        for gi in range(g):  # rows: (N * OH * OW, Cg * kh * kw) in the order of weight.flatten(1)
            rows = win[:, gi * cg:(gi + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, cg * kh * kw)
            wg = w[gi * (o // g):(gi + 1) * (o // g)].reshape(o // g, -1)
            outs.append(self._sum(node, _Product(rows, wg, x.exp + node["weight"]["exp"])))
        codes = np.concatenate([t.codes for t in outs], axis=1).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)
        return self._finish(node, IntTensor(np.ascontiguousarray(codes), outs[0].exp))

    def _linear(self, node: dict[str, Any], t: Any) -> IntTensor:
        x = self._operand(node, t)
        w = self._weight(node)
        lead = x.codes.shape[:-1]
        y = self._sum(node, _Product(x.codes.reshape(-1, x.codes.shape[-1]), w, x.exp + node["weight"]["exp"]))
        return self._finish(node, IntTensor(y.codes.reshape(*lead, w.shape[0]), y.exp))

    def _sum(self, node: dict[str, Any], p: _Product) -> IntTensor:
        """The product op's sums: exact, or accumulated in the accumulator format."""
        bound = int(np.abs(p.rows).max(initial=0)) * int(np.abs(p.weight).sum(1).max(initial=0))
        if bound >= _LIMIT:
            raise OverflowError(f"op {node['name']}: sums may reach 2**{bound.bit_length() - 1}, beyond int64")
        acc = node["accumulator"]
        if acc is None:
            if bound >= 1 << 24:
                self._warn(f"op {node['name']}: partial sums may reach 2**{bound.bit_length() - 1} product steps; emulate() "
                           "sums in float32, exact only below 2**24")
            return IntTensor(self._matmul(p.rows, p.weight.T, bound), p.exp)
        return IntTensor(self._accumulate(p, acc, bound), -acc["frac"])

    def _matmul(self, a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
        """a @ b of integers whose partial sums are below `bound` in magnitude, exactly."""
        if self.gemm == "float64-exact" and bound < _FLOAT64_EXACT:
            return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
        return a @ b

    def _accumulate(self, p: _Product, acc: dict[str, Any], bound: int) -> np.ndarray:
        """acc = q(acc + q(x_k w_k)) for k in order, every step rounded and saturated or wrapped.
        Where the products are exact in the accumulator and no partial sum, in any order, can
        leave its range (or it wraps: modular sums are order-free), one exact sum is the same.
        Every partial sum lies between the sums of the row's negative and positive products;
        a cheap bound (max |x| sum |w|) clears most rows, the exact one the rest."""
        shift = p.exp + acc["frac"]
        if shift < 0:
            return self._sequential(p, acc, np.ones(p.rows.shape[0], dtype=bool))
        if bound.bit_length() + shift >= 62:
            raise OverflowError(f"sums shifted onto the accumulator's grid may reach 2**{bound.bit_length() + shift}, beyond int64")
        total = self._matmul(p.rows, p.weight.T, bound) << shift
        if acc["overflow"] == "wrap":
            return _limit(total, acc)
        lo, hi = (-(1 << (acc["bits"] - 1)), (1 << (acc["bits"] - 1)) - 1) if acc["signed"] else (0, (1 << acc["bits"]) - 1)
        coarse = (np.abs(p.rows).max(1)[:, None] * np.abs(p.weight).sum(1)[None, :]) << shift
        suspect = ((coarse > hi) | (-coarse < lo)).any(1)
        if suspect.any():
            rows = p.rows[suspect]
            rp, rn = np.maximum(rows, 0), np.minimum(rows, 0)
            wp, wn = np.maximum(p.weight, 0).T, np.minimum(p.weight, 0).T
            positive = (self._matmul(rp, wp, bound) + self._matmul(rn, wn, bound)) << shift
            negative = (self._matmul(rp, wn, bound) + self._matmul(rn, wp, bound)) << shift
            risky = np.zeros(len(p.rows), dtype=bool)
            risky[suspect] = ((positive > hi) | (negative < lo)).any(1)
            if risky.any():
                total[risky] = self._sequential(p, acc, risky)
        return total

    def _sequential(self, p: _Product, acc: dict[str, Any], rows: np.ndarray) -> np.ndarray:
        """The accumulation step by step, for the selected rows, in blocks that stay in cache."""
        shift = p.exp + acc["frac"]
        x = p.rows[rows]
        out = np.empty((x.shape[0], p.weight.shape[0]), dtype=np.int64)
        block = max(1, _BLOCK // max(p.weight.shape[0], 1))
        wt = np.ascontiguousarray(p.weight.T)
        for start in range(0, x.shape[0], block):
            xs = np.ascontiguousarray(x[start:start + block].T)
            total = np.zeros((xs.shape[1], wt.shape[1]), dtype=np.int64)
            for k in range(xs.shape[0]):
                prod = np.multiply.outer(xs[k], wt[k])
                prod = prod << shift if shift >= 0 else _round_shift(prod, -shift, self.mode)
                total = _limit(total + _limit(prod, acc), acc)
            out[start:start + block] = total
        return out

    def _finish(self, node: dict[str, Any], y: IntTensor) -> IntTensor:
        """The bias (added exactly, or rounded once onto the accumulator), then the output format."""
        b = node["bias"]
        if b is not None:
            codes = self.codes(b)
            bias = IntTensor(codes.reshape(-1, *([1] * (y.codes.ndim - 2))) if node["op"] == "conv2d" else codes, b["exp"])
            yc, bc, exp, _ = _align(y, bias)
            y = IntTensor(yc + bc, exp)
            if node["accumulator"] is None and not _float32_holds(y.codes):
                self._warn(f"op {node['name']}: the sum with the bias needs more than 24 significant bits; emulate() adds it in "
                           "float32, which rounds it")
            if node["accumulator"] is not None:
                y = requantize(y, node["accumulator"], self.mode)
        if node.get("output") is not None:
            y = requantize(y, node["output"], self.mode)
        return y

    # ---------------------------------------------------------------------------- element-wise
    def _relu(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        return IntTensor(np.maximum(t.codes, 0), t.exp, t.divisor)

    def _max_pool2d(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        if not isinstance(t.divisor, int):
            raise ValueError(f"op {node['name']}: max pooling after a border-dependent average is not supported")
        windows, _ = _pool_windows(t.codes, node["attrs"], np.iinfo(np.int64).min)
        return IntTensor(windows.max(axis=(4, 5)), t.exp, t.divisor)

    def _avg_pool2d(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        windows, counts = _pool_windows(t.codes, node["attrs"], 0)
        return _divided(windows.sum(axis=(4, 5)), t, counts)

    def _adaptive_avg_pool2d(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        h, w = t.codes.shape[-2:]
        if node["attrs"]["output_size"] != [1, 1]:
            if [h, w] != node["attrs"]["output_size"]:
                raise ValueError(f"op {node['name']}: adaptive average pooling to a size other than 1x1 or the input's")
            return t
        return _divided(t.codes.sum(axis=(-2, -1), keepdims=True), t, h * w)

    def _add(self, node: dict[str, Any], a: IntTensor, b: IntTensor) -> IntTensor:
        ac, bc, exp, div = _align(a, b)
        return IntTensor(ac + bc, exp, div)

    def _flatten(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        start, end = node["attrs"]["start_dim"], node["attrs"]["end_dim"]
        shape = t.codes.shape
        end = end % len(shape)
        return _layout(t, lambda c: c.reshape(*shape[:start], -1, *shape[end + 1:]))

    def _reshape(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        return _layout(t, lambda c: c.reshape(node["attrs"]["shape"]))

    def _slice(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        return _layout(t, lambda c: c[tuple(slice(*s) for s in node["attrs"]["index"])])

    def _pad(self, node: dict[str, Any], t: IntTensor) -> IntTensor:
        pads = node["attrs"]["pads"]  # F.pad order: last dimension first, (low, high) pairs
        widths = [(0, 0)] * t.codes.ndim
        for d in range(len(pads) // 2):
            widths[t.codes.ndim - 1 - d] = (pads[2 * d], pads[2 * d + 1])
        return _layout(t, None, lambda c, value: np.pad(c, widths, constant_values=value))

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # ------------------------------------------------------------------------------- tracing
    def trace_neuron(self, op: str, x: np.ndarray, index: tuple[int, ...]) -> list[dict[str, int]]:
        """One output of product op `op` for input batch `x`, step by step: the integer operands,
        product and running sum after every step (Hill's accumulation trace, in integers)."""
        node = next((n for n in self.manifest["nodes"] if n["name"] == op), None)
        if node is None or node["op"] not in ("conv2d", "linear"):
            raise ValueError(f"no product op named {op!r} in this export")
        seen: dict[str, Any] = {}
        for n in self.manifest["nodes"]:
            if n["name"] == op:
                captured = self._operand(n, seen[n["inputs"][0]])
                break
            args = [seen[i] for i in n["inputs"]]
            seen[n["name"]] = x if n["op"] == "input" else getattr(self, "_" + n["op"])(n, *args)
        return _steps(node, captured, self._weight(node), index, self.mode)


def _float32_holds(codes: np.ndarray) -> bool:
    """True when every code, times any power of two in float32's range, is a float32 value: its
    odd part has at most 24 bits."""
    c = np.abs(codes)
    odd = c // np.maximum(c & -c, 1)
    return bool((odd < 1 << 24).all())


def _pool_windows(codes: np.ndarray, a: dict[str, Any], fill: int) -> tuple[np.ndarray, Any]:
    """Pooling windows as PyTorch places them (ceil_mode: a last window that starts inside the
    input or its left padding), padded with `fill`, and each window's count for averages: its
    extent clipped to the padded input (padding counts, the overhang of ceil_mode does not)."""
    k, s, p = a["kernel"], a["stride"], a["padding"]
    size = codes.shape[-2:]
    outs = []
    for d in range(2):
        span = size[d] + 2 * p[d] - k[d]
        n = (-(-span // s[d]) if a.get("ceil_mode") else span // s[d]) + 1
        if a.get("ceil_mode") and (n - 1) * s[d] >= size[d] + p[d]:
            n -= 1
        outs.append(n)
    extra = [max(0, (outs[d] - 1) * s[d] + k[d] - size[d] - 2 * p[d]) for d in range(2)]
    padded = np.pad(codes, ((0, 0), (0, 0), (p[0], p[0] + extra[0]), (p[1], p[1] + extra[1])), constant_values=fill)
    windows = _windows(padded, k, s, [1, 1])[:, :, : outs[0], : outs[1]]
    extent = [np.minimum(np.arange(outs[d]) * s[d] + k[d], size[d] + 2 * p[d]) - np.arange(outs[d]) * s[d] for d in range(2)]
    counts = np.multiply.outer(extent[0], extent[1])
    return windows, int(counts.flat[0]) if (counts == counts.flat[0]).all() else counts


def _divided(sums: np.ndarray, t: IntTensor, count: Any) -> IntTensor:
    """An average: the sums, with the count folded into the exponent (a power of two) or carried
    as an exact divisor (per element where windows differ) until the next requantization."""
    if isinstance(count, int) and count & (count - 1) == 0:
        return IntTensor(sums, t.exp - (count.bit_length() - 1), t.divisor)
    divisor = t.divisor * count
    return IntTensor(sums, t.exp, divisor if isinstance(divisor, int) else np.broadcast_to(divisor, sums.shape).copy())


def _layout(t: IntTensor, move: Any, pad: Any = None) -> IntTensor:
    """A layout op (reshape, slice, pad) on the codes, and on a per-element divisor alike."""
    if isinstance(t.divisor, int):
        return IntTensor(move(t.codes) if pad is None else pad(t.codes, 0), t.exp, t.divisor)
    if pad is not None:
        return IntTensor(pad(t.codes, 0), t.exp, pad(t.divisor, 1))
    return IntTensor(move(t.codes), t.exp, move(t.divisor))


def _steps(node: dict[str, Any], x: IntTensor, w: np.ndarray, index: tuple[int, ...], mode: str) -> list[dict[str, int]]:
    """The operands of one output in summation order, and the running sum after each product."""
    if node["op"] == "linear":
        *lead, out = index
        xs, ws = x.codes[tuple(lead)], w[out]
    else:
        n, out, i, j = index
        a = node["attrs"]
        win = _windows(_pad2d(x.codes, a["padding"]), list(w.shape[2:]), a["stride"], a["dilation"])
        g = out // (w.shape[0] // a["groups"])
        cg = w.shape[1]
        xs, ws = win[n, g * cg:(g + 1) * cg, i, j].reshape(-1), w[out].reshape(-1)
    acc, shift = node["accumulator"], x.exp + node["weight"]["exp"] + (node["accumulator"] or {"frac": 0})["frac"]
    total, steps = 0, []
    for xi, wi in zip(xs.tolist(), ws.tolist()):
        prod = xi * wi
        if acc is not None:
            prod = int(_limit(np.array([prod << shift if shift >= 0 else round_div(np.array(prod), 1 << -shift, mode)]), acc)[0])
            total = int(_limit(np.array([total + prod]), acc)[0])
        else:
            total += prod
        steps.append({"x": xi, "w": wi, "product": prod, "sum": total})
    return steps


def load(folder: str | Path, gemm: str = "int64") -> IntegerModel:
    """An integer export (manifest.json and arrays.npz) from its folder; the arrays must be the
    ones the manifest names (their SHA-256)."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    raw = (folder / "arrays.npz").read_bytes()
    if manifest.get("arrays_sha256") not in (None, hashlib.sha256(raw).hexdigest()):
        raise ValueError(f"{folder}: arrays.npz is not the file manifest.json was written with (SHA-256 differs)")
    with np.load(io.BytesIO(raw)) as data:
        arrays = {k: data[k] for k in data.files}
    return IntegerModel(manifest, arrays, gemm)
