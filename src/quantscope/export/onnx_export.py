"""ONNX exports of an emulated model: QONNX (for FINN and hls4ml) and standard ONNX QDQ.

Both write the captured graph (`graph.capture`) with float32 weights that already hold their
quantized values, and put the plan's rounding in front of every product op's operands:

- "qonnx": `Quant` nodes (scale 2**-frac, zero point 0, the format's bit width, signedness, round
  half to even, saturating) for fixed-point data, weights and outputs, `FloatQuant` for custom
  floats (with subnormals, saturating), `BipolarQuant` for binary weights; weights in other formats
  (powers of two) are stored as their values.
- "onnx-qdq": `QuantizeLinear` / `DequantizeLinear` pairs (int8 or uint8, per tensor, scale
  2**-frac, zero point 0): ONNX QDQ represents 8-bit integers only.

Neither can express rounding after every add inside a convolution, so plans with an accumulator
format are refused (use the npz export and its integer executor), as are wrapping overflow,
rounding other than to nearest, and formats the target has no node for; each refusal names the op.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..emulation import EmulatedModel
from ..files import write_atomic
from ..formats import Format
from ..quantization import quantize
from .graph import ExportError, Node, capture, parameters
from .manifest import fixed_spec

__all__ = ["write_onnx", "OPSET"]

OPSET = 13
_QONNX_DOMAIN = "qonnx.custom_op.general"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the onnx package: pip install -c constraints.txt -e '.[export]'") from None
    return onnx


class _Builder:
    """Collects nodes and initializers of one ONNX graph."""

    def __init__(self, target: str) -> None:
        self.onnx = _onnx()
        self.target = target
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._names: set[str] = set()

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        if name not in self._names:
            self._names.add(name)
            self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, *, domain: str = "", **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def quantize(self, tensor: str, fmt: Format, what: str) -> str:
        """Round `tensor` onto fixed point `fmt` (or, in QONNX, a custom float) with this target's nodes."""
        if fmt.datapath == "float" and self.target == "qonnx":
            return self._float_quant(tensor, fmt, what)
        spec = fixed_spec(fmt, what)
        if spec["overflow"] == "wrap":
            raise ExportError(f"{what}: {fmt} wraps on overflow; {self.target} saturates")
        scale = self.const(f"scale_2^-{spec['frac']}", 2.0 ** -spec["frac"])
        if self.target == "qonnx":
            zero, bits = self.const("zero", 0.0), self.const(f"bits_{spec['bits']}", float(spec["bits"]))
            return self.node("Quant", [tensor, scale, zero, bits], f"{tensor}.q", domain=_QONNX_DOMAIN, signed=int(spec["signed"]),
                             narrow=0, rounding_mode="ROUND")
        if spec["bits"] != 8:
            raise ExportError(f"{what}: {fmt} has {spec['bits']} bits; ONNX QDQ represents 8-bit integers")
        zero = self.const("zero_int8" if spec["signed"] else "zero_uint8", 0, np.int8 if spec["signed"] else np.uint8)
        q = self.node("QuantizeLinear", [tensor, scale, zero], f"{tensor}.int8")
        return self.node("DequantizeLinear", [q, scale, zero], f"{tensor}.q")

    def _float_quant(self, tensor: str, fmt: Format, what: str) -> str:
        """QONNX's FloatQuant: round half to even onto a float grid with subnormals, saturating at
        `max_val`; custom floats without subnormals or with overflow to infinity are refused."""
        if fmt.is_identity:
            return tensor
        bias = fmt.exponent_bias
        if bias is None or not getattr(fmt, "subnormals", False) or getattr(fmt, "overflow", "saturate") != "saturate":
            raise ExportError(f"{what}: {fmt} flushes subnormals, overflows to infinity or has no exponent bias; QONNX's "
                              "FloatQuant keeps subnormals and saturates")
        consts = [self.const("one", 1.0), self.const(f"e{fmt.exponent_bits}", float(fmt.exponent_bits)),
                  self.const(f"m{fmt.significand_bits - 1}", float(fmt.significand_bits - 1)), self.const(f"bias{bias}", float(bias)),
                  self.const(f"max{fmt.max_value!r}", fmt.max_value)]
        return self.node("FloatQuant", [tensor, *consts], f"{tensor}.q", domain=_QONNX_DOMAIN, rounding_mode="ROUND",
                         has_inf=0, has_nan=0, has_subnormal=1, saturation=1)

    def weight(self, name: str, values: torch.Tensor, fmt: Format, what: str) -> str:
        """A quantized parameter as an initializer, declared in its format where the target can."""
        tensor = self.const(name, values.detach().float().numpy())
        if fmt.datapath == "integer" or (fmt.datapath == "float" and self.target == "qonnx"):
            return self.quantize(tensor, fmt, what)
        if fmt.datapath == "sign" and self.target == "qonnx":
            scale = self.const(f"{name}.scale", fmt.max_value)
            return self.node("BipolarQuant", [tensor, scale], f"{tensor}.q", domain=_QONNX_DOMAIN)
        if self.target == "onnx-qdq":
            raise ExportError(f"{what}: {fmt} is not an 8-bit integer; ONNX QDQ represents 8-bit integers")
        return tensor  # powers of two: the values themselves (QONNX has no power-of-two datatype)


