"""The native kernels against the PyTorch ones, bit for bit, and the backend switch.

The exact-arithmetic references (tests/exact.py, tests/arith) check both backends through the
autouse fixture of tests/backends.py; here the two backends are compared with each other on
adversarial inputs (every float32 bit pattern class, NaN, inf, subnormals, ties), every format
family, every rounding mode, both dtypes, and on dot products of every shape class.
"""

from __future__ import annotations

import os

import pytest
import torch
from adversarial import ACCUMULATORS, FORMATS, MODES, SHAPES, adversarial, same_bits

import quantscope as qs
from quantscope import arith, native, parse_format

pytestmark = pytest.mark.skipif(not native.status().available and os.environ.get("QUANTSCOPE_REQUIRE_NATIVE") != "1",
                                reason=f"native kernels unavailable: {native.status().reason}")


def _both(fn):
    with native.use("torch"):
        want = fn()
    with native.use("native"):
        got = fn()
    return want, got


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fmt", FORMATS)
def test_quantize_is_bit_identical_on_adversarial_values(fmt, dtype):
    x = adversarial(dtype)
    for mode in MODES:
        want, got = _both(lambda mode=mode: qs.quantize(x, fmt, mode, generator=torch.Generator().manual_seed(1)))
        assert same_bits(want, got), f"{fmt} {mode}: {(want.view(-1) != got.view(-1)).sum()} differ"


def test_quantize_in_place_and_out_take_the_native_path():
    x = adversarial(torch.float32)
    before = native.counts().get("quantize.native", 0)
    want, _ = _both(lambda: qs.quantize(x, "float<4,3>"))
    y = x.clone()
    with native.use("native"):
        qs.quantize(y, "float<4,3>", out=y)
    assert same_bits(want, y)
    assert native.counts()["quantize.native"] >= before + 2


def test_non_contiguous_and_threads_give_the_same_bits():
    x = adversarial(torch.float32)[: 2 * 40_000].view(400, 200)
    want, got = _both(lambda: qs.quantize(x.t(), "float<5,2>", "stochastic", generator=torch.Generator().manual_seed(3)))
    assert same_bits(want, got)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = qs.quantize(x, "fixed<8,3>", "stochastic", generator=torch.Generator().manual_seed(3))
        torch.set_num_threads(2)
        two = qs.quantize(x, "fixed<8,3>", "stochastic", generator=torch.Generator().manual_seed(3))
    finally:
        torch.set_num_threads(before)
    assert same_bits(one, two)


