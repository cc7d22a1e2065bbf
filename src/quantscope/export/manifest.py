"""An emulated model as integers: every product op's integer weights and bias with their
exponents, its data, accumulator and output formats, and the graph between ops (see
`quantscope.export.integer` for how they are run).

Weights take the datapath their format has: fixed point multiplies integer codes, powers of two
shift (a sign and a shift amount per weight), binary weights with a power-of-two magnitude flip a
sign. Formats without an integer form (custom floats, float32 data, binary<mean> with a scale
that is not a power of two, stochastic rounding, element-wise formats) are refused with an error
naming the op.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..emulation import EmulatedModel
from ..files import write_atomic
from ..formats import Format
from ..quantization import quantize
from .graph import ExportError, Node, capture, parameters

__all__ = ["integer_manifest", "write_integer", "fixed_spec"]

#: accumulators up to this many magnitude bits reach the next op exactly (float32 carries 24)
_FLOAT32_BITS = 24


def fixed_spec(fmt: Format, what: str) -> dict[str, Any]:
    """A static fixed-point format as the manifest states it, or an ExportError naming `what`."""
    if fmt.datapath != "integer" or fmt.grid_exponent is None:
        raise ExportError(f"{what}: {fmt} has no integer form; integer export needs fixed point here")
    return {"format": str(fmt), "bits": fmt.bits, "frac": -fmt.grid_exponent, "signed": fmt.min_value < 0,
            "overflow": "wrap" if fmt.wraps else "saturate"}


def _exact_int(values: torch.Tensor, exp: int, what: str) -> np.ndarray:
    codes = torch.ldexp(values.detach().double(), torch.tensor(-exp, dtype=torch.float64))
    if not torch.equal(codes, codes.round()):
        raise ExportError(f"{what}: values are not integers times 2**{exp}")
    return codes.numpy().astype(np.int64)


def _operand(q: torch.Tensor, fmt: Format, what: str, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A quantized parameter as integers, in its format's datapath: (manifest entry, arrays)."""
    entry: dict[str, Any] = {"array": key, "format": str(fmt), "datapath": fmt.datapath}
    if fmt.datapath == "integer" and fmt.grid_exponent is not None:
        entry["exp"] = fmt.grid_exponent
        return entry, {key: _exact_int(q, fmt.grid_exponent, what)}
    if fmt.datapath in ("shift", "sign"):
        low = math.log2(fmt.min_positive if fmt.datapath == "shift" else fmt.max_value)
        if low != int(low):
            raise ExportError(f"{what}: {fmt} has magnitude {fmt.max_value}, not a power of two: no integer form")
        entry["exp"] = int(low)
        sign = torch.sign(q).to(torch.int8).numpy()
        if fmt.datapath == "sign":
            return entry, {key + ".sign": sign}
        shift = torch.where(q != 0, torch.log2(q.abs().double().clamp(min=fmt.min_positive)) - low, torch.zeros((), dtype=torch.float64))
        return entry, {key + ".sign": sign, key + ".shift": shift.round().to(torch.int8).numpy()}
    raise ExportError(f"{what}: {fmt} has no integer form (a {fmt.datapath} datapath); integer export takes fixed point, "
                      "powers of two and binary weights")


def _product(qmodel: EmulatedModel, node: Node) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The manifest entry and arrays of one product op."""
    _, w, bias = parameters(qmodel.model, node.name)
    spec = qmodel.spec(node.name)
    p = spec.precision
    static = p.weights.resolve(w)
    weight, arrays = _operand(quantize(w, static, qmodel.rounding), static, f"op {node.name} weights", f"{node.name}.weight")
    entry: dict[str, Any] = {"name": node.name, "op": node.op, "inputs": list(node.inputs), "attrs": node.attrs, "weight": weight,
                             "data": fixed_spec(spec.data, f"op {node.name} data"), "bias": None, "accumulator": None, "output": None}
    if bias is not None:
        bstatic = p.bias_format.resolve(bias)
        entry["bias"], more = _operand(quantize(bias, bstatic, qmodel.rounding), bstatic, f"op {node.name} bias", f"{node.name}.bias")
        arrays.update(more)
    if p.accumulator is not None:
        entry["accumulator"] = acc = fixed_spec(p.accumulator, f"op {node.name} accumulator")
        if acc["bits"] - acc["signed"] > _FLOAT32_BITS:
            raise ExportError(f"op {node.name}: accumulator {p.accumulator} has more than {_FLOAT32_BITS} magnitude bits; emulate() "
                              "hands its results on as float32 (rounded), which the integer export does not model")
    if spec.output is not None:
        entry["output"] = fixed_spec(spec.output, f"op {node.name} output")
    return entry, arrays


def integer_manifest(qmodel: EmulatedModel) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, arrays) of an emulated model (see the module docstring)."""
    if qmodel.rounding == "stochastic":
        raise ExportError("stochastic rounding has no fixed integer datapath; export a plan with nearest, floor or toward_zero rounding")
    if qmodel.plan.uses_elementwise:
        raise ExportError("the plan rounds element-wise results (elementwise formats); the integer export covers product ops")
    nodes, arrays = [], {}
    for node in capture(qmodel.model):
        if node.op in ("conv2d", "linear"):
            entry, more = _product(qmodel, node)
            arrays.update(more)
        else:
            entry = {"name": node.name, "op": node.op, "inputs": list(node.inputs), "attrs": node.attrs}
        nodes.append(entry)
    manifest = {"format": "quantscope-integer", "version": 1, "rounding": qmodel.rounding, "plan": qmodel.plan.to_dict(),
                "nodes": nodes}
    return manifest, arrays


def write_integer(folder: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> list[Path]:
    """arrays.npz, then manifest.json (naming the arrays' SHA-256), each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    data = buffer.getvalue()
    write_atomic(folder / "arrays.npz", data)
    manifest = {**manifest, "arrays_sha256": hashlib.sha256(data).hexdigest()}
    write_atomic(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return [folder / "manifest.json", folder / "arrays.npz"]
