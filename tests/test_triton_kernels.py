"""The Triton kernels for CUDA tensors against the PyTorch kernels, bit for bit.

On a machine with a GPU the kernels are compiled and run on CUDA tensors, and the emulator's
dispatch to them is checked; without one, Triton's interpreter runs the same kernel source on CPU
tensors (tests/conftest.py sets TRITON_INTERPRET=1 before Triton is imported), which checks their arithmetic but not the GPU compiler
(the CUDA-only tests skip and say so). Without Triton installed everything here skips.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import pytest
import torch
from adversarial import ACCUMULATORS, FORMATS, MODES, adversarial, same_bits

import quantscope as qs
from quantscope import arith, native, parse_format
from quantscope.arith import kernel
from quantscope.quantization import _round_on_gpu, grid_of

# the interpreter computes with NumPy, which warns where IEEE arithmetic meets inf and NaN on purpose
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device: the compiled kernels run only on a GPU (the interpreter checks their arithmetic)")


@pytest.fixture(scope="module")
def triton_kernels() -> ModuleType:
    """quantscope.triton_kernels: compiled where a GPU is, else interpreted on the CPU."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("Triton is not installed (it comes with the dev extra: pip install -c constraints.txt -e '.[dev]')")
    module = importlib.import_module("quantscope.triton_kernels")
    interpreted = type(module._dot_kernel).__name__ == "InterpretedFunction"
    assert interpreted == (not CUDA), "without a GPU tests/conftest.py sets TRITON_INTERPRET=1 before Triton is imported"
    return module


@pytest.fixture(scope="module")
def device() -> str:
    return "cuda" if CUDA else "cpu"


def _same(want: torch.Tensor, got: torch.Tensor) -> bool:
    """The same bits, except that any NaN equals any NaN: GPUs do not keep NaN payloads (a
    signaling NaN comes back quiet), and no format gives them a meaning."""
    got = got.cpu()
    nan = want.isnan()
    return bool(torch.equal(nan, got.isnan())) and same_bits(want.masked_fill(nan, 0.0), got.masked_fill(nan, 0.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", FORMATS)
def test_quantize_is_bit_identical_on_adversarial_values(triton_kernels, device, fmt, dtype):
    x = adversarial(dtype, n=1_000)
    for mode in MODES:
        grid = grid_of(parse_format(fmt), dtype)
        work = grid.work_dtype(dtype, mode)
        uniform = torch.rand(x.shape, generator=torch.Generator().manual_seed(1), dtype=work) if mode == "stochastic" else None
        with native.use("torch"):
            want = qs.quantize(x, fmt, mode, generator=uniform.clone() if uniform is not None else None)
        got = torch.empty_like(x, device=device)
        triton_kernels.quantize(x.to(device), got, grid.as_tuple(), mode, work, None if uniform is None else uniform.to(device))
        assert _same(want, got), f"{fmt} {mode}: {(want != got.cpu()).sum()} differ"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("acc", ACCUMULATORS)
def test_sequential_dot_is_bit_identical(triton_kernels, device, acc, dtype):
    """Several groups, partial tiles, every rounding mode; the stochastic draws of rows 3.. of a
    longer result, so the element counters are checked too."""
    g = torch.Generator().manual_seed(11)
    fmt = parse_format(acc)
    a = qs.quantize(torch.randn(2, 5, 4, generator=g, dtype=dtype) * 3, "fixed<8,4>")
    w = qs.quantize(torch.randn(2, 3, 4, generator=g, dtype=dtype), "float<4,3>")
    grid = grid_of(fmt, dtype)
    for mode in MODES:
        draws = kernel.Draws(123456789012345, first_row=3, total_rows=9)
        with native.use("torch"):
            want = kernel.sequential(a, w, fmt, mode, draws)
        work = grid.work_dtype(dtype, mode)
        got = triton_kernels.dot(a.to(device, work), w.to(device, work), grid.as_tuple(), mode, kernel.sums_to_odd(grid, mode, work),
                                 draws.key, 23 if dtype == torch.float32 else 52, draws.first_row, draws.total_rows).to(dtype)
        assert _same(want, got), f"{acc} {mode}: {(want != got.cpu()).sum()} of {want.numel()} differ"


def test_round_on_gpu_writes_out_and_reads_strided_values(triton_kernels, device):
    """The emulator's wrapper: a strided input, a strided `out`, and rounding in place."""
    x = adversarial(torch.float32, n=500)[:1200].view(40, 30).t().to(device)
    grid = grid_of(parse_format("float<4,3>"), torch.float32)
    with native.use("torch"):
        want = qs.quantize(x.cpu(), "float<4,3>")
    assert _same(want, _round_on_gpu(x, grid, "nearest", None, None, triton_kernels))
    out = torch.empty(30, 80, device=device)[:, ::2]
    assert _round_on_gpu(x, grid, "nearest", None, out, triton_kernels) is out and _same(want, out)
    inplace = x.contiguous()
    _round_on_gpu(inplace, grid, "nearest", None, inplace, triton_kernels)
    assert _same(want, inplace)


def test_status_says_which_kernels_cuda_tensors_take(triton_kernels):
    assert native.status().gpu == f"Triton {triton_kernels.VERSION}: CUDA tensors run the Triton kernels"
    with native.use("torch"):
        assert native.gpu_kernels() is None


def test_without_triton_cuda_tensors_run_the_pytorch_kernels_and_say_so(monkeypatch):
    monkeypatch.setattr(native, "_triton_version", lambda: None)
    assert native.gpu_kernels() is None
    assert native.status().gpu == "Triton is not installed: CUDA tensors run the PyTorch kernels"


@needs_cuda
def test_cuda_tensors_take_the_triton_kernels_through_the_emulator(triton_kernels):
    """quantize, linear and conv2d with an accumulator on CUDA: the Triton path, the CPU's bits."""
    x = qs.quantize(torch.randn(4, 3, 8, 8), "fixed<8,4>")
    w = qs.quantize(torch.randn(5, 3, 3, 3), "fixed<8,5>")
    before = native.counts()
    uniform = torch.rand(x.shape)
    for run in (lambda d: qs.quantize(x.to(d), "float<4,3>", "stochastic", generator=uniform.to(d)),
                lambda d: arith.conv2d(x.to(d), w.to(d), None, "float<4,3>", padding=1),
                lambda d: arith.linear(x.flatten(1).to(d), x.flatten(1)[:6].to(d), None, "float<5,10>")):
        assert _same(run("cpu"), run("cuda"))
    after = native.counts()
    assert after.get("dot.triton", 0) >= before.get("dot.triton", 0) + 2
    assert after.get("quantize.triton", 0) > before.get("quantize.triton", 0)
