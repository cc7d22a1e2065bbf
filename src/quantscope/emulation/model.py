"""`emulate(model, plan)`: a new module that runs the model the way the plan says.

The returned `EmulatedModel` is an ordinary module (picklable, `torch.save`-able, deep-copyable)
holding a copy of the model (`.model`, whose float parameters are the shadow copy that
quantization-aware training updates) and the op table: one `OpSpec` per op the model executed
when it was traced, with adaptive activation formats calibrated on the float model. Its state
dict has the float model's keys, so float and emulated state dicts load into each other.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..errors import did_you_mean
from ..formats import Format
from ..plan import LayerPrecision, PrecisionPlan
from ..quantization import check_rounding
from .batchnorm import fold_into, warn_unfolded
from .emulator import Emulator, OpSpec
from .mode import OpMode
from .scopes import ModuleScopes, NameRegistry
from .tracing import OpInfo, Trace, trace

__all__ = ["EmulatedModel", "OpTable", "emulate", "layers"]


# ------------------------------------------------------------------------------- op table
@dataclass(frozen=True)
class OpTable(Sequence[OpInfo]):
    """The product ops (and lookups) of a model in execution order, with the ops it could not
    emulate; iterate it like a list. `coverage` is the share of MACs the emulator computes."""

    ops: tuple[OpInfo, ...]
    unsupported: tuple[OpInfo, ...] = ()
    elementwise: tuple[OpInfo, ...] = ()

    def __getitem__(self, i):
        if isinstance(i, str):
            for o in self.ops + self.elementwise:
                if o.name == i:
                    return o
            raise KeyError(f"no op named {i!r}{did_you_mean(i, [o.name for o in self.ops])}")
        return self.ops[i]

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def macs(self) -> int:
        """MACs per example of every op, emulated or not."""
        return sum(o.macs for o in self.ops + self.unsupported)

    @property
    def emulated_macs(self) -> int:
        """MACs per example that the emulator computes."""
        return sum(o.macs for o in self.ops)

    @property
    def coverage(self) -> float:
        """Emulated MACs over all MACs (1.0 when the model has none)."""
        return self.emulated_macs / self.macs if self.macs else 1.0

    def coverage_note(self) -> str:
        """One line: the share of MACs emulated, and the ops that are not."""
        unknown = any("MACs unknown" in o.kind for o in self.unsupported)
        text = f"{100 * self.coverage:.1f}% of {self.macs:,}{' known' if unknown else ''} MACs per example emulated"
        if self.unsupported:
            text += "; not emulated (float32): " + ", ".join(f"{o.name} ({o.kind}, {o.macs:,} MACs)" for o in self.unsupported)
        return text


def _membership(tr: Trace, model: nn.Module, groups: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """Product op -> group: its own name, or the explicit group listing it or a module above it."""
    products = [o for o in tr.ops if o.category != "elementwise"]
    if groups is None:
        return {o.name: o.name for o in products}
    known = {n for n, _ in model.named_modules() if n} | {o.name for o in tr.ops}
    listed: dict[str, str] = {}
    for group, names in groups.items():
        for n in names:
            if n not in known:
                raise ValueError(f"group {group!r}: no module or op named {n!r}{did_you_mean(n, sorted(known))}")
            listed[n] = group
    member: dict[str, str] = {}
    for o in products:
        path = o.name
        while path and path not in listed:
            path = path.rpartition(".")[0]
        if not path:
            path = o.module
            while path and path not in listed:
                path = path.rpartition(".")[0]
        if path:
            member[o.name] = listed[path]
    missing = [o.name for o in products if o.name not in member]
    if missing:
        raise ValueError(f"product ops in no group: {', '.join(missing)}")
    return member


def op_table(tr: Trace, model: nn.Module, groups: Mapping[str, Sequence[str]] | None = None) -> OpTable:
    """An `OpTable` from a trace: groups (Judd's layers) and each op's followers filled in."""
    member = _membership(tr, model, groups)
    owners = set(member) | {o.module for o in tr.ops if o.name in member}
    followers: dict[str, list[str]] = {}
    current = None
    for name in tr.sequence:
        if name in member:
            current = name
            followers.setdefault(name, [])
        elif current is not None and name not in owners and name not in followers[current]:
            followers[current].append(name)
    products = tuple(replace(o, group=member[o.name], followers=tuple(followers.get(o.name, ())))
                     for o in tr.ops if o.category != "elementwise")
    return OpTable(products, tuple(tr.unsupported), tuple(o for o in tr.ops if o.category == "elementwise"))


def layers(model: nn.Module, example_input: Any, groups: Mapping[str, Sequence[str]] | None = None) -> OpTable:
    """The product ops the model executes on `example_input`, in execution order, with
    per-example shapes, weight counts and MACs (see `OpInfo`).

    Each product op is grouped with the element-wise ops that follow it up to the next product op
    (`followers`; Judd's "layers"), and `group` is its own name. An explicit `groups` map
    {group: [module or op names]} names the groups instead (an op belongs to the group that lists
    it or a module above it); every product op must belong to one.
    """
    tr = trace(model, example_input)
    if not tr.ops and not tr.unsupported:
        raise ValueError(f"{type(model).__name__} executes no product op (linear, convolution, matmul, attention, embedding, recurrent)")
    return op_table(tr, model, groups)


# ------------------------------------------------------------------------------ the model
def _strip_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    inner = prefix + "model."
    items = list(state_dict.items())
    state_dict.clear()
    for k, v in items:
        state_dict[prefix + k[len(inner):] if k.startswith(inner) else k] = v


def _add_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    for k in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "model.")]:
        state_dict[prefix + "model." + k[len(prefix):]] = state_dict.pop(k)


def _resolve(fmt: Format | None, seen: list[torch.Tensor] | None) -> Format | None:
    """A static format: adaptive ones resolved on every calibration tensor of the role."""
    if fmt is None or not fmt.adaptive or not seen:
        return fmt
    return fmt.resolve(torch.cat([t.reshape(-1) for t in seen]))


def _spec(name: str, precision: LayerPrecision, calibration: dict[str, list[torch.Tensor]]) -> OpSpec:
    data = calibration.get("data")
    rhs = calibration.get("rhs") or data
    return OpSpec(name, precision, _resolve(precision.data, data), _resolve(precision.rhs_format, rhs),  # type: ignore[arg-type]
                  _resolve(precision.output, calibration.get("output")), _resolve(precision.elementwise, calibration.get("elementwise")))


class EmulatedModel(nn.Module):
    """A model under a precision plan (see the module docstring). Call it like the model."""

    def __init__(self, model: nn.Module, plan: PrecisionPlan, rounding: str = "nearest", strict: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.model = model
        self.training = model.training
        self.plan = plan
        self.rounding = rounding
        self.strict = strict
        self.generator = generator
        self.ops: dict[str, OpSpec] = {}
        self.table: OpTable | None = None
        self.unfolded: tuple[str, ...] = ()
        self._registry = NameRegistry()
        self._cache: dict[int, Any] = {}
        self._stats: dict | None = None
        self._warned: set[str] = set()
        self.register_state_dict_post_hook(_strip_prefix)
        self.register_load_state_dict_pre_hook(_add_prefix)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_cache={}, _stats=None, generator=None)
        return state

    def build(self, example: Any, calibrate: bool) -> None:
        """Trace the float model on `example`: op table, plan check, calibrated formats."""
        tr = trace(self.model, example, self._registry, calibrate=calibrate)
        table = op_table(tr, self.model)
        self.plan.validate([o.name for o in table.ops], [o.name for o in table.elementwise])
        if table.unsupported:
            note = table.coverage_note()
            if self.strict:
                raise ValueError(f"{note}; rewrite those ops with supported ones (docs/emulation.md) or pass strict=False "
                                 "to run them in float32")
            warnings.warn(note, stacklevel=3)
            self._warned.update(o.name for o in table.unsupported)
        for o in tr.ops:
            self.ops[o.name] = _spec(o.name, self.plan.for_layer(o.name), tr.calibration.get(o.name, {}))
        self.table = table

    def spec(self, name: str) -> OpSpec:
        """The precision of op `name` (an op first seen now takes the plan's formats, which must
        be static: it was not calibrated)."""
        spec = self.ops.get(name)
        if spec is None:
            precision = self.plan.for_layer(name)
            if any(getattr(precision, f) is not None and getattr(precision, f).adaptive for f in ("data", "rhs", "output", "elementwise")):
                message = (f"op {name!r} was not executed when the model was emulated, so its adaptive formats have no "
                           "calibrated range; emulate with a calibration batch that runs it")
                if self.strict:
                    raise ValueError(message)
                warnings.warn(message + "; its ranges follow each call's tensors (strict=False)", stacklevel=3)
            spec = self.ops[name] = _spec(name, precision, {})
        return spec

    @property
    def emulated(self) -> bool:
        """False when the plan leaves every op in float32 (the model then runs unchanged)."""
        return not self.plan.is_float32

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.table is None and not kwargs:
            self.build(args if len(args) != 1 else args[0], calibrate=False)
        if not self.emulated:
            return self.model(*args, **kwargs)
        scopes = ModuleScopes(self.model, self._registry)
        with scopes.active(), OpMode(Emulator(self, scopes)):
            return self.model(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"plan=({self.plan.default}), {len(self.plan.overrides)} override(s), {len(self.ops)} ops"


def emulate(
    model: nn.Module,
    plan: PrecisionPlan | LayerPrecision,
    calibration: Any = None,
    *,
    fold_bn: bool = False,
    rounding: str = "nearest",
    strict: bool = True,
    generator: torch.Generator | None = None,
) -> EmulatedModel:
    """A new module that runs `model` under `plan`; `model` itself is not modified.

    `calibration` is a batch of inputs (a tensor, or a tuple of the model's positional inputs):
    the model is traced on it in float to find its ops, and adaptive activation formats
    (`fixed<B,auto>`, `pow2<B>`, `binary<mean>` for data, rhs, outputs, element-wise results)
    take their ranges from each op's tensors on it. Without it, the first call's input is traced
    instead (then every activation format must be static). `fold_bn=True` folds BatchNorms into
    the convolution or linear op that feeds only them, first. With `strict=True` an op that
    carries MACs but cannot be emulated is an error; with False it runs in float32 with a warning
    giving the share of MACs emulated. Weight formats that are adaptive take their range from
    the current weights at every quantization. Works in train() mode with straight-through
    gradients, and on any device.
    """
    check_rounding(rounding)
    if isinstance(plan, LayerPrecision):
        plan = PrecisionPlan(plan)
    if not isinstance(plan, PrecisionPlan):
        raise ValueError(f"emulate expects a PrecisionPlan or LayerPrecision, got {type(plan).__name__}")
    adaptive = plan.adaptive_activations
    if adaptive and calibration is None:
        raise ValueError(f"adaptive activation formats ({', '.join(adaptive)}) need a calibration batch: pass calibration=...")
    if fold_bn and calibration is None:
        raise ValueError("fold_bn=True needs an example batch: pass calibration=...")
    new = copy.deepcopy(model)
    unfolded: tuple[str, ...] = ()
    if fold_bn:
        unfolded = fold_into(new, calibration)
        warn_unfolded(unfolded)
    emulated = EmulatedModel(new, plan, rounding, strict, generator)
    emulated.unfolded = unfolded
    if calibration is not None:
        emulated.build(calibration, calibrate=True)
    return emulated
