"""The native kernels: whether they are there, which path runs, and the calls into them.

`quantscope._native` is a small C extension built when the package is installed (setup.py); it
holds the element rounding of `quantize` and the sequential rounded dot product of
`arith.kernel`, each mirroring the PyTorch kernel operation for operation, so both give the same
bits (tested on every case). Where it could not be built, or on tensors it does not take (not on
the CPU, not float32/float64), the PyTorch kernels run. Nothing compiles at import time.

CUDA tensors take the Triton kernels of quantscope/triton_kernels.py (the same arithmetic, the
same bits), imported on the first CUDA call where Triton is installed; without Triton they run the
PyTorch kernels, which are device-agnostic.

Which path runs is visible: `status()` says whether the extension loaded and why not, and whether
Triton is there for CUDA tensors, and `counts()` how many calls took each path. `use("torch")` (or the environment variable
QUANTSCOPE_BACKEND=torch) forces the PyTorch kernels, `use("native")` refuses to run without the
extension. The C functions release the GIL; calls here split their work over a thread pool of
`torch.get_num_threads()` threads, in slices whose results do not depend on the split.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

import torch

__all__ = ["NativeStatus", "status", "enabled", "use", "counts", "record", "quantize", "row_offsets", "dot", "LANES", "BACKENDS", "run_parallel",
           "gpu_kernels"]

Backend = Literal["auto", "native", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "native", "torch")
#: outputs per vector tile of the dot kernel, for float and double work (columns are padded to it)
LANES = {torch.float32: 16, torch.float64: 8}
#: rounding mode codes of the C kernels
_MODES = {"nearest": 0, "floor": 1, "toward_zero": 2, "stochastic": 3}
#: elements per parallel slice of quantize (below it, one call)
_SLICE = 1 << 18


def _load() -> tuple[ModuleType | None, str]:
    try:
        module = importlib.import_module("quantscope._native")
    except ImportError as exc:
        return None, f"the C extension quantscope._native is not built ({exc}); reinstall with a C compiler to build it"
    return module, "loaded"


_module, _reason = _load()


def _backend_from_env() -> Backend:
    value = os.environ.get("QUANTSCOPE_BACKEND", "auto")
    if value not in BACKENDS:
        raise ValueError(f"QUANTSCOPE_BACKEND={value!r} is not one of {', '.join(BACKENDS)}")
    return value  # type: ignore[return-value]


_backend: Backend = _backend_from_env()
_counts: Counter[str] = Counter()


@functools.cache
def _triton_version() -> str | None:
    """The installed Triton's version, or None; looked up once, not on every CUDA call."""
    return importlib.metadata.version("triton") if importlib.util.find_spec("triton") is not None else None


def _triton_reason() -> str:
    version = _triton_version()
    if version is None:
        return "Triton is not installed: CUDA tensors run the PyTorch kernels"
    return f"Triton {version}: CUDA tensors run the Triton kernels"


@dataclass(frozen=True)
class NativeStatus:
    """Whether the native kernels loaded, whether they are used, and why not; `gpu` says which
    kernels CUDA tensors take."""

    available: bool
    backend: str
    reason: str
    gpu: str

    @property
    def enabled(self) -> bool:
        """True when eligible calls take the native kernels."""
        return self.available and self.backend != "torch"


def status() -> NativeStatus:
    """The native kernels' state: loaded or not (with the reason) and the chosen backend."""
    return NativeStatus(_module is not None, _backend, _reason, _triton_reason())


def enabled() -> bool:
    """True when eligible calls take the native kernels (raises under use("native") without them)."""
    if _backend == "native" and _module is None:
        raise RuntimeError(f"the native backend was requested but is unavailable: {_reason}")
    return _module is not None and _backend != "torch"


@contextmanager
def use(backend: str) -> Iterator[None]:
    """Run the enclosed code on one backend: "native", "torch" or "auto" (native where it can)."""
    global _backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    before, _backend = _backend, backend  # type: ignore[assignment]
    try:
        enabled()
        yield
    finally:
        _backend = before


_gpu: ModuleType | None = None


def gpu_kernels() -> ModuleType | None:
    """The Triton kernels for CUDA tensors (quantscope.triton_kernels, imported on first use), or
    None where Triton is not installed or the backend is "torch"."""
    global _gpu
    if _backend == "torch" or _triton_version() is None:
        return None
    if _gpu is None:
        _gpu = importlib.import_module("quantscope.triton_kernels")
    return _gpu


def counts() -> dict[str, int]:
    """Calls per kernel and path since start, e.g. {"quantize.native": 12, "dot.triton": 3, "dot.torch": 1}."""
    return dict(_counts)


def record(kernel: str, path: str) -> None:
    """Count one call of `kernel` ("quantize", "dot") on `path` ("native", "triton", "torch")."""
    _counts[f"{kernel}.{path}"] += 1


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def run_parallel(tasks: list[Callable[[], None]]) -> None:
    """Run independent tasks on the shared pool of torch.get_num_threads() threads."""
    global _pool
    threads = max(torch.get_num_threads(), 1)
    if threads == 1 or len(tasks) == 1:
        for task in tasks:
            task()
        return
    with _pool_lock:
        if _pool is None or _pool._max_workers != threads:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quantscope")
        pool = _pool
    for future in [pool.submit(task) for task in tasks]:
        future.result()


