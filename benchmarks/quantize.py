"""Time quantize() on a 16M-element float32 tensor with 2 threads, as ratios to clone and copy_.

    python benchmarks/quantize.py [--numel N] [--threads T] [--repeats R] [--json]

Baselines are measured in the same run: `x.clone()` makes the same single allocation as quantize,
`out.copy_(x)` into a preallocated tensor is the memory-bandwidth floor. The naive
clamp(round(x * 2**f)) / 2**f kernel is timed as a reference point.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import quantscope as qs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time  # noqa: E402

FORMATS = ["fixed<8,4>", "float<4,3>", "float<5,10>", "pow2<6>", "binary"]
TARGETS = {"fixed<8,4>": 2.0, "float<4,3>": 4.0, "float<5,10>": 4.0, "pow2<6>": 3.0, "binary": 3.0}
STOCHASTIC_TARGET = 6.0




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
            t = best_time(lambda: qs.quantize(x, fmt, rounding), args.repeats)
            target = STOCHASTIC_TARGET if rounding == "stochastic" else TARGETS[fmt]
            rows.append({"format": fmt, "rounding": rounding, "ms": t * 1e3, "x_clone": t / clone,
                         "x_copy": t / floor, "target_x_clone": target, "met": t / clone <= target})
    if args.json:
        print(json.dumps({"clone_ms": clone * 1e3, "copy_ms": floor * 1e3, "naive_ms": naive * 1e3, "rows": rows}, indent=1))
        return
    print(f"{args.numel:,} float32 elements, {args.threads} threads, best of {args.repeats}")
    print(f"baselines: clone {clone * 1e3:.1f} ms, copy_ {floor * 1e3:.1f} ms, "
          f"naive fixed kernel {naive * 1e3:.1f} ms ({naive / clone:.2f}x clone)")
    print("| format | rounding | ms | x clone | x copy_ | target (x clone) |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for r in rows:
        mark = "met" if r["met"] else "MISSED"
        print(f"| `{r['format']}` | {r['rounding']} | {r['ms']:.1f} | {r['x_clone']:.2f} | {r['x_copy']:.2f} "
              f"| <= {r['target_x_clone']:.0f} ({mark}) |")


if __name__ == "__main__":
    main()
