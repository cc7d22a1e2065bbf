"""The dataflow graph an export writes: the (BatchNorm-folded) model traced with torch.fx into a
list of nodes in execution order, each one of a small set of ops an integer datapath can run.

Ops: `input`, `conv2d` and `linear` (product ops, named as in quantscope's op table), `relu`,
`max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d`, `add`, `flatten`, `slice`, `pad` (zeros) and
`output`; identities and dropout (in eval mode) are dropped. Anything else is an error naming the
node, so an export never leaves an op out silently.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

__all__ = ["Node", "ExportError", "capture", "parameters"]


class ExportError(ValueError):
    """The model or plan has something an export target cannot represent (named in the message)."""


@dataclass(frozen=True)
class Node:
    """One op of the exported graph: its name, kind, input node names and attributes."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)


def parameters(model: nn.Module, name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor | None]:
    """The product op module `name` of `model`, its weight and its bias (None without one)."""
    module = model.get_submodule(name)
    weight, bias = module.weight, module.bias
    assert isinstance(weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor))
    return module, weight.detach(), None if bias is None else bias.detach()


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(e) for e in v]


def _conv(m: nn.Conv2d) -> dict[str, Any]:
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise ExportError(f"conv {m}: give padding as numbers with zero padding mode")
    return {"stride": _pair(m.stride), "padding": _pair(m.padding), "dilation": _pair(m.dilation), "groups": int(m.groups)}


def _pool(kernel: Any, stride: Any, padding: Any, ceil_mode: bool, what: str) -> dict[str, Any]:
    return {"kernel": _pair(kernel), "stride": _pair(kernel if stride is None or stride == [] else stride), "padding": _pair(padding),
            "ceil_mode": bool(ceil_mode)}


def _module_node(name: str, m: nn.Module, inputs: tuple[str, ...]) -> Node | None:
    """The node of a call to module `m` (None for identities)."""
    if isinstance(m, (nn.Identity, nn.Dropout)):
        return None
    if isinstance(m, nn.Conv2d):
        return Node(name, "conv2d", inputs, _conv(m))
    if isinstance(m, nn.Linear):
        return Node(name, "linear", inputs)
    if isinstance(m, nn.ReLU):
        return Node(name, "relu", inputs)
    if isinstance(m, nn.MaxPool2d):
        if _pair(m.dilation) != [1, 1]:
            raise ExportError(f"{name}: dilated max pooling is not supported by the export")
        return Node(name, "max_pool2d", inputs, _pool(m.kernel_size, m.stride, m.padding, m.ceil_mode, name))
    if isinstance(m, nn.AvgPool2d):
        if not m.count_include_pad and _pair(m.padding) != [0, 0] or m.divisor_override is not None:
            raise ExportError(f"{name}: average pooling must count padding (or have none) and no divisor_override")
        return Node(name, "avg_pool2d", inputs, _pool(m.kernel_size, m.stride, m.padding, m.ceil_mode, name))
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return Node(name, "adaptive_avg_pool2d", inputs, {"output_size": _pair(m.output_size)})
    if isinstance(m, nn.Flatten):
        return Node(name, "flatten", inputs, {"start_dim": m.start_dim, "end_dim": m.end_dim})
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        raise ExportError(f"{name}: a BatchNorm that could not be folded into the op before it (its output feeds something "
                          "else); integer hardware has no BatchNorm")
    raise ExportError(f"{name}: module {type(m).__name__} is not supported by the export")


_FUNCTIONS: dict[Any, str] = {F.relu: "relu", torch.relu: "relu", operator.add: "add", torch.add: "add", torch.flatten: "flatten",
              F.adaptive_avg_pool2d: "adaptive_avg_pool2d", operator.getitem: "slice", F.pad: "pad",
              F.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d"}
_METHODS = {"relu": "relu", "flatten": "flatten", "view": "reshape", "reshape": "reshape"}


def _function_node(node: fx.Node, inputs: tuple[str, ...], args: list[Any], kwargs: dict[str, Any]) -> Node:
    kind = _FUNCTIONS.get(node.target) if node.op == "call_function" else _METHODS.get(str(node.target))
    if kind is None:
        raise ExportError(f"node {node.name}: {getattr(node.target, '__name__', node.target)} is not supported by the export")
    if kind == "add" and (len(inputs) != 2 or kwargs.get("alpha", 1) != 1):
        raise ExportError(f"node {node.name}: only the sum of two tensors is supported")
    attrs: dict[str, Any] = {}
    if kind == "flatten":
        attrs = {"start_dim": args[1] if len(args) > 1 else kwargs.get("start_dim", 0), "end_dim": args[2] if len(args) > 2 else -1}
    elif kind == "adaptive_avg_pool2d":
        attrs = {"output_size": _pair(args[1] if len(args) > 1 else kwargs["output_size"])}
    elif kind == "slice":
        attrs = {"index": _slices(node, args[1])}
    elif kind == "pad":
        if kwargs.get("mode", "constant") != "constant" or kwargs.get("value") not in (None, 0, 0.0):
            raise ExportError(f"node {node.name}: only zero padding is supported")
        attrs = {"pads": [int(p) for p in args[1]]}
    elif kind == "reshape":
        attrs = {"shape": [int(s) for s in args[1:]] if not isinstance(args[1], (list, tuple)) else [int(s) for s in args[1]]}
    elif kind in ("max_pool2d", "avg_pool2d"):
        names = ("kernel_size", "stride", "padding")
        given = dict(zip(names, args[1:])) | {k: v for k, v in kwargs.items() if k in names}
        attrs = _pool(given["kernel_size"], given.get("stride"), given.get("padding", 0), bool(kwargs.get("ceil_mode", False)), node.name)
    return Node(node.name, kind, inputs, attrs)


def _slices(node: fx.Node, index: Any) -> list[list[int | None]]:
    index = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(s, slice) for s in index):
        raise ExportError(f"node {node.name}: only slicing with start:stop:step is supported")
    return [[s.start, s.stop, s.step] for s in index]


def capture(model: nn.Module) -> list[Node]:
    """The export graph of `model` (see the module docstring); identities are bypassed."""
    try:
        graph = fx.symbolic_trace(model).graph
    except Exception as err:  # noqa: BLE001 - fx raises many types for untraceable code
        raise ExportError(f"the model cannot be traced into a static graph (torch.fx): {str(err).splitlines()[0]}") from None
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        inputs = tuple(alias.get(a.name, a.name) for a in node.all_input_nodes)
        if node.op == "placeholder":
            nodes.append(Node(node.name, "input"))
        elif node.op == "output":
            nodes.append(Node("output", "output", inputs))
        elif node.op == "call_module":
            made = _module_node(str(node.target), model.get_submodule(str(node.target)), inputs)
            if made is None:
                alias[node.name] = inputs[0]
            else:
                alias[node.name] = made.name
                nodes.append(made)
        elif node.op in ("call_function", "call_method"):
            nodes.append(_function_node(node, inputs, list(node.args), dict(node.kwargs)))
        else:
            raise ExportError(f"node {node.name}: {node.op} {node.target} is not supported by the export")
    return nodes
