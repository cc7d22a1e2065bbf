"""The TorchFunctionMode that routes every torch call a model makes to a backend.

Product calls go through their adapter (`calls.PRODUCTS`), element-wise ones are named and may be
quantized, calls that carry MACs without an emulation are reported as unsupported, and everything
else runs unchanged (the tracer also records it, for dataflow). Inside a handler the mode is off,
so the backend's own torch calls are not intercepted again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.overrides import TorchFunctionMode

from .calls import ELEMENTWISE, PRODUCTS, UNSUPPORTED, unsupported_macs

__all__ = ["OpMode"]


class OpMode(TorchFunctionMode):
    """Dispatch torch calls to `backend` (a `tracer.Tracer` or an `emulator.Emulator`)."""

    def __init__(self, backend: Any) -> None:
        super().__init__()
        self.backend = backend
        self._record = getattr(backend, "passthrough", None)

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        adapter = PRODUCTS.get(func)
        if adapter is not None:
            return adapter(self.backend, *args, **kwargs)
        kind = ELEMENTWISE.get(func)
        if kind is not None:
            return self.backend.elementwise(kind, lambda: func(*args, **kwargs), inputs=args)
        if func in UNSUPPORTED:
            return self.backend.unsupported(func, unsupported_macs(func, args, kwargs), args, kwargs)
        result = func(*args, **kwargs)
        if self._record is not None:
            self._record(func, args, kwargs, result)
        return result
