"""Which module is executing, and the names of the ops it runs.

While a model runs under emulation or tracing, two temporary global module hooks keep a stack of
the model's modules whose forward is running (other models and other threads are ignored). Ops
are named from that stack, the same way on every run:

- a product op whose weight is a parameter is named after the parameter, relative to the module
  running it: `fc1` for `fc1.weight` used by `fc1`, `attn.in_proj` for `attn.in_proj_weight`,
  `attn.out_proj` for `attn.out_proj.weight` (a trailing `weight`, `.weight` or `_weight` is
  dropped); every call with the same weight is the same op;
- other ops are named by their kind inside the module: `block.add`, `block.add_1`,
  `attn.matmul`; in a leaf module (one without children) the first such op takes the module's
  own name (`relu1` for an `nn.ReLU` called `relu1`);
- decomposed ops carry explicit labels: `attn.scores`, `attn.values`, `lstm.l0.hh` (with a weight,
  still one op for all its calls).

Two different call sites that would get the same name are told apart by appending the op kind,
then a counter, in order of first execution; `NameRegistry` remembers every site so later runs
reuse the names of the first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules import module as module_hooks

__all__ = ["NameRegistry", "ModuleScopes"]


def _strip_weight(name: str) -> str:
    """`weight` -> '', `out_proj.weight` -> 'out_proj', `in_proj_weight` -> 'in_proj'."""
    for suffix in (".weight", "_weight"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return "" if name == "weight" else name


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


@dataclass
class NameRegistry:
    """Call site -> op name, kept across runs so every run names its ops alike."""

    sites: dict[tuple, str] = field(default_factory=dict)

    def name(self, site: tuple, wanted: str, kind: str) -> str:
        """The name of `site`, giving it `wanted` (made unique) the first time it is seen."""
        known = self.sites.get(site)
        if known is not None:
            return known
        taken = set(self.sites.values())
        name = wanted
        if name in taken or not name:
            name = _join(wanted, kind)
        base, n = name, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        self.sites[site] = name
        return name


@dataclass
class _Frame:
    module: nn.Module
    path: str
    leaf: bool
    counters: dict[str, int] = field(default_factory=dict)
    used_own_name: set[str] = field(default_factory=set)


class ModuleScopes:
    """The stack of running modules of one model in this thread, and op naming from it."""

    def __init__(self, model: nn.Module, registry: NameRegistry, on_leaf: Callable[[str], None] | None = None) -> None:
        self.registry = registry
        self._on_leaf = on_leaf
        self._paths = {id(m): name for name, m in model.named_modules()}
        self._leaf = {id(m): next(m.children(), None) is None for m in model.modules()}
        self._params: dict[int, dict[int, str]] = {}
        self._root = model
        self._thread = threading.get_ident()
        self.stack: list[_Frame] = [_Frame(model, "", self._leaf[id(model)])]

    @property
    def frame(self) -> _Frame:
        """The innermost running module."""
        return self.stack[-1]

    def _pre(self, module: nn.Module, args: object) -> None:
        key = id(module)
        if key in self._paths and threading.get_ident() == self._thread:
            self.stack.append(_Frame(module, self._paths[key], self._leaf[key]))
            if self._on_leaf is not None and self._leaf[key]:
                self._on_leaf(self._paths[key])

    def _post(self, module: nn.Module, args: object, output: object) -> None:
        if len(self.stack) > 1 and self.stack[-1].module is module and threading.get_ident() == self._thread:
            self.stack.pop()

    @contextmanager
    def active(self) -> Iterator[ModuleScopes]:
        """Track module calls while the block runs."""
        pre = module_hooks.register_module_forward_pre_hook(self._pre)
        post = module_hooks.register_module_forward_hook(self._post, always_call=True)
        try:
            yield self
        finally:
            pre.remove()
            post.remove()

    def _param_names(self, module: nn.Module) -> dict[int, str]:
        key = id(module)
        if key not in self._params:
            self._params[key] = {id(p): n for n, p in module.named_parameters(remove_duplicate=False)}
        return self._params[key]

    def weight_name(self, weight: torch.Tensor | None, module: nn.Module | None = None) -> str | None:
        """The parameter `weight` is (or is a view of), relative to `module` (default: the
        running one), else relative to the model; None when it is no parameter of the model."""
        if weight is None:
            return None
        base = weight if weight._base is None else weight._base
        for scope in (module or self.frame.module, self._root):
            name = self._param_names(scope).get(id(base))
            if name is not None:
                return name
        return None

    def name(self, category: str, kind: str, label: str | None = None, weight: torch.Tensor | None = None) -> str:
        """The name of the op being called now (see the module docstring)."""
        frame = self.frame
        relative = self.weight_name(weight)
        if relative is not None:  # every call with the same weight is the same op
            wanted = _join(frame.path, label if label is not None else _strip_weight(relative))
            return self.registry.name((frame.path, "weight", label, relative, kind), wanted, kind)
        if label is None and frame.leaf and frame.path and category not in frame.used_own_name:
            frame.used_own_name.add(category)
            return self.registry.name((frame.path, "own", category, kind), frame.path, kind)
        key = label or kind
        n = frame.counters.get(key, 0)
        frame.counters[key] = n + 1
        wanted = _join(frame.path, key if n == 0 else f"{key}_{n}")
        return self.registry.name((frame.path, "label", key, n, kind), wanted, kind)
