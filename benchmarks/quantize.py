"""Time quantize() on a 16M-element float32 tensor with 2 threads, as ratios to clone and copy_.

    python benchmarks/quantize.py [--numel N] [--threads T] [--repeats R] [--json]

Baselines are measured in the same run: `x.clone()` makes the same single allocation as
quantize(x, fmt); `out.copy_(x)` into a preallocated tensor is the memory-bandwidth floor, the
fair baseline of quantize(x, fmt, out=out). Every format and rounding mode is timed on both
kernel backends (native C and PyTorch), allocating and into `out`. The naive
clamp(round(x * 2**f)) / 2**f kernel is timed as a reference point. Scaled formats (MXFP4, NVFP4,
int4<group=128>) are timed allocating, as ratios to clone, beside torchao's quantize-and-dequantize
of the same tensor (to_mx/to_dtype, NVFP4Tensor, quantize_affine/dequantize_affine; skipped with
a note when torchao is not installed), with the share of values on which the two agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import quantscope as qs
from quantscope import native

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time  # noqa: E402

FORMATS = ["fixed<8,4>", "float<4,3>", "float<5,10>", "pow2<6>", "binary"]
#: targets: (x clone allocating, on the PyTorch kernels) and (x copy_ into out, native, nearest: issue 15)
TARGETS_CLONE = {"fixed<8,4>": 2.0, "float<4,3>": 4.0, "float<5,10>": 4.0, "pow2<6>": 3.0, "binary": 3.0}
TARGETS_COPY = {"fixed<8,4>": 2.0, "float<4,3>": 3.0, "float<5,10>": 3.0, "pow2<6>": 3.0}
STOCHASTIC_TARGET = 6.0
#: scaled formats, allocating, nearest, the default backend (issue 17): <= 4x clone
SCALED = {"mxfp4": "mxfp4", "nvfp4": "nvfp4<scaling=reciprocal,scale_min=normal>", "int4<group=128>": "int4<group=128,scaling=reciprocal>"}
SCALED_TARGET = 4.0


def _torchao_fake_quant(name: str, x: torch.Tensor):
    """torchao's quantize-then-dequantize of x (2-D, blocks along the last dimension) in `name`,
    or None without torchao."""
    try:
        from torchao.prototype.mx_formats import mx_tensor
        from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale
        from torchao.quantization.quant_primitives import MappingType, choose_qparams_affine, dequantize_affine, quantize_affine
    except ImportError:
        return None
    if name == "mxfp4":
        def run():
            scale, data = mx_tensor.to_mx(x, torch.float4_e2m1fn_x2, 32)
            return mx_tensor.to_dtype(data, scale, torch.float4_e2m1fn_x2, 32, torch.float32)
    elif name == "nvfp4":
        def run():
            return NVFP4Tensor.to_nvfp4(x, per_tensor_scale=per_tensor_amax_to_scale(x.abs().max())).dequantize(torch.float32)
    else:
        def run():
            scale, zero = choose_qparams_affine(x, MappingType.SYMMETRIC, (1, 128), torch.int8, -7, 7, scale_dtype=torch.float32)
            q = quantize_affine(x, (1, 128), scale, zero, torch.int8, -7, 7)
            return dequantize_affine(q, (1, 128), scale, zero, torch.int8, -7, 7, output_dtype=torch.float32)
    return run


def _scaled_rows(numel: int, repeats: int) -> list[dict]:
    """Scaled-format rows: quantscope and torchao, each as a ratio to clone of the same tensor."""
    x = torch.randn(numel // 4096, 4096, generator=torch.Generator().manual_seed(1)) * 3
    clone = best_time(lambda: x.clone(), repeats)
    rows = []
    for label, fmt in SCALED.items():
        ours = best_time(lambda: qs.quantize(x, fmt), repeats)
        theirs = _torchao_fake_quant(label, x)
        row = {"format": label, "quantscope_format": fmt, "quantscope_x_clone": ours / clone, "target_x_clone": SCALED_TARGET,
               "torchao_x_clone": None, "agree": None}
        if theirs is not None:
            row["torchao_x_clone"] = best_time(theirs, repeats) / clone
            row["agree"] = float((theirs() == qs.quantize(x, fmt)).double().mean())
        rows.append(row)
    return rows


def _measure(x: torch.Tensor, out: torch.Tensor, fmt: str, rounding: str, backend: str, repeats: int) -> dict:
    with native.use(backend):
        alloc = best_time(lambda: qs.quantize(x, fmt, rounding), repeats)
        into = best_time(lambda: qs.quantize(x, fmt, rounding, out=out), repeats)
    return {"alloc": alloc, "into": into}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numel", type=int, default=16 * 2**20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print machine-readable rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(args.numel, generator=torch.Generator().manual_seed(0)) * 3
    out = torch.empty_like(x)
    clone = best_time(lambda: x.clone(), args.repeats)
    floor = best_time(lambda: out.copy_(x), args.repeats)
    naive = best_time(lambda: torch.clamp(torch.round(x * 16), -128, 127) / 16, args.repeats)
    rows = []
    for fmt in FORMATS:
        for rounding in ("nearest", "stochastic"):
            t = {b: _measure(x, out, fmt, rounding, b, args.repeats) for b in ("native", "torch")}
            target_copy = TARGETS_COPY.get(fmt) if rounding == "nearest" else None
            target_clone = STOCHASTIC_TARGET if rounding == "stochastic" else TARGETS_CLONE[fmt]
            rows.append({"format": fmt, "rounding": rounding,
                         "native_ms": t["native"]["into"] * 1e3, "native_x_copy": t["native"]["into"] / floor,
                         "native_alloc_x_clone": t["native"]["alloc"] / clone,
                         "torch_ms": t["torch"]["into"] * 1e3, "torch_x_copy": t["torch"]["into"] / floor,
                         "torch_alloc_x_clone": t["torch"]["alloc"] / clone,
                         "target_x_copy": target_copy, "target_x_clone": target_clone})
    scaled = _scaled_rows(args.numel, args.repeats)
    if args.json:
        print(json.dumps({"clone_ms": clone * 1e3, "copy_ms": floor * 1e3, "naive_ms": naive * 1e3, "native": native.status().reason,
                          "rows": rows, "scaled": scaled}, indent=1))
        return
    print(f"{args.numel:,} float32 elements, {args.threads} threads, best of {args.repeats}; native kernels: {native.status().reason}")
    print(f"baselines: clone {clone * 1e3:.1f} ms, copy_ {floor * 1e3:.1f} ms, "
          f"naive fixed kernel {naive * 1e3:.1f} ms ({naive / clone:.2f}x clone)")
    print("| format | rounding | native into out: ms | x copy_ | target | PyTorch into out: x copy_ | "
          "allocating, native: x clone | allocating, PyTorch: x clone | target |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for r in rows:
        copy_target = "-" if r["target_x_copy"] is None else (
            f"<= {r['target_x_copy']:.0f} ({'met' if r['native_x_copy'] <= r['target_x_copy'] else 'MISSED'})")
        clone_mark = "met" if min(r["native_alloc_x_clone"], r["torch_alloc_x_clone"]) <= r["target_x_clone"] else "MISSED"
        print(f"| `{r['format']}` | {r['rounding']} | {r['native_ms']:.1f} | {r['native_x_copy']:.2f} | {copy_target} | "
              f"{r['torch_x_copy']:.2f} | {r['native_alloc_x_clone']:.2f} | {r['torch_alloc_x_clone']:.2f} | "
              f"<= {r['target_x_clone']:.0f} ({clone_mark}) |")
    print()
    print("| scaled format (allocating, nearest) | quantscope: x clone | target | torchao: x clone | values equal to torchao's |")
    print("| --- | ---: | --- | ---: | ---: |")
    for r in scaled:
        mark = "met" if r["quantscope_x_clone"] <= r["target_x_clone"] else "MISSED"
        theirs = "torchao not installed" if r["torchao_x_clone"] is None else f"{r['torchao_x_clone']:.2f}"
        agree = "-" if r["agree"] is None else f"{r['agree']:.2%}"
        print(f"| `{r['quantscope_format']}` | {r['quantscope_x_clone']:.2f} | <= {r['target_x_clone']:.0f} ({mark}) | {theirs} | {agree} |")


if __name__ == "__main__":
    main()
