"""Tracing: run a model once in float and record every op it executes.

`trace(model, example)` is the one layer-tracing mechanism of the package: `layers()`, range
calibration, BatchNorm folding, the cost models, the bounds and the emulator's op table all read
its `Trace`: the ops in execution order (`OpInfo`), the tensors each op read and wrote (for
calibration), and the dataflow between ops (who produced and who consumed each tensor, for memory
traffic and folding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .calls import Product
from .mode import OpMode
from .scopes import ModuleScopes, NameRegistry

__all__ = ["OpInfo", "Flow", "Trace", "trace", "eval_mode"]

#: calls that only read a tensor's metadata: they consume no data
_METADATA = {"__get__", "size", "dim", "numel", "stride", "is_contiguous", "data_ptr", "element_size", "nelement", "ndimension",
             "__len__", "is_floating_point", "is_complex", "get_device", "storage_offset", "untyped_storage", "__format__", "__repr__",
             "__bool__", "is_nonzero", "has_names", "__hash__", "__eq__"}


@dataclass(frozen=True)
class OpInfo:
    """One op as executed on an example batch: counts per example (all its calls summed).

    `category` is "product" (a dot-product op: linear, convolutions, matmul, attention, recurrent
    products, embedding bags), "lookup" (an embedding: a weight but no MACs) or "elementwise"
    (activations, normalizations, residual adds, softmax, pooling). Shapes are those of the first
    call without their first (batch) dimension.
    """

    name: str
    kind: str
    category: str
    module: str
    module_type: str
    weight: str | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    weights: int
    bias: int
    macs: int
    outputs: int
    inputs: int
    rhs: int
    calls: int
    kernel_size: tuple[int, ...] = ()
    conv_groups: int = 1
    in_channels: int = 0
    group: str = ""
    followers: tuple[str, ...] = ()
    emulated: bool = True

    @property
    def fan_in(self) -> int:
        """Products per output (the dot-product length D; the mean where it varies)."""
        return self.macs // max(self.outputs, 1)

    @property
    def has_weight(self) -> bool:
        """True when the op reads a weight tensor (product ops with a weight, lookups)."""
        return self.weights > 0


@dataclass(frozen=True)
class Flow:
    """A tensor that crosses from one group of ops to another: written by the producing group
    (or the network input), read by the consuming one."""

    tensor: int
    elements: int
    producer: str
    consumer: str
    consumer_op: str | None
    role: str | None


@dataclass
class _Accum:
    """An op's record while the trace runs."""

    info: OpInfo
    macs: int = 0
    outputs: int = 0
    inputs: int = 0
    rhs: int = 0
    calls: int = 0


@dataclass
class Trace:
    """What one float forward pass executed (see the module docstring)."""

    ops: list[OpInfo]
    unsupported: list[OpInfo]
    flows: list[Flow]
    calibration: dict[str, dict[str, list[torch.Tensor]]]
    registry: NameRegistry
    output_elements: int
    output_producer: str
    uses: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    producers: dict[int, str] = field(default_factory=dict)
    batch: int = 1
    sequence: list[str] = field(default_factory=list)  # op names and leaf-module paths, in execution order

    def op(self, name: str) -> OpInfo:
        """The op called `name`."""
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def products(self) -> list[OpInfo]:
        """Ops with MACs or a weight (what cost models price), in execution order."""
        return [o for o in self.ops if o.category != "elementwise"]


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _shape(t: torch.Tensor | None) -> tuple[int, ...]:
    return () if t is None else tuple(t.shape[1:])