def _strided_views(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views whose rows are contiguous but not packed: attention's head split of a chunk of a
    fused projection, a permuted batch, a column slice, an expanded row, a 1-D slice."""
    qkv = x[: 65 * 24 * 96].view(65, 24, 96)
    return {"chunk heads": qkv.chunk(3, -1)[1].unflatten(-1, (4, 8)).permute(1, 2, 0, 3),
            "permuted batch": qkv.transpose(0, 1), "column slice": qkv[:, :, 5:50],
            "expanded": x[:37].expand(300, 37), "stepped rows": x[: 2 * 40_000].view(400, 200)[::3, 10:]}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_strided_rows_are_read_in_place_with_the_same_bits(dtype):
    x = adversarial(dtype)
    for name, view in _strided_views(x).items():
        assert not view.is_contiguous() and native.row_offsets(view) is not None, name
        for fmt in ("float<4,3>", "fixed<8,3>", "e4m3fn", "fixed<9,3,overflow=wrap>"):
            for mode in MODES:
                want, got = _both(lambda mode=mode, view=view, fmt=fmt: qs.quantize(view, fmt, mode, generator=torch.Generator().manual_seed(2)))
                assert same_bits(want, got), f"{name} {fmt} {mode}"
                assert same_bits(got, qs.quantize(view.contiguous(), fmt, mode, generator=torch.Generator().manual_seed(2)))
        out = torch.full(view.shape, 7.0, dtype=dtype)
        with native.use("native"):
            qs.quantize(view, "float<4,3>", out=out)
        assert same_bits(out, qs.quantize(view.contiguous(), "float<4,3>")), name


def test_row_offsets_are_where_the_rows_start():
    base = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 3, 10)
    view = base.transpose(0, 1)[:, :, 2:7]
    offsets = native.row_offsets(view)
    assert offsets is not None
    assert offsets.tolist() == [row[0].item() - view[0, 0, 0].item() for row in view.reshape(-1, 5)]
    assert native.row_offsets(base.mT) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("acc", ACCUMULATORS)
def test_sequential_dot_is_bit_identical(acc, dtype):
    """Every shape class: several groups, outputs fewer than a vector (rows vectorized instead),
    partial row tiles; every rounding mode, stochastic draws included."""
    g = torch.Generator().manual_seed(11)
    fmt = parse_format(acc)
    for shape in SHAPES:
        groups, m, k, o = shape
        a = qs.quantize(torch.randn(groups, m, k, generator=g, dtype=dtype) * 3, "fixed<8,4>")
        w = qs.quantize(torch.randn(groups, o, k, generator=g, dtype=dtype), "float<4,3>")
        for mode in MODES:
            want, got = _both(lambda a=a, w=w, mode=mode: arith.sequential(a, w, fmt, mode, torch.Generator().manual_seed(5)))
            assert same_bits(want, got), f"{acc} {mode} {shape}: {(want != got).sum()} of {want.numel()} differ"


def test_stochastic_draws_depend_on_the_key_only():
    """The same generator state gives the same sums whatever the thread count; another seed gives
    other sums. (Vectorizing rows instead of outputs is compared with PyTorch's loop above.)"""
    a = qs.quantize(torch.randn(1, 40, 30) * 3, "fixed<8,4>")
    w = qs.quantize(torch.randn(1, 3, 30), "fixed<8,5>")
    acc = parse_format("float<3,2>")
    run = lambda seed: arith.sequential(a, w, acc, "stochastic", torch.Generator().manual_seed(seed))  # noqa: E731
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(1)
        torch.set_num_threads(2)
        two = run(1)
    finally:
        torch.set_num_threads(before)
    assert same_bits(one, two)
    assert not torch.equal(one, run(2))


def test_conv_and_linear_use_the_native_dot():
    x = qs.quantize(torch.randn(2, 3, 8, 8), "fixed<8,4>")
    w = qs.quantize(torch.randn(4, 3, 3, 3), "fixed<8,5>")
    before = native.counts().get("dot.native", 0)
    want, got = _both(lambda: arith.conv2d(x, w, None, "float<4,3>", padding=1))
    assert same_bits(want, got)
    assert native.counts()["dot.native"] > before


def test_backend_switch_and_status(monkeypatch):
    assert native.status().available and native.status().enabled
    with native.use("torch"):
        assert not native.enabled()
        before = native.counts().get("quantize.torch", 0)
        qs.quantize(torch.randn(10), "fixed<8,4>")
        assert native.counts()["quantize.torch"] == before + 1
    with pytest.raises(ValueError, match="unknown backend 'gpu'; allowed: auto, native, torch"):
        with native.use("gpu"):
            pass
    monkeypatch.setenv("QUANTSCOPE_BACKEND", "fast")
    with pytest.raises(ValueError, match="QUANTSCOPE_BACKEND='fast' is not one of auto, native, torch"):
        native._backend_from_env()


def test_without_the_extension_the_torch_kernels_run_and_say_why(monkeypatch):
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_reason", "the C extension quantscope._native is not built (test)")
    status = native.status()
    assert not status.available and not status.enabled and "not built" in status.reason
    before = native.counts().get("quantize.torch", 0)
    y = qs.quantize(torch.tensor([0.3, 1.7]), "fixed<4,1>")
    assert y.tolist() == [0.5, 1.5] and native.counts()["quantize.torch"] == before + 1
    with pytest.raises(RuntimeError, match="native backend was requested but is unavailable: .*not built"):
        with native.use("native"):
            pass


def test_convolution_results_do_not_depend_on_how_the_batch_is_unfolded(monkeypatch):
    """The convolution unfolds a few images at a time; stochastic draws are numbered in the whole
    result, so any chunk size gives the same bits, on both backends."""
    from quantscope.arith import ops

    x = qs.quantize(torch.randn(9, 3, 8, 8), "fixed<8,4>")
    w = qs.quantize(torch.randn(4, 3, 3, 3), "fixed<8,5>")
    run = lambda: arith.conv2d(x, w, None, "float<3,2>", padding=1, rounding="stochastic", generator=torch.Generator().manual_seed(0))  # noqa: E731
    whole = run()
    monkeypatch.setattr(ops, "_PATCH_CHUNK", 200)  # 2 images per chunk
    want, got = _both(run)
    assert same_bits(whole, got) and same_bits(whole, want)
