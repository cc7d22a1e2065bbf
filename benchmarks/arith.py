"""Per-operation arithmetic speed: emulated MACs per second, rounding after every multiply and add.

    python benchmarks/arith.py [--threads 2] [--repeats 3] [--no-apytypes] [--json]

For each case (a 256x800 @ 800x500 linear layer and LeNet's conv2 on 16 images, under several
accumulator formats), measured in one run: quantscope's native kernel, quantscope's PyTorch
fallback (the same arithmetic, `native.use("torch")`), APyTypes' matmul in an accumulator context
(a dev dependency; the convolution as a matmul of its unfolded windows in our order), and the
float32 GEMM/convolution without rounding. Bit-exact agreement is counted output by output:
native against the fallback and against APyTypes. Also a LeNet evaluation with weights, data and
accumulator all float<4,3> (every product and sum rounded) on 1,000 MNIST test images, native and
fallback. Which path ran is printed from `quantscope.native`. Where a CUDA device is, every case
(and a 2048^3 linear layer) also runs on it through the Triton kernels, with bit-exact agreement
counted against the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import quantscope as qs
from quantscope import arith, native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"float": 3000.0, "fixed": 4000.0}  # M MAC/s on 2 threads (issue 15)


def _case(name: str, acc: str, wf: str, xf: str, conv: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    if conv:
        x = qs.quantize(torch.randn(16, 20, 12, 12, generator=g) * 2, xf)
        w = qs.quantize(torch.randn(50, 20, 5, 5, generator=g) * 0.3, wf)
        macs = 16 * 8 * 8 * 50 * 500
    else:
        x = qs.quantize(torch.randn(256, 800, generator=g) * 2, xf)
        w = qs.quantize(torch.randn(500, 800, generator=g) * 0.3, wf)
        macs = 256 * 800 * 500
    return {"name": name, "acc": acc, "wf": wf, "xf": xf, "conv": conv, "x": x, "w": w, "macs": macs}


CASES = [
    lambda: _case("linear 256x800 @ 800x500", "float<5,10>", "fixed<8,6>", "fixed<8,4>", False),
    lambda: _case("linear 256x800 @ 800x500", "float<4,3>", "fixed<8,6>", "fixed<8,4>", False),
    lambda: _case("linear 256x800 @ 800x500 (sequential: products need 10 fraction bits)", "fixed<16,8>", "fixed<8,6>", "fixed<8,4>", False),
    lambda: _case("LeNet conv2 (16x20x12x12, 50x20x5x5)", "float<5,10>", "fixed<8,6>", "fixed<8,4>", True),
    lambda: _case("linear 256x800 @ 800x500 (wide float)", "float<6,15>", "fixed<8,6>", "fixed<8,4>", False),
    lambda: _case("linear 256x800 @ 800x500 (wide fixed, sequential)", "fixed<32,16>", "fixed<12,10>", "fixed<12,8>", False),
]


def _emulated(c: dict):
    hints = {"weight_format": qs.parse_format(c["wf"]), "data_format": qs.parse_format(c["xf"])}
    if c["conv"]:
        return lambda: arith.conv2d(c["x"], c["w"], None, c["acc"], **hints)
    return lambda: arith.linear(c["x"], c["w"], None, c["acc"], **hints)


def _apytypes(c: dict) -> tuple[float, torch.Tensor] | None:
    """APyTypes' matmul under an accumulator context: (seconds, result shaped like ours)."""
    try:
        import apytypes as apy
    except ImportError:
        return None
    acc = qs.parse_format(c["acc"])
    x, w = c["x"].double(), c["w"].double()
    if c["conv"]:  # the unfolded windows in our reduction order: channel, kernel row, kernel column
        x = F.unfold(x, 5).transpose(1, 2).reshape(-1, 500)
        w = w.reshape(50, 500)
    if acc.kind == "float":
        a = apy.APyFloatArray.from_float(x.numpy(), exp_bits=8, man_bits=23)
        b = apy.APyFloatArray.from_float(w.numpy().T.copy(), exp_bits=8, man_bits=23)
        context = apy.APyFloatAccumulatorContext(exp_bits=acc.exp, man_bits=acc.man, quantization=apy.QuantizationMode.TIES_EVEN)
    else:
        wf, xf = qs.parse_format(c["wf"]), qs.parse_format(c["xf"])
        a = apy.APyFixedArray.from_float(x.numpy(), int_bits=xf.bits - xf.frac, frac_bits=xf.frac)
        b = apy.APyFixedArray.from_float(w.numpy().T.copy(), int_bits=wf.bits - wf.frac, frac_bits=wf.frac)
        context = apy.APyFixedAccumulatorContext(int_bits=acc.bits - acc.frac, frac_bits=acc.frac,
                                                 quantization=apy.QuantizationMode.TIES_EVEN, overflow=apy.OverflowMode.SAT)
    with context:
        start = time.perf_counter()
        product = a @ b
        seconds = time.perf_counter() - start
    result = torch.from_numpy(np.asarray(product.to_numpy())).float()
    if c["conv"]:
        result = result.reshape(16, 64, 50).transpose(1, 2).reshape(16, 50, 8, 8)
    return seconds, result