class Tracer:
    """The recording backend: computes every op in float and notes what it did."""

    def __init__(self, scopes: ModuleScopes, model: nn.Module, inputs: tuple[torch.Tensor, ...], calibrate: bool) -> None:
        self.scopes = scopes
        self.model = model
        self.calibrate = calibrate
        self.records: dict[str, _Accum] = {}
        self.unsupported_records: dict[str, _Accum] = {}
        self.calibration: dict[str, dict[str, list[torch.Tensor]]] = {}
        self.flows: list[Flow] = []
        self.group = "input"
        self.producer: dict[int, str] = {id(t): "input" for t in inputs}
        self.producer_op: dict[int, str] = {}
        self.uses: dict[int, list[tuple[str, int]]] = {}
        self._alive: list[torch.Tensor] = list(inputs)
        self._buffers = {id(b) for b in model.buffers()}
        self._seen: set[tuple[int, str]] = set()
        self.sequence: list[str] = []

    # ---------------------------------------------------------------------------- dataflow
    def _consume(self, t: torch.Tensor, consumer: str, op: str | None, role: str | None) -> None:
        if not t.is_floating_point() or isinstance(t, nn.Parameter) or isinstance(t._base, nn.Parameter) or id(t) in self._buffers:
            return
        key = id(t)
        self._alive.append(t)
        self.uses.setdefault(key, []).append((op or "", id(self.scopes.frame.module)))
        producer = self.producer.setdefault(key, self.group)
        if producer != consumer and (key, consumer) not in self._seen:
            self._seen.add((key, consumer))
            self.flows.append(Flow(key, t.numel(), producer, consumer, op, role))

    def _produce(self, result: Any, op: str | None) -> None:
        for t in _tensors(result):
            self._alive.append(t)
            self.producer[id(t)] = self.group
            if op is not None:
                self.producer_op[id(t)] = op

    def passthrough(self, func: Any, args: tuple, kwargs: dict, result: Any) -> None:
        """Record a call that is neither a product nor an element-wise op (views, cat, ...)."""
        if getattr(func, "__name__", "") in _METADATA:
            return
        for t in _tensors((args, kwargs)):
            self._consume(t, self.group, getattr(func, "__name__", None), None)
        self._produce(result, None)

    # ------------------------------------------------------------------------------- ops
    def _record(self, table: dict[str, _Accum], name: str, info: OpInfo) -> _Accum:
        if name not in table:
            table[name] = _Accum(info)
        return table[name]

    def _keep(self, name: str, role: str, t: torch.Tensor | None) -> None:
        if self.calibrate and t is not None and t.is_floating_point():
            self.calibration.setdefault(name, {}).setdefault(role, []).append(t.detach())

    def product(self, p: Product) -> torch.Tensor:
        """Run a product op in float and record it."""
        name = self.scopes.name("product", p.kind, p.label, p.weight)
        out = p.compute(*p.operands, p.bias)
        if p.epilogue is not None:
            out = p.epilogue(out)
        data = next((t for r, t in zip(p.roles, p.operands) if r in ("data", "index")), None)
        rhs = next((t for r, t in zip(p.roles, p.operands) if r == "rhs"), None)
        weight = p.weight
        info = OpInfo(name, p.kind, "lookup" if p.macs == 0 and p.accumulate is None else "product", self.scopes.frame.path,
                      type(self.scopes.frame.module).__name__, self.scopes.weight_name(weight, self.model) if weight is not None else None,
                      _shape(data), _shape(out), _shape(rhs), 0 if weight is None else weight.numel(),
                      0 if p.bias is None else p.bias.numel(), 0, 0, 0, 0, 0, p.kernel_size, p.groups, p.in_channels)
        acc = self._record(self.records, name, info)
        acc.macs += p.macs
        acc.outputs += p.outputs
        acc.inputs += 0 if data is None or not data.is_floating_point() else data.numel()
        acc.rhs += 0 if rhs is None else rhs.numel()
        acc.calls += 1
        self.sequence.append(name)
        for role, t in zip(p.roles, p.operands):
            if role in ("data", "rhs"):
                self._keep(name, role, t)
            if role != "weights" or not isinstance(t, nn.Parameter):
                self._consume(t, name, name, role)
        self._keep(name, "output", out)
        self.group = name
        self._produce(out, name)
        return out

    def elementwise(self, kind: str, compute: Any, label: str | None = None, inputs: tuple = ()) -> Any:
        """Run an element-wise op and record it."""
        name = self.scopes.name("elementwise", kind, label)
        for t in _tensors(inputs):
            self._consume(t, self.group, name, None)
        out = compute()
        first = next(_tensors(inputs), None)
        info = OpInfo(name, kind, "elementwise", self.scopes.frame.path, type(self.scopes.frame.module).__name__, None,
                      _shape(first), _shape(out) if isinstance(out, torch.Tensor) else (), (), 0, 0, 0, 0, 0, 0, 0)
        acc = self._record(self.records, name, info)
        acc.calls += 1
        self.sequence.append(name)
        if isinstance(out, torch.Tensor):
            acc.outputs += out.numel()
            self._keep(name, "elementwise", out)
        self._produce(out, name)
        return out

    def composite(self, original: Any, decomposed: Any) -> Any:
        """Record the decomposition's ops; return the original call's result (the float model
        exactly)."""
        decomposed()
        result = original()
        self._produce(result, None)
        return result

    def unsupported(self, func: Any, macs: int | None, args: tuple, kwargs: dict) -> Any:
        """Record a call whose MACs the emulator cannot compute, and run it in float."""
        name = self.scopes.name("product", getattr(func, "__name__", "op"))
        info = OpInfo(name, f"unsupported:{getattr(func, '__name__', func)}", "product", self.scopes.frame.path,
                      type(self.scopes.frame.module).__name__, None, (), (), (), 0, 0, 0, 0, 0, 0, 0, emulated=False)
        acc = self._record(self.unsupported_records, name, info)
        if macs is None:
            acc.info = replace(acc.info, kind=acc.info.kind + " (MACs unknown)")
        acc.macs += macs or 0
        acc.calls += 1
        result = func(*args, **kwargs)
        self.passthrough(func, args, kwargs, result)
        return result

    # ---------------------------------------------------------------------------- result
    def result(self, output: Any, batch: int, registry: NameRegistry) -> Trace:
        per = max(batch, 1)

        def finish(a: _Accum) -> OpInfo:
            return replace(a.info, macs=a.macs // per, outputs=a.outputs // per, inputs=a.inputs // per, rhs=a.rhs // per, calls=a.calls)

        outs = [t for t in _tensors(output)]
        return Trace(
            ops=[finish(a) for a in self.records.values()], unsupported=[finish(a) for a in self.unsupported_records.values()],
            flows=self.flows, calibration=self.calibration, registry=registry,
            output_elements=sum(t.numel() for t in outs) // per,
            output_producer=self.producer.get(id(outs[0]), self.group) if outs else self.group,
            uses=self.uses, producers=self.producer_op, batch=per, sequence=self.sequence,
        )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode for the block, restoring each module's own flag after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def _batch_of(example: Any) -> int:
    first = next(_tensors(example), None)
    return 1 if first is None or first.dim() == 0 else int(first.shape[0])


def trace(model: nn.Module, example: Any, registry: NameRegistry | None = None, calibrate: bool = False) -> Trace:
    """Run `model(example)` once (eval mode, no gradients) and record every op it executes.

    `example` is a tensor or a tuple of positional arguments. With `calibrate=True` the tensors each
    op reads and writes are kept (for range calibration). Counts in the result are per example:
    totals divided by the first dimension of the first input tensor. An `EmulatedModel` is traced
    as the float model it wraps (its ops have the same names).
    """
    from .model import EmulatedModel

    if isinstance(model, EmulatedModel):  # an emulated model executes its float model's ops
        model = model.model
    registry = registry or NameRegistry()
    args = example if isinstance(example, tuple) else (example,)
    sequence: list[str] = []
    scopes = ModuleScopes(model, registry, on_leaf=sequence.append)
    tracer = Tracer(scopes, model, tuple(_tensors(args)), calibrate)
    tracer.sequence = sequence
    with torch.no_grad(), eval_mode(model), scopes.active(), OpMode(tracer):
        output = model(*args)
    return tracer.result(output, _batch_of(args), registry)
