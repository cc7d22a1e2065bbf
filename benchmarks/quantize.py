"""Time quantize() on a 16M-element float32 tensor with 2 threads, as ratios to clone and copy_.

    python benchmarks/quantize.py [--numel N] [--threads T] [--repeats R] [--json]

Baselines are measured in the same run: `x.clone()` makes the same single allocation as
quantize(x, fmt); `out.copy_(x)` into a preallocated tensor is the memory-bandwidth floor, the
fair baseline of quantize(x, fmt, out=out). Every format and rounding mode is timed on both
kernel backends (native C and PyTorch), allocating and into `out`. The naive
clamp(round(x * 2**f)) / 2**f kernel is timed as a reference point.
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
    x = torch.randn(args.numel) * 3
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
    if args.json:
        print(json.dumps({"clone_ms": clone * 1e3, "copy_ms": floor * 1e3, "naive_ms": naive * 1e3, "native": native.status().reason,
                          "rows": rows}, indent=1))
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


if __name__ == "__main__":
    main()