def _plain(c: dict):
    """The case's float32 convolution or GEMM, without rounding."""
    x, w = c["x"], c["w"]
    return (lambda: F.conv2d(x, w)) if c["conv"] else (lambda: F.linear(x, w))


def _agree(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"{int((a == b).sum())}/{a.numel()}"


def _row(make, repeats: int, use_apytypes: bool) -> dict:
    c = make()
    run = _emulated(c)
    with native.use("native"):
        t_native = best_time(run, repeats)
        y_native = run()
    with native.use("torch"):
        t_torch = best_time(run, 1)
        y_torch = run()
    apy = _apytypes(c) if use_apytypes else None
    kind = qs.parse_format(c["acc"]).kind
    row = {"case": c["name"], "accumulator": c["acc"], "weights": c["wf"], "data": c["xf"], "macs": c["macs"],
           "native_mmacs": c["macs"] / t_native / 1e6, "fallback_mmacs": c["macs"] / t_torch / 1e6,
           "float32_mmacs": c["macs"] / best_time(_plain(c), repeats) / 1e6,
           "native_vs_fallback": _agree(y_native, y_torch), "target_mmacs": TARGETS[kind]}
    if apy is not None:
        row.update(apytypes_mmacs=c["macs"] / apy[0] / 1e6, native_vs_apytypes=_agree(y_native, apy[1]))
    return row


def _gpu_row(c: dict, repeats: int) -> dict:
    """One case on CUDA tensors, which take the Triton kernels: M MAC/s, the float32 GEMM on the
    same GPU, and agreement with the CPU's native result."""
    want = _emulated(c)()  # the CPU's kernels: native where built, else PyTorch's (the same bits)
    g = dict(c, x=c["x"].cuda(), w=c["w"].cuda())
    run, plain = _emulated(g), _plain(g)

    def synced(fn):
        return lambda: (fn(), torch.cuda.synchronize())

    return {"case": c["name"], "accumulator": c["acc"], "macs": c["macs"], "gpu_mmacs": c["macs"] / best_time(synced(run), repeats) / 1e6,
            "gpu_float32_mmacs": c["macs"] / best_time(synced(plain), repeats) / 1e6, "gpu_vs_cpu": _agree(want, run().cpu())}


def _gpu_rows(repeats: int) -> list[dict]:
    """Every case, and a 2048^3 linear layer large enough to fill the GPU, on CUDA (none without one)."""
    if not torch.cuda.is_available():
        return []
    large = _case("linear 2048x2048 @ 2048x2048", "float<5,10>", "fixed<8,6>", "fixed<8,4>", False)
    gen = torch.Generator().manual_seed(1)
    large.update(x=qs.quantize(torch.randn(2048, 2048, generator=gen) * 2, "fixed<8,4>"),
                 w=qs.quantize(torch.randn(2048, 2048, generator=gen) * 0.3, "fixed<8,6>"), macs=2048**3)
    return [_gpu_row(c, repeats) for c in [make() for make in CASES] + [large]]


def _lenet_per_operation(repeats: int) -> dict | None:
    """LeNet on 1,000 MNIST test images, weights, data and accumulator float<4,3>."""
    checkpoint = ROOT / "checkpoints" / "lenet-mnist.pt"
    data_dir = ROOT.parent / "shared" / "datasets"
    if not checkpoint.exists() or not data_dir.exists():
        return None
    from quantscope import data, train
    model, meta = train.load_model(checkpoint)
    images = data.load("mnist", "test", data_dir=data_dir, normalize=meta.get("normalize", "standard")).tensors(limit=1000)[0]
    plan = qs.PrecisionPlan.uniform(weights="float<4,3>", data="float<4,3>", accumulator="float<4,3>")
    emulated = qs.emulate(model, plan)
    macs = sum(layer.macs for layer in qs.layers(model, images[:1])) * len(images)
    out = {"images": len(images), "macs": macs}
    for backend in ("native", "torch"):
        with native.use(backend), torch.no_grad():
            out[f"{backend}_s"] = best_time(lambda: emulated(images), repeats if backend == "native" else 1)
    return out


def _print_cpu(rows: list[dict]) -> None:
    print("| case | accumulator | native M MAC/s | fallback | APyTypes | native / APyTypes | float32 | agree (fallback) | agree (APyTypes) | target |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        apy = r.get("apytypes_mmacs")
        apy_cells = ("-", "-") if apy is None else (f"{apy:,.0f}", f"{r['native_mmacs'] / apy:,.0f}x")
        print(f"| {r['case']} | `{r['accumulator']}` | {r['native_mmacs']:,.0f} | {r['fallback_mmacs']:,.0f} | "
              f"{apy_cells[0]} | {apy_cells[1]} | "
              f"{r['float32_mmacs']:,.0f} | {r['native_vs_fallback']} | {r.get('native_vs_apytypes', '-')} | >= {r['target_mmacs']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-apytypes", action="store_true", help="skip the APyTypes comparison")
    parser.add_argument("--gpu-only", action="store_true", help="only the CUDA rows (e.g. on a GPU machine without the C extension)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    status = native.status()
    rows = [] if args.gpu_only else [_row(make, args.repeats, not args.no_apytypes) for make in CASES]
    lenet = None if args.gpu_only else _lenet_per_operation(args.repeats)
    gpu = _gpu_rows(args.repeats)
    if args.json:
        print(json.dumps({"native": status.reason, "gpu": status.gpu, "threads": args.threads, "rows": rows, "lenet": lenet, "gpu_rows": gpu},
                         indent=1))
        return
    print(f"native kernels: {status.reason}; {args.threads} threads; best of {args.repeats}; paths taken: {native.counts()}")
    if rows:
        _print_cpu(rows)
    if lenet:
        print(f"LeNet, {lenet['images']} MNIST images, weights/data/accumulator float<4,3> ({lenet['macs'] / 1e9:.2f} G MACs): "
              f"native {lenet['native_s']:.2f} s, fallback {lenet['torch_s']:.2f} s (target <= 2 s)")
    if not gpu:
        print(f"GPU: no CUDA device here ({status.gpu})")
        return
    print(f"\nOn {torch.cuda.get_device_name()} ({status.gpu}); best of {args.repeats}:")
    print("| case | accumulator | Triton M MAC/s | float32 on the GPU | agree with the CPU | goal |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for r in gpu:
        print(f"| {r['case']} | `{r['accumulator']}` | {r['gpu_mmacs']:,.0f} | {r['gpu_float32_mmacs']:,.0f} | {r['gpu_vs_cpu']} | >= 100,000 (H200) |")


if __name__ == "__main__":
    main()