def _native() -> ModuleType:
    assert _module is not None, "native kernel called without the extension"
    return _module


def row_offsets(x: torch.Tensor) -> torch.Tensor | None:
    """Where each row (last dimension) of x starts, in elements from x's first one, in row-major
    order (int64), when the rows are contiguous (last stride 1); None otherwise."""
    if x.dim() == 0 or (x.stride(-1) != 1 and x.size(-1) > 1):
        return None
    offsets = torch.zeros((), dtype=torch.int64)
    for size, stride in zip(x.shape[:-1], x.stride()[:-1]):
        offsets = (offsets[..., None] + torch.arange(size, dtype=torch.int64) * stride)
    return offsets.reshape(-1)


def quantize(x: torch.Tensor, out: torch.Tensor, grid: tuple[float | int, ...], rounding: str, work: torch.dtype,
             uniform: torch.Tensor | None, offsets: torch.Tensor | None = None) -> None:
    """Round CPU `x` (float32 or float64) into contiguous `out` (same shape and dtype) on `grid`
    (quantization.Grid.as_tuple()) in the work dtype; `uniform` (work dtype, like out) for
    stochastic. x is contiguous, or its rows (last dimension, contiguous) start at `offsets`
    (row_offsets(x))."""
    variant = 2 if x.dtype == torch.float64 else (1 if work == torch.float64 else 0)
    n = x.numel() if offsets is None else x.size(-1)
    rows = 1 if offsets is None else len(offsets)
    per_thread = -(-x.numel() // max(torch.get_num_threads(), 1))
    x_ptr, out_ptr, size = x.data_ptr(), out.data_ptr(), x.element_size()
    u_ptr, u_size = (0, 0) if uniform is None else (uniform.data_ptr(), uniform.element_size())
    mode = _MODES[rounding]

    def task(start: int, count_rows: int, count: int) -> Callable[[], None]:
        u = u_ptr + start * u_size if u_ptr else 0
        if offsets is None:
            return lambda: _native().quantize(variant, x_ptr + start * size, out_ptr + start * size, u, 1, count, 0, grid, mode)
        at = offsets.data_ptr() + (start // n) * offsets.element_size()
        return lambda: _native().quantize(variant, x_ptr, out_ptr + start * size, u, count_rows, n, at, grid, mode)

    if offsets is None:  # one run, sliced
        step = max(_SLICE, per_thread)
        tasks = [task(start, 1, min(step, n - start)) for start in range(0, n, step)]
    else:  # whole rows per slice
        step = max(1, -(-max(_SLICE, per_thread) // max(n, 1)))
        tasks = [task(row * n, min(step, rows - row), n) for row in range(0, rows, step)]
    run_parallel(tasks)


def dot(a: torch.Tensor, w: torch.Tensor, grid: tuple[float | int, ...], rounding: str, odd: bool, key: int, uniform_bits: int,
        first_row: int, total_rows: int) -> torch.Tensor:
    """(G, M, K) x (G, O, K) -> (G, M, O) float32/float64 on the CPU: sequential sums rounding every
    product and partial sum on `grid` (see arith.kernel.sequential), sums rounded to odd first
    when `odd`. Stochastic draws come from `key` and `uniform_bits`, for rows first_row.. of a
    (G, total_rows, O) result."""
    g, m, k = a.shape
    o = w.shape[1]
    swap = o < LANES[a.dtype] <= m  # few outputs, many rows: vectorize over the rows instead
    rows_t, cols_t = (w, a) if swap else (a, w)
    rows, cols = rows_t.shape[1], cols_t.shape[1]
    lanes = LANES[a.dtype]
    padded = -(-cols // lanes) * lanes
    lhs = rows_t.contiguous()
    rhs = torch.zeros(g, k, padded, dtype=a.dtype)
    rhs[:, :, :cols] = cols_t.transpose(1, 2)
    out = torch.empty(g, rows, padded, dtype=a.dtype)
    strides = (total_rows * o, 1, o) if swap else (total_rows * o, o, 1)  # element (g, m, o)'s index in the whole result
    draws = (key & (2**64 - 1), uniform_bits, first_row * o, *strides)
    mode = _MODES[rounding]
    is_double = int(a.dtype == torch.float64)
    total_rows = g * rows
    per_task = max(4, -(-total_rows // (4 * max(torch.get_num_threads(), 1))) // 4 * 4)
    pointers = (lhs.data_ptr(), rhs.data_ptr(), out.data_ptr())

    def task(row0: int) -> Callable[[], None]:
        row1 = min(row0 + per_task, total_rows)
        return lambda: _native().dot(is_double, *pointers, rows, k, padded, row0, row1, grid, mode, int(odd), draws)

    run_parallel([task(row0) for row0 in range(0, total_rows, per_task)])
    result = out[:, :, :cols]
    return result.transpose(1, 2) if swap else result
