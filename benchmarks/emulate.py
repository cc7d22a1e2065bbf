"""Emulation speed, 2 threads, ratios to float measured in the same run.

    python benchmarks/emulate.py [--batch 1000] [--threads 2] [--repeats 3]

Prints, for a LeNet-style network: float inference images/s; W8A8 emulation (weights and data
fixed<8,auto>, ranges from a calibration batch) as a ratio to float; one SGD training step
through the emulated model as a ratio to the float step; and, with an accumulator format,
emulated MACs per second for a fixed accumulator that takes the exact fast path, a fixed
accumulator that needs the sequential loop, and a float accumulator, with the time a
10,000-image test set would take. Then W8A8 inference against float for the registered ViT
(batch 256 of CIFAR-size images) and the byte-level GPT (batch 64 of 64 tokens); both float
baselines run with gradients off, so PyTorch's own fused transformer path is the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

import quantscope as qs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time, median_ratio  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from nets import LeNetStyle  # noqa: E402


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LeNetStyle().eval()
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    macs = sum(layer.macs for layer in qs.layers(model, x[:1])) * args.batch

    with torch.no_grad():
        t_float = best_time(lambda: model(x), args.repeats)
    w8a8 = qs.emulate(model, qs.PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>"), calibration=x[:256])
    with torch.no_grad():
        t_w8a8 = best_time(lambda: w8a8(x), args.repeats)
        paired = median_ratio(lambda: w8a8(x), lambda: model(x), max(args.repeats, 9))
    print(f"LeNet-style, batch {args.batch} of 28x28, {args.threads} threads, {macs / args.batch / 1e6:.2f}M MACs/image")
    print(f"float inference:        {args.batch / t_float:8.0f} img/s ({t_float * 1e3:.1f} ms)")
    print(f"W8A8 emulated:          {args.batch / t_w8a8:8.0f} img/s  ratio {t_w8a8 / t_float:.2f}x float (best of {args.repeats} each), "
          f"{paired:.2f}x (median of {max(args.repeats, 9)} back-to-back pairs) (target <= 1.25x)")

    float_train = LeNetStyle().train()
    emu_train = qs.emulate(float_train, qs.PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>"), calibration=x[:256]).train()
    opt_f = torch.optim.SGD(float_train.parameters(), lr=1e-3)
    opt_e = torch.optim.SGD(emu_train.parameters(), lr=1e-3)
    t_tf = best_time(lambda: train_step(float_train, x, y, opt_f), args.repeats)
    t_te = best_time(lambda: train_step(emu_train, x, y, opt_e), args.repeats)
    print(f"float training step:    {t_tf * 1e3:8.1f} ms")
    print(f"W8A8 training step:     {t_te * 1e3:8.1f} ms  ratio {t_te / t_tf:.2f}x float (target <= 1.8x)")

    float_macs = macs / t_float
    print(f"float MACs/s:           {float_macs / 1e6:8.0f} M")
    cases = [
        ("fixed<24,12> (exact fast path)", "fixed<24,12>"),
        ("fixed<16,8> (sequential)", "fixed<16,8>"),
        ("float<5,10> (sequential)", "float<5,10>"),
    ]
    for label, acc in cases:
        emu = qs.emulate(model, qs.PrecisionPlan.uniform(weights="fixed<8,6>", data="fixed<8,4>", accumulator=acc))
        with torch.no_grad():
            t = best_time(lambda: emu(x), 1)
        rate = macs / t
        print(f"accumulator {label:32s} {rate / 1e6:8.0f} M emulated MACs/s = 1/{float_macs / rate:.0f} of float "
              f"(target >= 100 M); 10,000-image test set: {10_000 * macs / args.batch / rate:6.1f} s")
    modern(args.repeats)


def modern(repeats: int) -> None:
    """W8A8 inference overhead of the ViT and the GPT (targets <= 1.5x float)."""
    from quantscope import models

    plan = qs.PrecisionPlan.uniform(weights="fixed<8,auto>", data="fixed<8,auto>")
    gen = torch.Generator().manual_seed(0)
    for name, x in (("vit", torch.randn(256, 3, 32, 32, generator=gen)), ("gpt-char", torch.randint(0, 256, (64, 64), generator=gen))):
        model = models.create(name, seed=0).eval()
        emu = qs.emulate(model, plan, calibration=x[:32])
        with torch.no_grad():
            t_float = best_time(lambda: model(x), repeats)
            t_emu = best_time(lambda: emu(x), repeats)
            paired = median_ratio(lambda: emu(x), lambda: model(x), max(repeats, 9))
        macs = qs.layers(model, x[:1]).macs
        print(f"{name:9s} batch {len(x)}, {macs / 1e6:.1f}M MACs/example, {len(emu.ops)} ops: float {t_float * 1e3:7.1f} ms, "
              f"W8A8 {t_emu * 1e3:7.1f} ms, ratio {t_emu / t_float:.2f}x float (best of {repeats} each), "
              f"{paired:.2f}x (median of {max(repeats, 9)} back-to-back pairs) (target <= 1.5x)")


if __name__ == "__main__":
    main()