def _product(b: _Builder, qmodel: EmulatedModel, node: Node, x: str) -> str:
    _, weight, bias = parameters(qmodel.model, node.name)
    spec = qmodel.spec(node.name)
    p = spec.precision
    if p.accumulator is not None:
        raise ExportError(f"op {node.name}: accumulator {p.accumulator} rounds after every add, which {b.target} cannot express; "
                          "use the npz export")
    xq = b.quantize(x, spec.data, f"op {node.name} data")
    static = p.weights.resolve(weight)
    w = b.weight(f"{node.name}.weight", quantize(weight, static, qmodel.rounding), static, f"op {node.name} weights")
    inputs = [xq, w]
    if bias is not None:
        bstatic = p.bias_format.resolve(bias)
        inputs.append(b.const(f"{node.name}.bias", quantize(bias, bstatic, qmodel.rounding).float().numpy()))
    if node.op == "linear":
        y = b.node("Gemm", inputs, node.name, transB=1)
    else:
        a = node.attrs
        kernel = list(weight.shape[2:])
        y = b.node("Conv", inputs, node.name, kernel_shape=kernel, strides=a["stride"], dilations=a["dilation"], group=a["groups"],
                   pads=a["padding"] + a["padding"])
    return b.quantize(y, spec.output, f"op {node.name} output") if spec.output is not None else y


def _pool(b: _Builder, node: Node, x: str, op: str) -> str:
    a = node.attrs
    extra: dict[str, Any] = {"count_include_pad": 1} if op == "AveragePool" else {}
    return b.node(op, [x], node.name, kernel_shape=a["kernel"], strides=a["stride"], pads=a["padding"] + a["padding"],
                  ceil_mode=int(a["ceil_mode"]), **extra)


def _layout(b: _Builder, node: Node, xs: list[str]) -> str:
    a, x = node.attrs, xs[0]
    if node.op == "flatten":
        if a["end_dim"] != -1:
            raise ExportError(f"node {node.name}: flatten up to a middle dimension is not supported in ONNX export")
        return b.node("Flatten", [x], node.name, axis=a["start_dim"])
    if node.op == "reshape":
        return b.node("Reshape", [x, b.const(f"{node.name}.shape", a["shape"], np.int64)], node.name)
    if node.op == "slice":
        big = np.iinfo(np.int64).max
        starts, ends, steps = ([0 if s[0] is None else s[0] for s in a["index"]], [big if s[1] is None else s[1] for s in a["index"]],
                               [1 if s[2] is None else s[2] for s in a["index"]])
        consts = [b.const(f"{node.name}.{k}", v, np.int64) for k, v in
                  (("starts", starts), ("ends", ends), ("axes", list(range(len(starts)))), ("steps", steps))]
        return b.node("Slice", [x, *consts], node.name)
    pads = a["pads"]  # F.pad: last dimension first, (low, high) pairs; ONNX: every dimension's lows, then highs
    rank = 4
    low, high = [0] * rank, [0] * rank
    for d in range(len(pads) // 2):
        low[rank - 1 - d], high[rank - 1 - d] = pads[2 * d], pads[2 * d + 1]
    return b.node("Pad", [x, b.const(f"{node.name}.pads", low + high, np.int64)], node.name, mode="constant")


def _emit(b: _Builder, qmodel: EmulatedModel, node: Node, xs: list[str]) -> str:
    if node.op in ("conv2d", "linear"):
        return _product(b, qmodel, node, xs[0])
    simple = {"relu": "Relu", "add": "Add"}
    if node.op in simple:
        return b.node(simple[node.op], xs, node.name)
    if node.op in ("max_pool2d", "avg_pool2d"):
        return _pool(b, node, xs[0], "MaxPool" if node.op == "max_pool2d" else "AveragePool")
    if node.op == "adaptive_avg_pool2d":
        if node.attrs["output_size"] != [1, 1]:
            raise ExportError(f"node {node.name}: adaptive average pooling to other than 1x1 is not supported in ONNX export")
        return b.node("GlobalAveragePool", xs, node.name)
    return _layout(b, node, xs)


def write_onnx(qmodel: EmulatedModel, example: torch.Tensor, out: Path, target: str, batch: int | None = None) -> tuple[list[Path], list[str]]:
    """Write `qmodel` as out/model.onnx for `target` ("qonnx" or "onnx-qdq"); returns (files,
    product ops). The input's batch dimension is `batch`, or symbolic for onnx-qdq and 1 for
    qonnx (whose executor, like FINN, needs static shapes)."""
    if qmodel.rounding != "nearest":
        raise ExportError(f"{target} rounds to nearest (ties to even); the plan rounds {qmodel.rounding}")
    if qmodel.plan.uses_elementwise:
        raise ExportError("the plan rounds element-wise results (elementwise formats); the ONNX export covers product ops")
    b = _Builder(target)
    onnx = b.onnx
    names: dict[str, str] = {}
    ops: list[str] = []
    graph_input = graph_output = ""
    for node in capture(qmodel.model):
        if node.op == "input":
            names[node.name] = graph_input = "input"
            continue
        if node.op == "output":
            graph_output = names[node.inputs[0]]
            continue
        names[node.name] = _emit(b, qmodel, node, [names[i] for i in node.inputs])
        if node.op in ("conv2d", "linear"):
            ops.append(node.name)
    shape = [batch if batch is not None else ("batch" if target == "onnx-qdq" else 1), *example.shape[1:]]
    graph = onnx.helper.make_graph(b.nodes, "quantscope", [onnx.helper.make_tensor_value_info(graph_input, onnx.TensorProto.FLOAT, shape)],
                                   [onnx.helper.make_tensor_value_info(graph_output, onnx.TensorProto.FLOAT, None)], b.inits)
    opsets = [onnx.helper.make_opsetid("", OPSET)] + ([onnx.helper.make_opsetid(_QONNX_DOMAIN, 1)] if target == "qonnx" else [])
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="quantscope")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "model.onnx", model.SerializeToString())
    return [out / "model.onnx"], ops
