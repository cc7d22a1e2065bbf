"""From a plan to the integers hardware computes: bit-true export of an emulated model.

`export(model, plan, calibration, out, format=...)` folds the model's BatchNorms, emulates it under
the plan and writes it for a target:

- "npz": a manifest (JSON: the graph, each op's formats, exponents, accumulator, requantization)
  and the integer weights and biases (npz), which `quantscope.export.integer` runs with integer
  arithmetic only, bit for bit like `emulate()`;
- "qonnx": a QONNX model (Quant / BipolarQuant nodes) that qonnx's executor runs, for FINN and
  hls4ml; "onnx-qdq": a standard ONNX QuantizeLinear/DequantizeLinear model (8-bit per-tensor
  power-of-two scales) that onnxruntime runs. Both need the `export` extra.

What a target cannot represent is an `ExportError` naming the op, never an approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..emulation import EmulatedModel, emulate
from ..plan import PrecisionPlan
from .graph import ExportError
from .integer import IntegerModel, load
from .manifest import integer_manifest, write_integer

__all__ = ["export", "ExportError", "ExportResult", "IntegerModel", "load", "FORMATS", "emulated_for_export"]

FORMATS: tuple[str, ...] = ("npz", "qonnx", "onnx-qdq")


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the files, the product ops exported, and the emulated model it equals."""

    files: list[Path]
    ops: list[str]
    emulated: EmulatedModel


def emulated_for_export(model: nn.Module, plan: PrecisionPlan, calibration: Any, rounding: str = "nearest") -> EmulatedModel:
    """The emulated model an export writes: BatchNorms folded (each one that cannot be folded
    exactly is an error later), ranges calibrated on `calibration`."""
    return emulate(model.eval(), plan, calibration, fold_bn=True, rounding=rounding)


def export(model: nn.Module | EmulatedModel, plan: PrecisionPlan | None, calibration: Any, out: str | Path, format: str = "npz",
           rounding: str = "nearest", batch: int | None = None) -> ExportResult:
    """Write `model` under `plan` to folder `out` in `format` (see the module docstring); an
    `EmulatedModel` is exported as it is (plan and rounding then come from it). `batch` fixes the
    ONNX input's batch dimension (default: symbolic for onnx-qdq, 1 for qonnx)."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; allowed: {', '.join(FORMATS)}")
    if isinstance(model, EmulatedModel):
        qmodel = model
    else:
        if plan is None:
            raise ValueError("export needs a plan for a float model")
        qmodel = emulated_for_export(model, plan, calibration, rounding)
    out = Path(out)
    if format == "npz":
        manifest, arrays = integer_manifest(qmodel)
        files = write_integer(out, manifest, arrays)
        ops = [n["name"] for n in manifest["nodes"] if "weight" in n]
    else:
        from .onnx_export import write_onnx

        files, ops = write_onnx(qmodel, calibration, out, format, batch)
    return ExportResult(files, ops, qmodel)
