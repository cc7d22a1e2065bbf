"""The run kinds a study can hold, by name. A new kind is one module (see `base`) and one
`register` call (or one line in `_BUILTIN`)."""

from __future__ import annotations

from . import bounds, greedy, ladder, plans, sensitivity, sweep
from .base import FormatStr, Outcome, RunConfig, RunContext, RunKind, RunSummary, Strict

__all__ = ["RUN_KINDS", "register", "FormatStr", "Outcome", "RunConfig", "RunContext", "RunKind", "RunSummary", "Strict"]

_BUILTIN = (plans.KIND, sweep.KIND, sensitivity.KIND, greedy.KIND, ladder.KIND, bounds.KIND)

#: run kind name -> RunKind
RUN_KINDS: dict[str, RunKind] = {k.name: k for k in _BUILTIN}


def register(kind: RunKind) -> RunKind:
    """Add a run kind (its name must be new); returns it."""
    if kind.name in RUN_KINDS:
        raise ValueError(f"a run kind named {kind.name!r} is already registered")
    RUN_KINDS[kind.name] = kind
    return kind
